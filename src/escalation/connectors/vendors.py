"""The vendors we import from: which files each takes, and reading them into cases.

One table (`VENDORS`) says which supplementary files a vendor's importer accepts, so the
CLI, the service's webhooks and the tests share one way in. Reading files is here (the
edge); the importers themselves take decoded payloads.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..case import Case
from ..errors import InputError
from ..pack import Pack
from .ticket import ImportedTicket, to_case

MAX_PAYLOAD_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Vendor:
    name: str
    extras: tuple[str, ...]
    """Supplementary payloads the importer takes (keyword names of its `parse`)."""
    help: str


VENDORS: dict[str, Vendor] = {
    "zendesk": Vendor("zendesk", ("comments", "users", "organization"),
                      "GET /api/v2/tickets/{id}.json (sideloads welcome); --comments, --users, --org"),
    "jira": Vendor("jira", ("comments",),
                   "GET /rest/api/2|3/issue/{key}?expand=changelog, or a search result; --comments"),
    "freshdesk": Vendor("freshdesk", ("conversations", "requester", "company", "agents"),
                        "GET /api/v2/tickets/{id}; --conversations (GET .../conversations), --agents"),
    "email": Vendor("email", (), "one .eml message or an .mbox thread"),
    "bugzilla": Vendor("bugzilla", ("comments", "history"),
                       "GET /rest/bug/{id} (or JSON lines of bugs); --comments, --history"),
}


EMIT_KINDS: tuple[str, ...] = ("zendesk-note", "jira-issue", "slack", "markdown")
"""What `escalate run --emit` writes: a Zendesk internal note + draft reply, a Jira issue, Slack, Markdown."""


def vendor(name: str) -> Vendor:
    try:
        return VENDORS[name]
    except KeyError:
        raise InputError(f"unknown help desk {name!r}; choose one of {', '.join(VENDORS)}") from None


def read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size > MAX_PAYLOAD_BYTES:
            raise InputError(f"{path}: {size / 2**20:.0f} MiB is over the {MAX_PAYLOAD_BYTES // 2**20} MiB limit "
                             "for one help-desk export")
        return path.read_bytes()
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None


def read_json(path: Path) -> Any:
    """A JSON file, or JSON lines (a list of records) when the file holds one object a line."""
    raw = read_bytes(path)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 at byte {e.start}; export the payload as JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 and all(ln.lstrip().startswith("{") for ln in lines[:3]):
            try:
                return [json.loads(ln) for ln in lines]
            except json.JSONDecodeError as e2:
                raise InputError(f"{path}: line {e2.lineno}: not valid JSON lines: {e2.msg}") from None
        hint = " (this looks like an e-mail; use `escalate import email`)" if text[:5] in ("From ", "Recei") \
            or text.startswith(("Return-Path:", "Received:", "From:", "Message-ID:")) else ""
        raise InputError(f"{path}:{e.lineno}:{e.colno}: not valid JSON: {e.msg}{hint}") from None


def _records(name: str, data: Any) -> list[Any]:
    """Split exports that hold several tickets (Jira search results, Bugzilla bug lists, JSON lines)."""
    if name == "jira" and isinstance(data, dict) and isinstance(data.get("issues"), list):
        return list(data["issues"])
    if name == "bugzilla" and isinstance(data, dict) and isinstance(data.get("bugs"), list) \
            and len(data["bugs"]) > 1:
        return [{"bugs": [b]} for b in data["bugs"]]
    if isinstance(data, list) and name in ("jira", "bugzilla") and data and all(isinstance(x, dict) for x in data):
        return data
    return [data]


def _parse(name: str, main: Any, extras: dict[str, Any], *, staff_domains: list[str],
           source_name: str) -> ImportedTicket:
    """Run one vendor's importer over decoded payloads (or raw bytes for e-mail)."""
    v = vendor(name)
    unknown = sorted(set(extras) - set(v.extras))
    if unknown:
        raise InputError(f"{name} takes no --{unknown[0]} file" + (
            f"; it takes {', '.join('--' + x for x in v.extras)}" if v.extras else ""))
    if name == "zendesk":
        from . import zendesk
        return zendesk.parse(main, **extras)
    if name == "jira":
        from . import jira
        return jira.parse(main, **extras)
    if name == "freshdesk":
        from . import freshdesk
        return freshdesk.parse(main, **extras)
    if name == "bugzilla":
        from . import bugzilla
        return bugzilla.parse(main, **extras)
    from . import email
    if not isinstance(main, bytes):
        raise InputError(f"{source_name}: an e-mail importer takes the raw message bytes")
    return email.parse(main, name=source_name, staff_domains=staff_domains)


def case_from_payloads(name: str, main: Any, extras: dict[str, Any], pack: Pack, *, as_of: datetime | None = None,
                       source_name: str = "input") -> tuple[Case, list[str]]:
    """One ticket's decoded payloads (raw bytes for e-mail) as a case under the pack's field mapping, with the
    mapping's warnings: the one way in for files, live fetches and webhooks."""
    mapping = pack.connectors.for_vendor(vendor(name).name)
    imported = _parse(name, main, extras, staff_domains=list(mapping.staff_email_domains), source_name=source_name)
    return to_case(imported, mapping, pack, as_of=as_of)


def import_files(name: str, main: Path, extras: dict[str, Path], pack: Pack, *,
                 as_of: datetime | None = None) -> list[tuple[str, Callable[[], tuple[Case, list[str]]]]]:
    """A vendor export (and its supplementary files) as one loader per ticket.

    Each loader returns the case and the mapping warnings, or raises InputError naming the
    file and record, so one bad ticket in a large export does not stop the others.
    """
    vendor(name)
    if name == "email":
        if extras:
            raise InputError("email takes no supplementary files: the thread is the .mbox or .eml file")
        raw = read_bytes(main)
        return [(str(main), lambda: case_from_payloads(name, raw, {}, pack, as_of=as_of, source_name=main.name))]
    loaded = {k: read_json(p) for k, p in extras.items()}
    records = _records(name, read_json(main))
    if len(records) > 1 and loaded:
        raise InputError(f"{main}: holds {len(records)} tickets; supplementary files belong to one ticket, so "
                         "import the tickets one at a time or embed their comments")

    def loader(record: Any, where: str) -> Callable[[], tuple[Case, list[str]]]:
        def load() -> tuple[Case, list[str]]:
            try:
                return case_from_payloads(name, record, loaded, pack, as_of=as_of, source_name=where)
            except InputError as e:
                raise InputError(f"{where}: {e}") from None
        return load
    wheres = [f"{main} record {i + 1}" if len(records) > 1 else str(main) for i in range(len(records))]
    return [(where, loader(r, where)) for where, r in zip(wheres, records, strict=True)]
