"""The `escalation-case/1` input format, as pydantic models, and its loader.

A case is what a help desk knows about one ticket at one moment (`as_of`): the ticket
history (public replies, internal notes, field changes), the account, attachments such
as logs and reproduction notes, related tickets and a linked incident. Every model
forbids unknown fields so that a typo in an importer is an error, not silently lost data.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import InputError

MAX_CASE_BYTES = 64 * 1024 * 1024
"""A case larger than this is refused: attachments are meant to be excerpts, not whole disks."""

MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
"""One attachment's text larger than this (UTF-8) is refused: attach the relevant excerpt of a log."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


TicketId = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int) else v)]
"""Help desks number tickets; a numeric id is accepted and kept as text."""


class Person(_Model):
    name: str
    email: str | None = None


class Author(_Model):
    name: str
    role: Literal["customer", "agent", "engineer", "csm", "system"]


class Assignee(_Model):
    name: str
    group: str | None = None


class Event(_Model):
    id: str = Field(min_length=1)
    at: AwareDatetime
    author: Author
    visibility: Literal["public", "internal"]
    body: str = ""
    changes: dict[str, tuple[Any, Any]] | None = None

    @field_validator("body", mode="before")
    @classmethod
    def _none_body(cls, v: Any) -> Any:
        return "" if v is None else v


class Ticket(_Model):
    id: TicketId
    subject: str
    created_at: AwareDatetime
    status: str
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    severity: str | None = None
    product_area: str | None = None
    engineering_owner: str | None = None
    assignee: Assignee | None = None
    requester: Person
    tags: list[str] = []
    events: list[Event]


class AccountOwner(_Model):
    name: str
    email: str | None = None
    role: str = "csm"


class Account(_Model):
    id: str
    name: str
    tier: str
    owner: AccountOwner | None = None
    timezone: str | None = None


class Attachment(_Model):
    id: str
    kind: Literal["log", "repro_notes", "text"]
    name: str
    text: str


class RelatedTicket(_Model):
    id: TicketId
    account_id: str
    created_at: AwareDatetime
    subject: str
    product_area: str | None = None
    status: str
    error_signature: str | None = None


class Incident(_Model):
    id: str
    title: str
    status: str
    public: bool
    next_update_due: AwareDatetime | None = None


class Case(_Model):
    """One escalation case: the ticket and everything known around it at `as_of`."""

    schema_: Literal["escalation-case/1"] = Field(alias="schema")
    id: str
    as_of: AwareDatetime
    ticket: Ticket
    account: Account
    attachments: list[Attachment] = []
    related_tickets: list[RelatedTicket] = []
    incident: Incident | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def event(self, event_id: str) -> Event | None:
        return next((e for e in self.ticket.events if e.id == event_id), None)


def _json_path(loc: tuple[Any, ...]) -> str:
    path = "$"
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def describe_validation_error(err: ValidationError, where: str) -> str:
    """One line naming the first field at fault as a JSON path, and what is wrong with it."""
    first = err.errors()[0]
    loc = tuple("schema" if p == "schema_" else p for p in first["loc"])
    more = len(err.errors()) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    msg = first["msg"]
    if first["type"] == "timezone_aware":
        msg = "timestamp has no time zone; write it as ISO 8601 with Z or an offset"
    return f"{where}: {_json_path(loc)}: {msg}{tail}"


def parse_case(data: Any, where: str = "case") -> Case:
    """Validate already-decoded JSON as a case, with errors that name the JSON path."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(data).__name__}")
    try:
        case = Case.model_validate(data)
    except ValidationError as e:
        raise InputError(describe_validation_error(e, where)) from None
    if not case.ticket.events:
        raise InputError(f"{where}: $.ticket.events: the ticket has no events; there is nothing to assess")
    seen: set[str] = set()
    for i, ev in enumerate(case.ticket.events):
        if ev.id in seen:
            raise InputError(f"{where}: $.ticket.events[{i}].id: duplicate event id {ev.id!r}")
        seen.add(ev.id)
    for i, att in enumerate(case.attachments):
        # a str has at most 4 UTF-8 bytes a character: encode only when it could be over the limit
        size = len(att.text) if len(att.text) * 4 <= MAX_ATTACHMENT_BYTES else len(att.text.encode("utf-8"))
        if size > MAX_ATTACHMENT_BYTES:
            raise InputError(f"{where}: $.attachments[{i}].text: attachment {att.name!r} is {size / 2**20:.1f} MiB, "
                             f"over the {MAX_ATTACHMENT_BYTES // 2**20} MiB limit for one attachment; attach an "
                             "excerpt (the lines around the failure), not the whole file")
    return case


def check_against_pack(case: Case, area_keys: Iterable[str], where: str = "case") -> None:
    """Check the values a case takes from the pack's vocabulary; the pack is known only to the caller.

    `ticket.product_area` must be null or one of the pack's product area keys (the case
    format allows nothing else): a typo such as "export" would otherwise route silently.
    """
    known = list(area_keys)
    area = case.ticket.product_area
    if area is not None and area not in known:
        raise InputError(f"{where}: $.ticket.product_area: unknown product area {area!r}; "
                         f"the policy pack knows {', '.join(known)} (or null when nobody set it)")


def load_case(path: Path) -> Case:
    """Read and validate one case file; every failure is an InputError naming the file."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror}") from None
    if size > MAX_CASE_BYTES:
        raise InputError(f"{path}: {size / 1e6:.0f} MB is larger than the {MAX_CASE_BYTES // 2**20} MiB limit "
                         "for one case; attach excerpts of logs, not whole files")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 at byte {e.start}; save the case as UTF-8 JSON") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}:{e.colno}: invalid JSON: {e.msg}") from None
    return parse_case(data, str(path))

