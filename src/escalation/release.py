"""Reviewed skill versions: releasing a pack version, and exporting it as an Agent Skill.

A pack version is released by its owner (`escalate policy release PACK --approved-by NAME`):
the pack must load and pass its own tests; the release is one JSON line appended to
`PACK/releases.jsonl` with the version, the release hash, who approved it, when, and the
test results. The release hash is the pack's content hash over every file except
`releases.jsonl` itself (recording a release must not change what was released). A
version is released once: the same version with other content is refused, the same
version with the same content again is a no-op.

`escalate skill export PACK DIR` writes a released pack as an Agent Skills folder
`DIR/<skill name>/`: a `SKILL.md` whose YAML frontmatter uses only the open
specification's keys (name, description, license, compatibility, metadata, allowed-tools)
and whose body tells an AI agent to call `escalate` for the governed packet and never to
write severity, owner or customer text itself; `references/` holds the skill contract,
the severity rules and the customer-language rules. `validate_skill_folder` checks a
folder against the specification's rules.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import EscalationError, PackError
from .pack import Pack, content_hash, load_pack
from .policy_tests import PackTestReport, run_pack_tests

RELEASES_FILE = "releases.jsonl"

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class ReleaseRefused(EscalationError):
    """A release or export the rules do not allow (tests failing, version reused, not released)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestCounts(_Model):
    __test__ = False  # not a pytest class

    passed: int
    failed: int


class Release(_Model):
    """One line of `releases.jsonl`."""

    version: str
    content_hash: str = Field(description="sha256 over every pack file except releases.jsonl")
    approved_by: str
    approved_at: str = Field(description="UTC, ISO 8601")
    tests: TestCounts
    note: str | None = None


class ReleaseOutcome(_Model):
    release: Release
    created: bool = Field(description="false when this version and hash were already released (a no-op)")
    report: PackTestReport | None = Field(None, description="the pack test run (none for a no-op)")


# ---------------------------------------------------------------- hash and records

def release_hash(pack_dir: Path) -> str:
    """The pack's content hash: `pack.content_hash` already leaves `releases.jsonl` out."""
    return content_hash(Path(pack_dir))


def released_versions(pack_dir: Path) -> list[Release]:
    """The releases recorded in `PACK/releases.jsonl`, oldest first; [] when there is none."""
    path = Path(pack_dir) / RELEASES_FILE
    if not path.exists():
        return []
    out: list[Release] = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Release.model_validate_json(line))
        except ValidationError as e:
            err = e.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise PackError(f"{path}:{i}: not a release record: {where + ': ' if where else ''}{err['msg']}") from None
    return out


def is_released(pack: Pack) -> Release | None:
    """The release of this pack's version with its current content, or None (unreleased or changed since)."""
    digest = release_hash(pack.root)
    return next((r for r in released_versions(pack.root) if r.version == pack.version and r.content_hash == digest),
                None)


def _iso(clock: Clock) -> str:
    now = clock()
    if now.tzinfo is None:
        raise ValueError("the release clock must return an aware datetime")
    return now.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def release_pack(pack_dir: Path, approved_by: str, note: str | None = None, *,
                 clock: Clock = utc_now) -> ReleaseOutcome:
    """Release the pack's version: check it, run its tests, append the record.

    Raises PackError when the pack is invalid, ReleaseRefused when a test fails, the approver is
    missing, or the version was released before with other content. Releasing the same version
    and content again changes nothing and returns the earlier record with `created=False`.
    """
    root = Path(pack_dir)
    approver = approved_by.strip()
    if not approver:
        raise ReleaseRefused("--approved-by is empty; a release names the person who approved it")
    pack = load_pack(root)
    digest = release_hash(root)
    for earlier in released_versions(root):
        if earlier.version != pack.version:
            continue
        if earlier.content_hash == digest:
            return ReleaseOutcome(release=earlier, created=False, report=None)
        raise ReleaseRefused(f"{pack.name} {pack.version} was released on {earlier.approved_at} by "
                             f"{earlier.approved_by} with content {earlier.content_hash}; the pack now hashes to "
                             f"{digest}. Raise the version in {root / 'skill.yaml'} to release a change")
    report = run_pack_tests(pack)
    if not report.ok:
        failing = [f"{r.kind}: {r.name}" for r in report.results if not r.passed]
        raise ReleaseRefused(f"{pack.name} {pack.version}: {report.failed} pack test(s) fail "
                             f"({'; '.join(failing[:3])}{'; …' if len(failing) > 3 else ''}); "
                             f"run `escalate policy test {root}` and fix them before releasing")
    record = Release(version=pack.version, content_hash=digest, approved_by=approver, approved_at=_iso(clock),
                     tests=TestCounts(passed=report.passed, failed=report.failed), note=note or None)
    with (root / RELEASES_FILE).open("a", encoding="utf-8") as f:
        f.write(record.model_dump_json() + "\n")
    return ReleaseOutcome(release=record, created=True, report=report)


# ---------------------------------------------------------------- the Agent Skills specification

SPEC_KEYS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
"""The frontmatter keys the Agent Skills specification defines; no other key may appear."""
NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""Lowercase letters, digits and single hyphens, not at either end."""
MAX_NAME, MAX_DESCRIPTION, MAX_COMPATIBILITY = 64, 1024, 500
SKILL_FILE = "SKILL.md"


def split_frontmatter(text: str) -> tuple[Any, str]:
    """The parsed YAML frontmatter of a SKILL.md and its body; ValueError when there is none."""
    m = re.match(r"\A---\r?\n(.*?)\r?\n---\r?\n?(.*)\Z", text, re.S)
    if not m:
        raise ValueError("no YAML frontmatter: SKILL.md must start with '---', the keys, and '---'")
    try:
        data = yaml.safe_load(m.group(1))
    except yaml.YAMLError as e:
        raise ValueError(f"frontmatter is not valid YAML: {e}") from None
    return data, m.group(2)


def name_problems(name: Any) -> list[str]:
    if not isinstance(name, str) or not name:
        return ["name: required, a non-empty string"]
    problems = []
    if len(name) > MAX_NAME:
        problems.append(f"name: {len(name)} characters; at most {MAX_NAME}")
    if not NAME_RE.match(name):
        problems.append(f"name: {name!r} must be lowercase letters, digits and hyphens, not starting or ending "
                        "with a hyphen, no '--'")
    return problems


def validate_frontmatter(data: Any, folder_name: str) -> list[str]:
    """Every way the frontmatter breaks the Agent Skills specification; [] when it is valid."""
    if not isinstance(data, dict):
        return ["frontmatter: must be a mapping of keys"]
    problems = [f"{k}: not a key of the specification (allowed: {', '.join(SPEC_KEYS)})"
                for k in data if k not in SPEC_KEYS]
    name = data.get("name")
    problems += name_problems(name)
    if isinstance(name, str) and name != folder_name:
        problems.append(f"name: {name!r} must equal the folder name {folder_name!r}")
    desc = data.get("description")
    if not isinstance(desc, str) or not desc.strip():
        problems.append("description: required, a non-empty string")
    elif len(desc) > MAX_DESCRIPTION:
        problems.append(f"description: {len(desc)} characters; at most {MAX_DESCRIPTION}")
    if "license" in data and not isinstance(data["license"], str):
        problems.append("license: must be a string")
    if "compatibility" in data:
        comp = data["compatibility"]
        if not isinstance(comp, str) or not comp.strip():
            problems.append("compatibility: must be a non-empty string")
        elif len(comp) > MAX_COMPATIBILITY:
            problems.append(f"compatibility: {len(comp)} characters; at most {MAX_COMPATIBILITY}")
    if "metadata" in data:
        meta = data["metadata"]
        if not isinstance(meta, dict):
            problems.append("metadata: must be a map of string keys to string values")
        else:
            problems += [f"metadata.{k}: {v!r} is not a string" for k, v in meta.items()
                         if not isinstance(k, str) or not isinstance(v, str)]
    if "allowed-tools" in data and not isinstance(data["allowed-tools"], str):
        problems.append("allowed-tools: must be a space-delimited string")
    return problems


def validate_skill_folder(folder: Path) -> list[str]:
    """Check an Agent Skills folder: SKILL.md present, frontmatter per the specification, a body."""
    folder = Path(folder)
    path = folder / SKILL_FILE
    if not path.is_file():
        return [f"{path}: missing"]
    try:
        data, body = split_frontmatter(path.read_text(encoding="utf-8"))
    except ValueError as e:
        return [f"{path}: {e}"]
    problems = [f"{path}: {p}" for p in validate_frontmatter(data, folder.name)]
    if not body.strip():
        problems.append(f"{path}: the body (instructions) is empty")
    return problems


# ---------------------------------------------------------------- export

COMPATIBILITY = ("Needs the `escalate` command (escalation-skill, Python 3.11+) on PATH and the released policy "
                 "pack folder; runs offline, no network or model calls.")
ALLOWED_TOOLS = "Bash(escalate:*) Read"


def _cell(text: str) -> str:
    """Text for a markdown table cell: one line, pipes escaped."""
    return re.sub(r"\s+", " ", text).strip().replace("|", "\\|")


def severity_markdown(pack: Pack) -> str:
    sev = pack.severity
    lines = [f"# Severity rules — {pack.name} {pack.version}", "",
             f"Levels, most severe first: {', '.join(sev.levels)}. Rules are tried from the top; the first whose "
             "CEL condition holds decides. They read only these evidence facts — never tone, capitals, threats "
             "or the help-desk priority:", ""]
    lines += [f"- `{k}` ({d.type}): {d.description}" for k, d in sev.facts.items()]
    lines += ["", "| id | level | section | CEL | reason |", "|---|---|---|---|---|"]
    lines += [f"| {_cell(r.id)} | {_cell(r.level)} | {_cell(r.section)} | `{_cell(r.when)}` | {_cell(r.reason)} |"
              for r in sev.rules]
    return "\n".join(lines) + "\n"


def language_markdown(pack: Pack) -> str:
    lang = pack.language
    lines = [f"# Customer-language rules — {pack.name} {pack.version}", "",
             f"A customer update must pass these rules ({lang.section}); `escalate check-update DRAFT --policy PACK "
             "[--case CASE]` reports every finding with the words at fault. Names of people and other customers, "
             "and text copied from internal notes, are also checked from the case itself.", "",
             "## Forbidden", "", "| rule | section | what it catches | allowed when |", "|---|---|---|---|"]
    lines += [f"| {_cell(r.id)} | {_cell(r.section)} | {_cell(r.message)} | {_cell(r.waived_when or '—')} |"
              for r in lang.forbidden]
    lines += ["", f"## Internal terms ({lang.internal_terms_section})", "",
              f"{len(lang.internal_terms)} internal terms (team channels, tools, code names) must not appear; "
              f"the list is in the pack's `language.yaml`."]
    if lang.approved_phrases:
        lines += ["", f"## Approved phrases ({lang.approved_section})", ""]
        lines += [f"- {_cell(p)}" for p in lang.approved_phrases]
    claims = []
    if lang.reproduced_claim_pattern:
        claims.append("- Saying the problem was **reproduced** is allowed only when staff recorded a reproduction.")
    if lang.fixed_claim_pattern:
        claims.append("- Saying it is **fixed**, or giving a fix date, is allowed only when an engineer confirmed it.")
    if claims:
        lines += ["", f"## Claims ({lang.claims_section})", "", *claims]
    return "\n".join(lines) + "\n"


def _description(pack: Pack) -> str:
    use = (" Use it whenever a support ticket may need escalating: run the `escalate` command for the governed "
           "packet instead of judging severity, owner or customer wording yourself.")
    base = re.sub(r"\s+", " ", pack.skill.description).strip()
    room = MAX_DESCRIPTION - len(use)
    if len(base) > room:
        base = base[: room - 1].rsplit(" ", 1)[0] + "…"
    return base + use


def _body(pack: Pack, release: Release | None) -> str:
    status = (f"Released version {pack.version}, approved by {release.approved_by} on {release.approved_at}."
              if release else f"**DRAFT** of version {pack.version}: not released; use only in a sandbox.")
    return f"""
# {pack.name}

{status} The policy pack it governs is owned by {pack.skill.owner}; this skill is the reviewed,
versioned form of it. The `escalate` runtime decides and checks — you run it and relay what it says.

## When a support ticket needs escalating

1. Write the ticket as an `escalation-case/1` JSON file (ticket events, account, attachments,
   related tickets, incident, `as_of`).
2. Run `escalate run <case> --policy <pack> --format json`, where `<pack>` is the released policy
   pack folder ({pack.name} {pack.version}). The JSON is the governed escalation packet.
3. Check that the packet's `pack.version` is {pack.version}. If it is not, stop and say so.
4. Report from the packet: `severity` (level, section, rationale), `owner`, `triggers`, `sla`,
   `next_actions`, `missing_info` and `claims` with their quoted sources. If `needs_review` is
   true, say which `checks` failed.

## Rules you must follow

- Never write, guess or change the severity, the owner or the customer update yourself. They come
  only from the packet; if you disagree, say why and leave the decision to a person.
- Send nothing to a customer without a person's approval. The packet's `customer_update` is a draft
  for a human to approve (see the approving roles in `references/skill.yaml`).
- Before proposing any customer reply you drafted or edited, run
  `escalate check-update <draft.txt> --policy <pack> --case <case>` and fix every finding; exit
  code 1 means the draft breaks a customer-language rule.
- Do not copy internal notes, hostnames, log lines, people's names, other customers or severity
  labels into anything meant for the customer.

## References

- `references/skill.yaml` — the skill contract: owner, roles and who may approve customer updates,
  inputs, outputs, the review checklist.
- `references/severity-rules.md` — the severity rules with the policy sections they encode.
- `references/language-rules.md` — what a customer update must never contain.

Exit codes of `escalate`: 0 ok; 1 a check failed or `check-update` found problems; 2 bad input
(the message says what and where); 70 an internal error.
"""


def export_skill(pack_dir: Path, out_dir: Path, *, draft: bool = False) -> Path:
    """Write the pack as an Agent Skills folder `out_dir/<skill name>/`; returns that folder.

    Refuses (ReleaseRefused) a pack whose version and content are not released, unless `draft`,
    which marks the skill's metadata `draft: "true"`.
    """
    pack = load_pack(Path(pack_dir))
    release = is_released(pack)
    if release is None and not draft:
        known = [r.version for r in released_versions(pack.root)]
        why = ("this version was released with other content; the pack changed since" if pack.version in known
               else "this version is not released")
        raise ReleaseRefused(f"{pack.name} {pack.version}: {why}. Run `escalate policy release {pack_dir} "
                             "--approved-by NAME` first, or export with --draft for a sandbox")
    name = pack.skill.name
    problems = name_problems(name)
    if problems:
        raise PackError(f"{pack.root / 'skill.yaml'}: name: the skill name is the Agent Skill's name; {problems[0]}")
    metadata = {"pack": name, "version": pack.version, "content_hash": release_hash(pack.root),
                "owner": pack.skill.owner}
    if release is not None:
        metadata |= {"approved_by": release.approved_by, "approved_at": release.approved_at}
    else:
        metadata["draft"] = "true"
    front: dict[str, Any] = {"name": name, "description": _description(pack)}
    if pack.skill.license:
        front["license"] = pack.skill.license
    front |= {"compatibility": COMPATIBILITY, "metadata": metadata, "allowed-tools": ALLOWED_TOOLS}
    folder = Path(out_dir) / name
    bad = validate_frontmatter(front, folder.name)
    if bad:
        raise PackError(f"{pack.root / 'skill.yaml'}: cannot export as an Agent Skill: {bad[0]}")
    refs = folder / "references"
    refs.mkdir(parents=True, exist_ok=True)
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=10_000)
    (folder / SKILL_FILE).write_text(f"---\n{head}---\n{_body(pack, release)}", encoding="utf-8")
    shutil.copyfile(pack.root / "skill.yaml", refs / "skill.yaml")
    (refs / "severity-rules.md").write_text(severity_markdown(pack), encoding="utf-8")
    (refs / "language-rules.md").write_text(language_markdown(pack), encoding="utf-8")
    if release is not None:
        (refs / "release.json").write_text(json.dumps(release.model_dump(), indent=1) + "\n", encoding="utf-8")
    else:
        (refs / "release.json").unlink(missing_ok=True)
    return folder
