"""Reviewed skill versions (`escalate policy release`) and the Agent Skill export (`escalate skill export`)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from conftest import escalate
from escalation.errors import PackError
from escalation.pack import content_hash, load_pack
from escalation.release import (
    RELEASES_FILE,
    SPEC_KEYS,
    Release,
    ReleaseRefused,
    TestCounts,
    export_skill,
    is_released,
    release_hash,
    release_pack,
    released_versions,
    split_frontmatter,
    validate_frontmatter,
    validate_skill_folder,
)

ROOT = Path(__file__).resolve().parent.parent
LUMEN = (ROOT / "examples" / "lumen").resolve()
WHEN = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)


def clock() -> datetime:
    return WHEN



@pytest.fixture
def released_dir(pack_dir: Path) -> Path:
    release_pack(pack_dir, "Dana Ops", "first", clock=clock)
    return pack_dir


def break_a_rule_test(pack_dir: Path) -> None:
    path = pack_dir / "tests" / "rules.yaml"
    text = path.read_text(encoding="utf-8")
    broken = text.replace("expect: {level: Sev1, section: \"§2.2b\", rule: sev1-data-loss}",
                          "expect: {level: Sev4, section: \"§2.2b\", rule: sev1-data-loss}", 1)
    assert broken != text
    path.write_text(broken, encoding="utf-8")


# ---------------------------------------------------------------- release

def test_bundled_pack_is_not_written() -> None:
    assert not (LUMEN / RELEASES_FILE).exists()


def test_release_hash_ignores_the_releases_file(pack_dir: Path) -> None:
    before = release_hash(pack_dir)
    assert before == content_hash(pack_dir)  # no releases file yet: the pack's own content hash
    (pack_dir / RELEASES_FILE).write_text("", encoding="utf-8")
    assert release_hash(pack_dir) == before
    assert content_hash(pack_dir) == before  # packets record the same hash the release log does
    (pack_dir / "context" / "docs" / "exports.md").open("a", encoding="utf-8").write("\nmore\n")
    assert release_hash(pack_dir) != before


def test_release_records_hash_approver_time_and_tests(pack_dir: Path) -> None:
    digest = release_hash(pack_dir)
    outcome = release_pack(pack_dir, "  Dana Ops ", "first release", clock=clock)
    assert outcome.created
    assert outcome.report is not None and outcome.report.ok
    r = outcome.release
    assert r.version == "3.2.0"
    assert r.content_hash == digest
    assert r.approved_by == "Dana Ops"
    assert r.approved_at == "2026-11-27T09:30:00Z"
    assert r.tests.failed == 0 and r.tests.passed == outcome.report.passed > 0
    assert r.note == "first release"
    lines = (pack_dir / RELEASES_FILE).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == {"version": "3.2.0", "content_hash": digest, "approved_by": "Dana Ops",
                                    "approved_at": "2026-11-27T09:30:00Z",
                                    "tests": {"passed": r.tests.passed, "failed": 0}, "note": "first release"}
    assert released_versions(pack_dir) == [r]
    assert is_released(load_pack(pack_dir)) == r


def test_release_time_is_utc(pack_dir: Path) -> None:
    local = datetime(2026, 11, 27, 10, 30, tzinfo=timezone(timedelta(hours=1)))
    r = release_pack(pack_dir, "Dana Ops", clock=lambda: local).release
    assert r.approved_at == "2026-11-27T09:30:00Z"
    assert r.note is None


def test_second_identical_release_is_a_no_op(released_dir: Path) -> None:
    before = (released_dir / RELEASES_FILE).read_bytes()
    later = lambda: WHEN + timedelta(days=1)  # noqa: E731
    outcome = release_pack(released_dir, "Someone Else", clock=later)
    assert not outcome.created
    assert outcome.release.approved_by == "Dana Ops"
    assert (released_dir / RELEASES_FILE).read_bytes() == before


def test_same_version_other_content_is_refused(released_dir: Path) -> None:
    (released_dir / "context" / "docs" / "exports.md").open("a", encoding="utf-8").write("\nchanged\n")
    before = (released_dir / RELEASES_FILE).read_bytes()
    with pytest.raises(ReleaseRefused, match="3.2.0 was released .* Raise the version"):
        release_pack(released_dir, "Dana Ops", clock=clock)
    assert (released_dir / RELEASES_FILE).read_bytes() == before
    assert is_released(load_pack(released_dir)) is None


def test_a_new_version_is_released_beside_the_old(released_dir: Path) -> None:
    skill = released_dir / "skill.yaml"
    skill.write_text(skill.read_text(encoding="utf-8").replace('version: "3.2.0"', 'version: "3.2.1"', 1),
                     encoding="utf-8")
    outcome = release_pack(released_dir, "Dana Ops", clock=clock)
    assert outcome.created
    assert [r.version for r in released_versions(released_dir)] == ["3.2.0", "3.2.1"]
    assert is_released(load_pack(released_dir)) == outcome.release


def test_failing_pack_tests_refuse_the_release(pack_dir: Path) -> None:
    break_a_rule_test(pack_dir)
    with pytest.raises(ReleaseRefused, match=r"1 pack test\(s\) fail .*confirmed data loss"):
        release_pack(pack_dir, "Dana Ops", clock=clock)
    assert not (pack_dir / RELEASES_FILE).exists()


def test_empty_approver_is_refused(pack_dir: Path) -> None:
    with pytest.raises(ReleaseRefused, match="approved-by"):
        release_pack(pack_dir, "  ", clock=clock)


def test_malformed_releases_file_names_the_line(pack_dir: Path) -> None:
    (pack_dir / RELEASES_FILE).write_text('\n{"version": "1"}\n', encoding="utf-8")
    with pytest.raises(PackError, match=r"releases\.jsonl:2: not a release record"):
        released_versions(pack_dir)


# ---------------------------------------------------------------- release, command line

def test_cli_release_then_no_op(pack_dir: Path) -> None:
    first = escalate("policy", "release", pack_dir, "--approved-by", "Dana Ops", "--note", "first")
    assert first.exit_code == 0, first.output
    assert "released 3.2.0" in first.output and "Dana Ops" in first.output
    rec = released_versions(pack_dir)
    assert len(rec) == 1 and rec[0].note == "first"
    again = escalate("policy", "release", pack_dir, "--approved-by", "Dana Ops")
    assert again.exit_code == 0, again.output
    assert "already released" in again.output
    assert len(released_versions(pack_dir)) == 1


def test_cli_release_refusals_exit_1(pack_dir: Path) -> None:
    escalate("policy", "release", pack_dir, "--approved-by", "Dana Ops")
    (pack_dir / "context" / "docs" / "exports.md").open("a", encoding="utf-8").write("\nchanged\n")
    changed = escalate("policy", "release", pack_dir, "--approved-by", "Dana Ops")
    assert changed.exit_code == 1
    assert "refused" in changed.output and "Raise the version" in changed.output


def test_cli_release_failing_tests_exit_1(pack_dir: Path) -> None:
    break_a_rule_test(pack_dir)
    result = escalate("policy", "release", pack_dir, "--approved-by", "Dana Ops")
    assert result.exit_code == 1
    assert "pack test(s) fail" in result.output
    assert not (pack_dir / RELEASES_FILE).exists()


def test_cli_release_invalid_pack_exit_2(tmp_path: Path) -> None:
    result = escalate("policy", "release", tmp_path / "nope", "--approved-by", "Dana Ops")
    assert result.exit_code == 2
    assert "not a folder" in result.output


def test_cli_release_needs_approver(pack_dir: Path) -> None:
    result = escalate("policy", "release", pack_dir)
    assert result.exit_code == 2  # typer: missing option
    assert not (pack_dir / RELEASES_FILE).exists()


# ---------------------------------------------------------------- export

def test_export_of_an_unreleased_pack_is_refused(pack_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "skills"
    with pytest.raises(ReleaseRefused, match="not released.*--draft"):
        export_skill(pack_dir, out)
    assert not out.exists()
    result = escalate("skill", "export", pack_dir, out)
    assert result.exit_code == 1
    assert "not released" in result.output
    assert not out.exists()


def test_export_of_a_pack_changed_since_release_is_refused(released_dir: Path, tmp_path: Path) -> None:
    (released_dir / "severity.yaml").open("a", encoding="utf-8").write("\n# a comment\n")
    with pytest.raises(ReleaseRefused, match="changed since"):
        export_skill(released_dir, tmp_path / "skills")


def test_export_of_a_released_pack(released_dir: Path, tmp_path: Path) -> None:
    result = escalate("skill", "export", released_dir, tmp_path / "skills")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "skills" / "lumen-support-escalation"
    assert validate_skill_folder(folder) == []
    front, body = split_frontmatter((folder / "SKILL.md").read_text(encoding="utf-8"))
    assert set(front) <= set(SPEC_KEYS)
    assert front["name"] == folder.name
    meta = front["metadata"]
    assert meta["version"] == "3.2.0"
    assert meta["content_hash"] == release_hash(released_dir) == released_versions(released_dir)[0].content_hash
    assert meta["owner"] == "Head of Support Operations"
    assert meta["approved_by"] == "Dana Ops"
    assert "draft" not in meta
    assert all(isinstance(v, str) for v in meta.values())
    # the instructions: call escalate for the packet, never write the decisions, humans approve
    assert "escalate run <case> --policy <pack> --format json" in body
    assert "escalate check-update" in body
    assert re.search(r"Never write.*severity.*owner.*customer update", body, re.S)
    assert "without a person's approval" in body
    # references beside it
    refs = folder / "references"
    assert (refs / "skill.yaml").read_bytes() == (released_dir / "skill.yaml").read_bytes()
    sev = (refs / "severity-rules.md").read_text(encoding="utf-8")
    assert "| id | level | section | CEL | reason |" in sev
    pack = load_pack(released_dir)
    for rule in pack.severity.rules:
        assert f"| {rule.id} | {rule.level} | {rule.section} |" in sev
    rows = [ln for ln in sev.splitlines() if ln.startswith("| ")]
    assert len(rows) == len(pack.severity.rules) + 1
    assert all(len(re.findall(r"(?<!\\)\|", ln)) == 6 for ln in rows)  # a CEL `||` cannot split a row
    lang = (refs / "language-rules.md").read_text(encoding="utf-8")
    for lrule in pack.language.forbidden:
        assert f"| {lrule.id} | {lrule.section} |" in lang
    assert json.loads((refs / "release.json").read_text(encoding="utf-8"))["approved_by"] == "Dana Ops"
    # exporting changes nothing in the pack: it is still the released one
    assert is_released(load_pack(released_dir)) is not None


def test_draft_export_is_marked(pack_dir: Path, tmp_path: Path) -> None:
    result = escalate("skill", "export", pack_dir, tmp_path / "skills", "--draft")
    assert result.exit_code == 0, result.output
    folder = tmp_path / "skills" / "lumen-support-escalation"
    assert validate_skill_folder(folder) == []
    front, body = split_frontmatter((folder / "SKILL.md").read_text(encoding="utf-8"))
    assert front["metadata"]["draft"] == "true"
    assert "approved_by" not in front["metadata"]
    assert "DRAFT" in body
    assert not (folder / "references" / "release.json").exists()
    assert not (pack_dir / RELEASES_FILE).exists()


def test_export_rejects_a_skill_name_the_spec_forbids(pack_dir: Path, tmp_path: Path) -> None:
    skill = pack_dir / "skill.yaml"
    skill.write_text(skill.read_text(encoding="utf-8").replace("name: lumen-support-escalation",
                                                               "name: Lumen_Support", 1), encoding="utf-8")
    result = escalate("skill", "export", pack_dir, tmp_path / "skills", "--draft")
    assert result.exit_code == 2
    assert "lowercase letters" in result.output


# ---------------------------------------------------------------- the specification's rules

GOOD = {"name": "my-skill", "description": "Does a thing. Use when a thing is needed."}


@pytest.mark.parametrize(("front", "folder", "problem"), [
    ({**GOOD, "version": "1"}, "my-skill", "version: not a key of the specification"),
    ({**GOOD, "name": "My-Skill"}, "My-Skill", "lowercase"),
    ({**GOOD, "name": "-skill"}, "-skill", "lowercase"),
    ({**GOOD, "name": "my--skill"}, "my--skill", "lowercase"),
    ({**GOOD, "name": "a" * 65}, "a" * 65, "at most 64"),
    (GOOD, "other", "must equal the folder name"),
    ({"name": "my-skill"}, "my-skill", "description: required"),
    ({**GOOD, "description": ""}, "my-skill", "description: required"),
    ({**GOOD, "description": "x" * 1025}, "my-skill", "at most 1024"),
    ({**GOOD, "compatibility": "x" * 501}, "my-skill", "at most 500"),
    ({**GOOD, "metadata": {"version": 1}}, "my-skill", "metadata.version: 1 is not a string"),
    ({**GOOD, "metadata": ["a"]}, "my-skill", "metadata: must be a map"),
    ({**GOOD, "allowed-tools": ["Read"]}, "my-skill", "allowed-tools: must be"),
])
def test_validator_catches(front: dict[str, object], folder: str, problem: str) -> None:
    problems = validate_frontmatter(front, folder)
    assert any(problem in p for p in problems), problems


def test_validator_accepts_the_full_key_set() -> None:
    front = {**GOOD, "license": "Apache-2.0", "compatibility": "Python 3.11+", "metadata": {"version": "1.0"},
             "allowed-tools": "Bash(escalate:*) Read"}
    assert validate_frontmatter(front, "my-skill") == []
    assert validate_frontmatter({**GOOD, "name": "a" * 64}, "a" * 64) == []


def test_folder_validator(tmp_path: Path) -> None:
    folder = tmp_path / "my-skill"
    assert any("missing" in p for p in validate_skill_folder(folder))
    folder.mkdir()
    (folder / "SKILL.md").write_text("# no frontmatter\n", encoding="utf-8")
    assert any("no YAML frontmatter" in p for p in validate_skill_folder(folder))
    (folder / "SKILL.md").write_text(f"---\n{yaml.safe_dump(GOOD)}---\n", encoding="utf-8")
    assert any("body" in p for p in validate_skill_folder(folder))
    (folder / "SKILL.md").write_text(f"---\n{yaml.safe_dump(GOOD)}---\n# Do it\nRun the tool.\n", encoding="utf-8")
    assert validate_skill_folder(folder) == []


def test_release_model_round_trips() -> None:
    r = Release(version="1", content_hash="sha256:x", approved_by="A", approved_at="2026-01-01T00:00:00Z",
                tests=TestCounts(passed=1, failed=0))
    assert Release.model_validate_json(r.model_dump_json()) == r
