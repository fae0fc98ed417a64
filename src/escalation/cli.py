"""The `escalate` command line: run the skill, validate packs, check draft replies.

Exit codes: 0 success; 1 a check failed (`--strict`) or `check-update` found problems;
2 bad input (case, pack or draft) — a one-line message says what and where;
70 an internal error (a bug in this project; `--debug` shows the traceback).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .case import Case, check_against_pack, load_case
from .connectors.vendors import EMIT_KINDS, VENDORS, import_files
from .customer_safe import check_for_case
from .engine import run as run_engine
from .errors import EscalationError, InputError
from .pack import Pack, load_pack
from .packet import Packet
from .render import render_packet

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
policy_app = typer.Typer(no_args_is_help=True, help="Validate and inspect policy packs.")
app.add_typer(policy_app, name="policy")

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_PACK = PACKAGE_DIR / "packs" / "lumen"
DEMO_CASES = PACKAGE_DIR / "demo"

err = Console(stderr=True)
T = TypeVar("T")


class ToneCheckOpt(StrEnum):
    facts = "facts"
    text = "text"
    off = "off"


class Format(StrEnum):
    text = "text"
    json = "json"
    jsonl = "jsonl"


def _guard(debug: bool, fn: Callable[[], T]) -> T:
    """Run a command body: user errors are one line and exit 2; bugs exit 70."""
    try:
        return fn()
    except EscalationError as e:
        if debug:
            traceback.print_exc()
        _print_error(e)
        raise typer.Exit(2) from None
    except typer.Exit:
        raise
    except Exception as e:  # noqa: BLE001 - the boundary that turns bugs into a clear message
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]internal error (a bug in escalate):[/] {escape(f'{type(e).__name__}: {e}')} "
                  "— rerun with --debug", highlight=False, soft_wrap=True)
        raise typer.Exit(70) from None


def _print_error(e: Exception) -> None:
    """One line on stderr; the message is user data (paths, regexes, JSON paths), never markup."""
    message = re.sub(r"\s*[\r\n]+\s*", " ", str(e).strip())
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _load_case_for(path: Path, pack: Pack) -> Case:
    """Load a case and check the values it takes from the pack (its product area)."""
    case = load_case(path)
    check_against_pack(case, [a.key for a in pack.routing.areas], str(path))
    return case


def case_paths(paths: list[Path]) -> list[Path]:
    """Case files named or found in folders (`*.case.json`, else `*.json`); never `*.gold.json`."""
    out: list[Path] = []
    for p in paths:
        if p.is_dir():
            found = sorted(p.glob("*.case.json")) or sorted(x for x in p.glob("*.json")
                                                            if not x.name.endswith(".gold.json"))
            if not found:
                raise InputError(f"{p}: no *.case.json files in this folder")
            out.extend(found)
        elif p.name.endswith(".gold.json"):
            raise InputError(f"{p}: a gold label file, not a case; pass the matching .case.json")
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: no such file or folder")
    return out


def _load_policy(policy: Path | None) -> Pack:
    return load_pack(policy or BUNDLED_PACK)


def _progress(total: int) -> Progress:
    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=err, transient=True, disable=total < 2)


_IMPORT_PANEL = "Help-desk import (--from)"
_EMIT_PANEL = "Hand back (--emit)"
CommentsOpt = Annotated[Path | None, typer.Option("--comments", help="zendesk, jira, bugzilla: the comments file",
                                                  rich_help_panel=_IMPORT_PANEL)]
UsersOpt = Annotated[Path | None, typer.Option("--users", help="zendesk: users (roles tell customer from agent)",
                                               rich_help_panel=_IMPORT_PANEL)]
OrgOpt = Annotated[Path | None, typer.Option("--org", help="zendesk: the organization (tier, account owner)",
                                             rich_help_panel=_IMPORT_PANEL)]
ConversationsOpt = Annotated[Path | None, typer.Option("--conversations", help="freshdesk: the conversations",
                                                       rich_help_panel=_IMPORT_PANEL)]
RequesterOpt = Annotated[Path | None, typer.Option("--requester", help="freshdesk: the requester contact",
                                                   rich_help_panel=_IMPORT_PANEL)]
CompanyOpt = Annotated[Path | None, typer.Option("--company", help="freshdesk: the company",
                                                 rich_help_panel=_IMPORT_PANEL)]
AgentsOpt = Annotated[Path | None, typer.Option("--agents", help="freshdesk: agents (GET /api/v2/agents), for names",
                                                rich_help_panel=_IMPORT_PANEL)]
HistoryOpt = Annotated[Path | None, typer.Option("--history", help="bugzilla: the bug history",
                                                 rich_help_panel=_IMPORT_PANEL)]
AsOfOpt = Annotated[str | None, typer.Option(
    "--as-of", help="assess as of this ISO 8601 time (default: the newest event, so an import is repeatable)",
    rich_help_panel=_IMPORT_PANEL)]


def _extras(**files: Path | None) -> dict[str, Path]:
    return {k: v for k, v in files.items() if v is not None}


def _as_of(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--as-of {text!r}: not an ISO 8601 time; write e.g. 2026-03-04T10:00:00Z") from None
    if at.tzinfo is None:
        raise InputError(f"--as-of {text!r}: no time zone; add Z or an offset such as +02:00")
    return at


def _warned(load: Callable[[], tuple[Case, list[str]]]) -> Callable[[], Case]:
    """A loader that prints the importer's mapping warnings on stderr."""
    def inner() -> Case:
        case, warnings = load()
        for w in warnings:
            err.print(f"[yellow]warning:[/] {escape(w)}", highlight=False, soft_wrap=True)
        return case
    return inner


def _write_emitted(out: Any, kind: str, packet: Packet, case: Case, *, post: bool, dry_run: bool, one: bool) -> None:
    """Write (or post) what a vendor accepts; markdown is written as text."""
    from .connectors import emit as emitters
    from .connectors import http

    payload = emitters.emit(kind, packet, case)
    if post:
        if kind == "zendesk-note" and not case.id.startswith("zendesk-"):
            raise InputError(f"--post zendesk-note: case {case.id} did not come from Zendesk, so there is no "
                             "Zendesk ticket to add the note to; import it with --from zendesk")
        ticket = case.ticket.id if kind == "zendesk-note" else None
        payload = http.post(kind, payload, ticket=ticket, dry_run=dry_run)
    if kind == "markdown":  # for people to read (run refuses --post with it)
        out.write(payload["text"] + "\n")
    else:
        out.write(json.dumps(payload, indent=2 if one else None, ensure_ascii=False) + "\n")


PolicyOpt = Annotated[Path | None, typer.Option("--policy", "-p", help="policy pack folder (default: bundled Lumen)")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="show tracebacks")]


@app.command()
def run(
    cases: Annotated[list[Path], typer.Argument(help="case files or folders of *.case.json")],
    policy: PolicyOpt = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="text, json, or jsonl (one packet per line)")] = (
        Format.text),
    strict: Annotated[bool, typer.Option("--strict", help="exit 1 when any packet fails a check")] = False,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write packets here, not stdout")] = None,
    tone_check: Annotated[ToneCheckOpt, typer.Option(
        "--tone-check", help="facts: vary tone facts and priority (fast); text: also rewrite the customer's "
                             "messages angrier and calmer and re-run (thorough); off")] = ToneCheckOpt.facts,
    source: Annotated[str | None, typer.Option(
        "--from", help="read help-desk exports instead of case files: " + ", ".join(VENDORS),
        rich_help_panel=_IMPORT_PANEL)] = None,
    comments: CommentsOpt = None, users: UsersOpt = None, org: OrgOpt = None,
    conversations: ConversationsOpt = None, requester: RequesterOpt = None, company: CompanyOpt = None,
    agents: AgentsOpt = None, history: HistoryOpt = None,
    as_of: AsOfOpt = None,
    emit: Annotated[str | None, typer.Option(
        "--emit", help="print what a help desk or chat accepts instead of the packet: " + ", ".join(EMIT_KINDS),
        rich_help_panel=_EMIT_PANEL)] = None,
    post: Annotated[bool, typer.Option(
        "--post", help="send the --emit payload with the vendor's API (credentials from environment variables); "
                       "a dry run unless --no-dry-run", rich_help_panel=_EMIT_PANEL)] = False,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run/--no-dry-run", help="with --post: show the request instead of sending it",
        rich_help_panel=_EMIT_PANEL)] = True,
    debug: DebugOpt = False,
) -> None:
    """Produce the escalation packet for each case (or each ticket of a help-desk export, with --from)."""

    def body() -> None:
        pack = _load_policy(policy)
        if emit is not None and emit not in EMIT_KINDS:
            raise InputError(f"--emit {emit}: unknown; choose one of {', '.join(EMIT_KINDS)}")
        if post and emit is None:
            raise InputError("--post sends an --emit payload; add --emit zendesk-note, jira-issue or slack")
        if post and emit == "markdown":
            raise InputError("--emit markdown is for people to read; nothing to post")
        extras = _extras(comments=comments, users=users, organization=org, conversations=conversations,
                         requester=requester, company=company, agents=agents, history=history)
        loaded: list[tuple[str, Callable[[], Case]]]
        if source is not None:
            if len(cases) != 1:
                raise InputError(f"--from {source}: give one export file (extra files go in --comments, ...)")
            loaded = [(where, _warned(load)) for where, load in
                      import_files(source, cases[0], extras, pack, as_of=_as_of(as_of))]
        else:
            if extras or as_of:
                raise InputError("--comments, --users, ... and --as-of go with --from VENDOR")
            loaded = [(str(p), lambda p=p: _load_case_for(p, pack)) for p in case_paths(cases)]  # type: ignore[misc]
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        console = Console(file=out, soft_wrap=False) if fmt is Format.text else None
        failed_checks = bad_input = 0
        try:
            with _progress(len(loaded)) as progress:
                task = progress.add_task("escalating", total=len(loaded))
                for _name, load in loaded:
                    try:
                        case = load()
                        packet = run_engine(case, pack, tone_check=tone_check.value)
                    except InputError as e:
                        if len(loaded) == 1:
                            raise
                        bad_input += 1
                        _print_error(e)
                        progress.advance(task)
                        continue
                    failed_checks += packet.needs_review
                    if emit is not None:
                        _write_emitted(out, emit, packet, case, post=post, dry_run=dry_run,
                                       one=len(loaded) == 1 and fmt is not Format.jsonl)
                    elif fmt is Format.json and len(loaded) == 1:
                        out.write(packet.to_json() + "\n")
                    elif fmt in (Format.jsonl, Format.json):
                        out.write(packet.to_json(indent=None) + "\n")
                    else:
                        assert console is not None
                        render_packet(packet, console)
                    progress.advance(task)
        finally:
            if output:
                out.close()
        if len(loaded) > 1:
            err.print(f"{len(loaded) - bad_input} packets, {failed_checks} need review, {bad_input} bad inputs",
                      highlight=False)
        if bad_input:
            raise typer.Exit(2)
        if strict and failed_checks:
            raise typer.Exit(1)

    _guard(debug, body)


@app.command("import")
def import_cmd(
    source: Annotated[str, typer.Argument(help="the help desk: " + ", ".join(VENDORS), metavar="VENDOR")],
    export: Annotated[Path, typer.Argument(help="the ticket, issue, bug or e-mail file as the vendor's API gives it")],
    policy: PolicyOpt = None,
    comments: CommentsOpt = None, users: UsersOpt = None, org: OrgOpt = None,
    conversations: ConversationsOpt = None, requester: RequesterOpt = None, company: CompanyOpt = None,
    agents: AgentsOpt = None, history: HistoryOpt = None,
    as_of: AsOfOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the case(s) here, not stdout")] = None,
    debug: DebugOpt = False,
) -> None:
    """Turn a help-desk export into escalation-case/1 JSON (JSON lines when it holds several tickets).

    Which vendor field holds the tier, product area, severity or owner is the pack's
    connectors.yaml; what could not be mapped is a warning on stderr.
    """

    def body() -> None:
        pack = _load_policy(policy)
        extras = _extras(comments=comments, users=users, organization=org, conversations=conversations,
                         requester=requester, company=company, agents=agents, history=history)
        loaders = import_files(source, export, extras, pack, as_of=_as_of(as_of))
        out = output.open("w", encoding="utf-8") if output else sys.stdout
        bad = 0
        try:
            for _where, load in loaders:
                try:
                    case = _warned(load)()
                except InputError as e:
                    if len(loaders) == 1:
                        raise
                    bad += 1
                    _print_error(e)
                    continue
                data = case.model_dump(mode="json", by_alias=True, exclude_none=True)
                out.write(json.dumps(data, indent=2 if len(loaders) == 1 else None, ensure_ascii=False) + "\n")
        finally:
            if output:
                out.close()
        if len(loaders) > 1:
            err.print(f"{len(loaders) - bad} cases, {bad} bad tickets", highlight=False)
        if bad:
            raise typer.Exit(2)

    _guard(debug, body)


@app.command("fetch")
def fetch_cmd(
    source: Annotated[str, typer.Argument(help="zendesk, jira or freshdesk", metavar="VENDOR")],
    ticket: Annotated[str, typer.Option("--ticket", "-t", help="ticket id or issue key")],
    policy: PolicyOpt = None,
    raw: Annotated[bool, typer.Option("--raw", help="print the vendor's payloads, not the case")] = False,
    debug: DebugOpt = False,
) -> None:
    """Fetch one ticket from the help desk's API and print it as a case.

    Credentials come from environment variables (ZENDESK_SUBDOMAIN, ZENDESK_EMAIL,
    ZENDESK_API_TOKEN; JIRA_BASE_URL, JIRA_EMAIL, JIRA_API_TOKEN; FRESHDESK_DOMAIN,
    FRESHDESK_API_KEY) and are never printed.
    """

    def body() -> None:
        from .connectors import http
        from .connectors.vendors import case_from_payloads

        if source not in ("zendesk", "jira", "freshdesk"):
            raise InputError(f"fetch {source}: live fetch is for zendesk, jira and freshdesk; export other "
                             "sources to a file and use `escalate import`")
        payloads = http.fetch(source, ticket)
        if raw:
            print(json.dumps(payloads, indent=2, ensure_ascii=False))
            return
        pack = _load_policy(policy)
        main_key = "issue" if source == "jira" else "ticket"
        extras = {k: v for k, v in payloads.items() if k != main_key and v is not None}
        case = _warned(lambda: case_from_payloads(source, payloads[main_key], extras, pack,
                                                  source_name=f"{source} {ticket}"))()
        print(json.dumps(case.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2,
                         ensure_ascii=False))

    _guard(debug, body)


@app.command()
def demo(debug: DebugOpt = False,
         full: Annotated[bool, typer.Option("--full", help="print every packet in full")] = False) -> None:
    """Run the bundled Lumen pack over the bundled demo cases; no set-up needed."""

    def body() -> None:
        from rich.table import Table

        pack = load_pack(BUNDLED_PACK)
        paths = sorted(DEMO_CASES.glob("*.case.json"))
        console = Console()
        console.print(f"[bold]{pack.name}[/] {pack.version}  {pack.content_hash[:23]}…  "
                      f"({len(pack.severity.rules)} severity rules, {len(pack.routing.areas)} product areas)")
        table = Table(title=f"{len(paths)} demo cases", expand=True)
        table.add_column("case", overflow="fold", ratio=3)
        for col in ("severity", "area → owner", "triggers", "missing"):
            table.add_column(col, overflow="fold", ratio=2)
        table.add_column("checks", no_wrap=True, min_width=6, ratio=1)
        packets = []
        for path in paths:
            packet = run_engine(_load_case_for(path, pack), pack, tone_check="text")
            packets.append(packet)
            table.add_row(packet.case_id, f"{packet.severity.level} {packet.severity.section}",
                          f"{packet.product_area} → {packet.owner.team}",
                          ", ".join(t.key for t in packet.triggers) or "—",
                          ", ".join(m.key for m in packet.missing_info) or "—",
                          "[red]review[/]" if packet.needs_review else "[green]pass[/]")
        console.print(table)
        for packet in packets if full else packets[:1]:
            render_packet(packet, console)
        if not full:
            console.print("[dim]escalate demo --full prints every packet; escalate run CASE --format json "
                          "gives the JSON[/dim]")

    _guard(debug, body)


@app.command("check-update")
def check_update_cmd(
    draft: Annotated[Path, typer.Argument(help="a draft customer reply (text file, or - for stdin)")],
    policy: PolicyOpt = None,
    case: Annotated[Path | None, typer.Option("--case", help="the case, to also catch its internal names "
                                                               "and copied internal notes")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="findings as JSON")] = False,
    debug: DebugOpt = False,
) -> None:
    """Check a draft customer reply against the pack's customer-safe language rules."""

    def body() -> None:
        pack = _load_policy(policy)
        text = _read_draft(draft)
        findings = check_for_case(text, pack.language, load_case(case) if case is not None else None, pack.accounts)
        if as_json:
            print(json.dumps([f.__dict__ for f in findings], indent=1, ensure_ascii=False))
        else:
            console = Console()
            if not findings:
                console.print("[green]clean:[/] no customer-safe rule is broken")
            for f in findings:
                line = text.count("\n", 0, f.start) + 1
                console.print(f"{draft}:{line}: [bold red]{f.rule}[/] ({f.section}) [yellow]{f.words!r}[/] — "
                              f"{f.message}", highlight=False, soft_wrap=True)
        if findings:
            raise typer.Exit(1)

    _guard(debug, body)


def _read_draft(path: Path) -> str:
    if str(path) == "-":
        data = sys.stdin.buffer.read()
    else:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise InputError(f"{path}: cannot read: {e.strerror}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 at byte {e.start}") from None
    if not text.strip():
        raise InputError(f"{path}: the draft is empty")
    return text


@policy_app.command("check")
def policy_check(pack_dir: Annotated[Path, typer.Argument(help="policy pack folder")], debug: DebugOpt = False) -> None:
    """Validate a pack: every file, rule, pattern and template; errors name file and line."""

    def body() -> None:
        pack = load_pack(pack_dir)
        console = Console()
        console.print(f"[green]ok[/] {pack.name} {pack.version} ({pack.content_hash})")
        console.print(f"  {len(pack.severity.rules)} severity rules over {len(pack.severity.facts)} facts; "
                      f"{len(pack.triggers.triggers)} triggers; {len(pack.sla.targets)} SLA rows; "
                      f"{len(pack.routing.areas)} product areas; {len(pack.required_info.items)} required-info items; "
                      f"{len(pack.language.forbidden)} language rules; {len(pack.sections)} handbook sections; "
                      f"{len(pack.docs)} docs; {len(pack.accounts)} accounts")

    _guard(debug, body)


@policy_app.command("test")
def policy_test(pack_dir: Annotated[Path, typer.Argument(help="policy pack folder")],
                as_json: Annotated[bool, typer.Option("--json", help="the report as JSON")] = False,
                debug: DebugOpt = False) -> None:
    """Run the pack's own tests (tests/cases golden cases, tests/rules.yaml); exit 1 when any fails."""

    def body() -> None:
        from rich.table import Table

        from .policy_tests import run_pack_tests

        pack = load_pack(pack_dir)
        report = run_pack_tests(pack)
        if as_json:
            print(report.model_dump_json(indent=1))
        else:
            console = Console()
            console.print(f"[bold]{escape(pack.name)}[/] {escape(pack.version)}  {pack.content_hash[:23]}…")
            table = Table(expand=True)
            table.add_column("result", no_wrap=True)
            table.add_column("test", overflow="fold", ratio=3)
            table.add_column("got", overflow="fold", ratio=2)
            table.add_column("details", overflow="fold", ratio=4)
            for r in report.results:
                if r.passed and r.kind == "rule":
                    lines = [", ".join(k if v is True else f"{k}={json.dumps(v)}" for k, v in r.given.items())]
                elif r.passed:
                    lines = [f"{r.got.get('product_area', '')} → {r.got['owner_team']}".lstrip(),
                             "triggers: " + (", ".join(r.got["triggers"]) or "none"),
                             "missing: " + (", ".join(r.got["missing_info"]) or "none")]
                else:
                    lines = [f"{m.field}: expected {m.expected!r}, got {m.got!r}" + (f" ({m.detail})" if m.detail
                                                                                    else "") for m in r.mismatches]
                    facts = ", ".join(f"{k}={json.dumps(v)}" for k, v in r.deciding_facts.items())
                    lines += [f"fired {r.rule}: {r.rationale}", f"because {facts}", r.where]
                table.add_row("[green]pass[/]" if r.passed else "[bold red]FAIL[/]", escape(f"{r.kind}: {r.name}"),
                              escape(f"{r.got.get('severity', r.got.get('level'))} {r.section}\n{r.rule}"),
                              escape("\n".join(lines)))
            console.print(table)
            console.print(f"{report.passed} passed, {report.failed} failed",
                          style="green" if report.ok else "bold red", highlight=False)
        if not report.ok:
            raise typer.Exit(1)

    _guard(debug, body)


@policy_app.command("schema")
def policy_schema(out_dir: Annotated[Path, typer.Argument(help="folder to write one JSON Schema per pack file")],
                  debug: DebugOpt = False) -> None:
    """Write JSON Schemas for the pack files, so YAML editors validate as people type."""

    def body() -> None:
        from escalation import pack as p

        out_dir.mkdir(parents=True, exist_ok=True)
        models: dict[str, Any] = {
            "skill": p.SkillContract, "severity": p.SeverityPolicy, "triggers": p.TriggerPolicy, "sla": p.SlaPolicy,
            "routing": p.Routing, "actions": p.ActionsPolicy, "required_info": p.RequiredInfo,
            "vocabulary": p.Vocabulary, "language": p.LanguageRules, "connectors": p.ConnectorConfig,
        }
        for name, model in models.items():
            (out_dir / f"{name}.schema.json").write_text(json.dumps(model.model_json_schema(), indent=1) + "\n")
        Console().print(f"wrote {len(models)} schemas to {out_dir}")

    _guard(debug, body)


@policy_app.command("release")
def policy_release(pack_dir: Annotated[Path, typer.Argument(help="policy pack folder")],
                   approved_by: Annotated[str, typer.Option("--approved-by", help="who approved this version")],
                   note: Annotated[str | None, typer.Option("--note", help="a note kept with the release")] = None,
                   debug: DebugOpt = False) -> None:
    """Release the pack's version: check it, run its tests, record hash, approver and time in releases.jsonl."""

    def body() -> None:
        from .release import RELEASES_FILE, ReleaseRefused, release_pack

        try:
            outcome = release_pack(pack_dir, approved_by, note)
        except ReleaseRefused as e:
            err.print(f"[bold red]refused:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        r = outcome.release
        console = Console()
        if not outcome.created:
            console.print(f"already released: {escape(r.version)} ({r.content_hash}) by {escape(r.approved_by)} "
                          f"on {r.approved_at}; nothing to do", highlight=False, soft_wrap=True)
            return
        console.print(f"[green]released[/] {escape(r.version)} ({r.content_hash}) approved by "
                      f"{escape(r.approved_by)} at {r.approved_at}; tests {r.tests.passed} passed, "
                      f"{r.tests.failed} failed; recorded in {escape(str(pack_dir / RELEASES_FILE))}", highlight=False,
                      soft_wrap=True)

    _guard(debug, body)


skill_app = typer.Typer(no_args_is_help=True, help="Export a released pack as an Agent Skill.")
app.add_typer(skill_app, name="skill")


@skill_app.command("export")
def skill_export(pack_dir: Annotated[Path, typer.Argument(help="policy pack folder (a released version)")],
                 out_dir: Annotated[Path, typer.Argument(help="folder to write the skill into, as DIR/<skill name>/")],
                 draft: Annotated[bool, typer.Option("--draft", help="export an unreleased pack, marked draft")]
                 = False,
                 debug: DebugOpt = False) -> None:
    """Write the pack as an Agent Skills folder: SKILL.md with instructions to call escalate, and references/."""

    def body() -> None:
        from .release import ReleaseRefused, export_skill

        try:
            folder = export_skill(pack_dir, out_dir, draft=draft)
        except ReleaseRefused as e:
            err.print(f"[bold red]refused:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        Console().print(f"wrote {escape(str(folder))}{' (draft)' if draft else ''}", highlight=False)

    _guard(debug, body)


@app.command("replay")
def replay_cmd(
    cases: Annotated[list[Path], typer.Argument(help="case files or folders of *.case.json")],
    old: Annotated[Path, typer.Option("--from", help="the pack in force")],
    new: Annotated[Path, typer.Option("--to", help="the changed pack")],
    checks: Annotated[bool, typer.Option("--checks", help="also run the full checklist under both packs (slower)")]
    = False,
    workers: Annotated[int, typer.Option("--workers", help="processes (default: one per core for 1,000+ cases)")]
    = 0,
    as_json: Annotated[Path | None, typer.Option("--json", help="write the report as JSON here")] = None,
    as_html: Annotated[Path | None, typer.Option("--html", help="write the report as HTML here")] = None,
    debug: DebugOpt = False,
) -> None:
    """Re-run cases under two packs and show what the change would change, before releasing it."""

    def body() -> None:
        import os

        from rich.table import Table

        from .replay import replay, to_html

        old_pack, new_pack = load_pack(old), load_pack(new)
        paths = case_paths(cases)
        n_workers = workers or ((os.cpu_count() or 1) if len(paths) >= 1000 else 1)
        with _progress(len(paths)) as progress:
            task = progress.add_task("replaying", total=len(paths))
            report = replay(paths, old_pack, new_pack, checks=checks, workers=n_workers,
                            progress=lambda k: progress.advance(task, k))
        console = Console()
        table = Table(title=f"{old_pack.name} {old_pack.version} → {new_pack.name} {new_pack.version}: "
                            f"{len(report.changed)} of {report.cases} cases change", expand=True)
        for col in ("case", "severity", "deciding rule", "owner", "triggers", "SLA", "checks newly failing"):
            table.add_column(col, overflow="fold")
        for c in report.changed:
            sev = c.old.severity + (f" → {c.new.severity} ({c.severity})" if c.severity != "same" else "")
            rule = c.old.rule if c.old.rule == c.new.rule else f"{c.old.rule} ({c.old.section}) → " \
                f"{c.new.rule} ({c.new.section})"
            owner = c.old.owner if not c.owner_changed else f"{c.old.owner} → {c.new.owner}"
            trig = " ".join([f"+{t}" for t in c.triggers_added] + [f"-{t}" for t in c.triggers_removed])
            sla = f"{c.old.sla_target} → {c.new.sla_target}" if c.sla_tightened else ""
            table.add_row(c.case_id, sev, rule, owner, trig, sla, ", ".join(c.checks_newly_failing))
        console.print(table)
        console.print(f"severity up {report.severity_up}, down {report.severity_down}; owner {report.owner_changed}; "
                      f"triggers {report.triggers_changed}; SLA tightened {report.sla_tightened}; checks newly "
                      f"failing {report.checks_newly_failing}; {report.seconds:.1f} s"
                      f"{' (facts shared)' if report.facts_shared else ''}", highlight=False)
        if as_json:
            as_json.write_text(report.model_dump_json(indent=1) + "\n", encoding="utf-8")
        if as_html:
            as_html.write_text(to_html(report), encoding="utf-8")

    _guard(debug, body)


@app.command("init")
def init_cmd(
    dest: Annotated[Path, typer.Argument(help="folder for the new pack (must not exist or be empty)")],
    name: Annotated[str, typer.Option("--name", help="the skill's name: lowercase letters, digits, hyphens")],
    owner: Annotated[str, typer.Option("--owner", help="who owns and releases the pack")],
    debug: DebugOpt = False,
) -> None:
    """Scaffold a new company's policy pack from the commented starter, ready to edit."""

    def body() -> None:
        from .policy_tests import run_pack_tests
        from .scaffold import scaffold

        pack = scaffold(dest, name=name, owner=owner)
        report = run_pack_tests(pack)
        console = Console()
        console.print(f"[green]created[/] {dest} — {pack.name} {pack.version}, owner {owner}")
        console.print(f"  starter tests: {report.passed} passed, {report.failed} failed")
        console.print("  next: edit context/handbook.md and the YAML files (each section says how), then\n"
                      f"    escalate policy check {dest}\n    escalate policy test {dest}\n"
                      f"    escalate policy release {dest} --approved-by \"{owner}\"", highlight=False)

    _guard(debug, body)


DatabaseOpt = Annotated[str | None, typer.Option(
    "--database", help="database URL (default: $ESCALATE_DATABASE_URL, else sqlite:///escalate.db)")]


@app.command("serve")
def serve_cmd(
    policy: PolicyOpt = None,
    database: DatabaseOpt = None,
    host: Annotated[str, typer.Option("--host", help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port")] = 8000,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="run an unreleased pack as a clearly marked draft")] = False,
    workers: Annotated[int, typer.Option("--workers", help="uvicorn worker processes")] = 1,
    demo: Annotated[bool, typer.Option(
        "--demo", help="try it out: the bundled demo cases in escalate-demo.db, one user per role (keys printed), "
                       "the pack as a sandbox draft if it is not released")] = False,
    debug: DebugOpt = False,
) -> None:
    """Run the governed service (FastAPI + uvicorn); the OpenAPI document is at /docs, the console at /ui."""

    def body() -> None:
        import os

        import uvicorn

        from .service import Runtime, Settings

        if demo:
            from .release import is_released

            database_url = database or os.environ.get("ESCALATE_DATABASE_URL") or "sqlite:///escalate-demo.db"
            unreleased = is_released(_load_policy(policy)) is None
            settings = Settings.from_env(database_url=database_url, policy=policy, sandbox=(sandbox or unreleased)
                                         or None)
            _seed_demo(settings, host, port)
        else:
            settings = Settings.from_env(database_url=database, policy=policy, sandbox=sandbox or None)
        # Check everything (database, pack release) before binding the port: errors are one line.
        # Each server process then records its own pack load in the audit trail.
        Runtime(settings, record=False).engine.dispose()
        err.print(f"escalate serve: http://{host}:{port}  database {_shown_url(settings.database_url)}  "
                  f"pack {settings.policy}" + ("  [yellow](sandbox: draft pack)[/]" if settings.sandbox else ""),
                  highlight=False)
        os.environ["ESCALATE_DATABASE_URL"] = settings.database_url
        os.environ["ESCALATE_POLICY"] = str(settings.policy)
        os.environ["ESCALATE_SANDBOX"] = "1" if settings.sandbox else ""
        uvicorn.run("escalation.service:create_app", factory=True, host=host, port=port, workers=workers,
                    log_level="warning")

    _guard(debug, body)


def _seed_demo(settings: Any, host: str, port: int) -> None:
    """On an empty database: one user per role (keys printed once) and the bundled demo cases, ingested
    through the API itself, so the queue, the packets and the audit trail are real."""
    import warnings

    from rich.table import Table

    with warnings.catch_warnings():  # starlette's notice about its httpx-based client, not ours to act on
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    from . import permissions, store
    from .service import create_app

    app = create_app(settings)
    rt = app.state.runtime
    paths = sorted(DEMO_CASES.glob("*.case.json"))
    with rt.session() as s:
        if store.user_by_name(s, "integration") is not None:
            err.print("demo data already loaded (delete the database file to start over); the keys were printed "
                      "when it was created", highlight=False)
            rt.engine.dispose()
            return
        first_account = load_case(paths[0]).account.id if paths else ""
        keys = {}
        for role in permissions.roles(rt.pack):
            accounts = [first_account] if permissions.restricted(rt.pack, role) else []
            _, keys[role] = store.create_user(s, role, role, accounts)
    client = TestClient(app)
    for path in paths:
        r = client.post("/cases", content=path.read_bytes(),
                        headers={"Authorization": f"Bearer {keys['integration']}", "Idempotency-Key": path.name})
        if r.status_code >= 300:
            raise InputError(f"{path.name}: the service refused the demo case: {r.text}")
    rt.engine.dispose()
    table = Table(title=f"demo users (sign in at http://{host}:{port}/ui; keys are shown only now)")
    table.add_column("user = role")
    table.add_column("API key", overflow="fold")
    for role, key in keys.items():
        table.add_row(role, key)
    Console(stderr=True).print(table)
    err.print(f"{len(paths)} demo cases ingested", highlight=False)


def _shown_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return "<invalid url>"


user_app = typer.Typer(no_args_is_help=True, help="People and their API keys for the service.")
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: Annotated[str, typer.Argument(help="the person's login name")],
    role: Annotated[str, typer.Option("--role", help="a role of the pack's skill contract, or 'integration' "
                                                     "for help-desk webhooks")],
    account: Annotated[list[str] | None, typer.Option(
        "--account", help="an account id this person owns (for own-accounts-only roles); repeat")] = None,
    policy: PolicyOpt = None,
    database: DatabaseOpt = None,
    debug: DebugOpt = False,
) -> None:
    """Create a user and print their API key once (only its hash is stored)."""

    def body() -> None:
        from sqlalchemy.orm import Session

        from . import audit, permissions, store

        pack = _load_policy(policy)
        roles = permissions.roles(pack)
        engine = store.connect(database or store.database_url())
        store.migrate(engine)
        with Session(engine) as s, s.begin():
            if store.user_by_name(s, name) is not None:
                raise InputError(f"user {name!r} exists; choose another name")
            user, key = store.create_user(s, name, role, account or [], known_roles=roles)
            audit.append(s, actor="cli", action="user.create", subject=f"user:{name}",
                         detail={"role": role, "accounts": list(account or [])})
        err.print(f"created {name} ({role}); API key (shown once):", highlight=False)
        print(key)

    _guard(debug, body)


audit_app = typer.Typer(no_args_is_help=True, help="The hash-chained audit trail.")
app.add_typer(audit_app, name="audit")


@audit_app.command("verify")
def audit_verify(
    database: DatabaseOpt = None,
    expect_head: Annotated[str | None, typer.Option(
        "--expect-head", help="SEQ:HASH recorded earlier (`escalate audit head`), to detect removed newest entries")]
    = None,
    debug: DebugOpt = False,
) -> None:
    """Check that no audit entry was edited or removed; exit 1 with the entries at fault."""

    def body() -> None:
        from . import audit, store

        expected = None
        if expect_head:
            seq, _, digest = expect_head.partition(":")
            if not seq.isdigit() or len(digest) != 64:
                raise InputError(f"--expect-head {expect_head!r}: write SEQ:HASH as `escalate audit head` prints it")
            expected = (int(seq), digest)
        problems = audit.verify_url(database or store.database_url(), expect_head=expected)
        for p in problems:
            err.print(f"[bold red]audit:[/] {escape(p)}", highlight=False, soft_wrap=True)
        if problems:
            raise typer.Exit(1)
        Console().print("[green]audit trail intact[/]")

    _guard(debug, body)


@audit_app.command("head")
def audit_head(database: DatabaseOpt = None, debug: DebugOpt = False) -> None:
    """Print SEQ:HASH of the newest entry, to keep outside the database."""

    def body() -> None:
        from sqlalchemy.orm import Session

        from . import audit, store

        engine = store.connect(database or store.database_url())
        with Session(engine) as s:
            h = audit.head(s)
        if h is None:
            raise InputError("the audit trail is empty")
        print(f"{h[0]}:{h[1]}")

    _guard(debug, body)



@app.command("worker")
def worker_cmd(
    policy: PolicyOpt = None,
    database: DatabaseOpt = None,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="run an unreleased pack as a clearly marked draft")] = False,
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", help="jobs at once in this process (default: $ESCALATE_WORKER_CONCURRENCY, else 1)")]
    = None,
    queue_name: Annotated[str | None, typer.Option(
        "--queue-name", help="procrastinate queue (default: $ESCALATE_QUEUE_NAME, else escalation)")] = None,
    burst: Annotated[bool, typer.Option(
        "--burst", help="exit once the queue is empty instead of waiting for new jobs")] = False,
    debug: DebugOpt = False,
) -> None:
    """Run a queue worker: run the skill on enqueued case versions (PostgreSQL; see docs/scale-out.md)."""

    def body() -> None:
        import logging

        from .workers import WorkerConfig, run_worker

        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
        cfg = WorkerConfig.from_env(database_url=database, policy=policy, sandbox=sandbox or None,
                                    concurrency=concurrency, queue_name=queue_name)
        if cfg.concurrency < 1:
            raise InputError("--concurrency must be at least 1")

        def ready() -> None:
            err.print(f"escalate worker {cfg.name}: queue {cfg.queue_name}  concurrency {cfg.concurrency}  "
                      f"database {_shown_url(cfg.database_url)}  pack {cfg.policy}"
                      + ("  [yellow](sandbox: draft pack)[/]" if cfg.sandbox else ""), highlight=False)

        run_worker(cfg, wait=not burst, on_ready=ready)

    _guard(debug, body)


@app.command("backfill")
def backfill_cmd(
    since: Annotated[str, typer.Option("--since", help="enqueue case versions received from this date "
                                                      "(YYYY-MM-DD, UTC, or an ISO 8601 time)")],
    pack_version: Annotated[str | None, typer.Option(
        "--pack", help="the pack version to run (must be the version of --policy)", metavar="VERSION")] = None,
    policy: PolicyOpt = None,
    database: DatabaseOpt = None,
    sandbox: Annotated[bool, typer.Option(
        "--sandbox", help="run an unreleased pack as a clearly marked draft")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", help="case versions per batch (one commit each)")]
    = 500,
    restart: Annotated[bool, typer.Option(
        "--restart", help="ignore the cursor of an earlier run with the same pack and date")] = False,
    debug: DebugOpt = False,
) -> None:
    """Enqueue every stored case version since a date for the workers; resumable, never overwrites packets."""

    def body() -> None:
        import os
        from datetime import UTC

        from . import store
        from .release import is_released
        from .workers import Queue, backfill, require_postgres

        text = since.strip()
        try:
            at = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(f"--since {since!r}: write a date (2026-03-01) or an ISO 8601 time") from None
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        url = database or store.database_url()
        require_postgres(url, "escalate backfill")
        sandboxed = sandbox or os.environ.get("ESCALATE_SANDBOX", "").lower() in ("1", "true", "yes")
        policy_dir = policy or Path(os.environ.get("ESCALATE_POLICY", str(BUNDLED_PACK)))
        pack = load_pack(policy_dir)
        if pack_version is not None and pack.version != pack_version:
            raise InputError(f"--pack {pack_version}: {policy_dir} holds {pack.name} {pack.version}; "
                             "point --policy at the folder of that version")
        if not sandboxed and is_released(pack) is None:
            raise InputError(f"{pack.name} {pack.version} ({policy_dir}) is not released: release it with "
                             f"`escalate policy release {policy_dir} --approved-by NAME`, or use --sandbox")
        engine = store.connect(url)
        store.migrate(engine)
        queue = Queue.attach(engine)
        with _progress(2) as bar:
            task = bar.add_task("enqueueing", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            rep = backfill(engine, queue, pack, policy=policy_dir, sandbox=sandboxed, since=at,
                           batch_size=batch_size, restart=restart, progress=progress)
        engine.dispose()
        resumed = f" (resumed after case row {rep.resumed_from})" if rep.resumed_from else ""
        err.print(f"backfill {pack.name} {pack.version} ({pack.content_hash[:19]}) since {at.isoformat()}: "
                  f"{rep.enqueued} enqueued, {rep.skipped} already done or queued, {rep.scanned}/{rep.total} "
                  f"scanned{resumed} in {rep.seconds:.1f} s; cursor {rep.cursor}", highlight=False, soft_wrap=True)

    _guard(debug, body)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
