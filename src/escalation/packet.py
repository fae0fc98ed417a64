"""The escalation packet: the skill's output, as pydantic models (`escalation-packet/1`).

Every statement a packet makes appears in `claims` with the sources it rests on; the
checklist results are part of the packet, and so are the pack's name, version and content
hash. Serialised with a fixed field order and no run-time data, so the same case and pack
give byte-identical JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceRef(_Model):
    ref: str
    quote: str


class Claim(_Model):
    text: str
    sources: list[SourceRef] = Field(min_length=1)
    visibility: Literal["public", "internal"] = "internal"
    part: str = Field(description="which part of the packet states it: summary, severity, owner, …")


class PackInfo(_Model):
    name: str
    version: str
    content_hash: str


class Severity(_Model):
    level: str
    rule: str
    section: str
    rationale: str
    recorded: str | None
    would_change: list[str]
    facts: dict[str, bool | int | float | str]


class Owner(_Model):
    team: str
    alias: str | None
    section: str
    reason: str
    consulted: str | None = None


class Trigger(_Model):
    key: str
    section: str
    reason: str


class Sla(_Model):
    target: Literal["first_response", "update"]
    target_text: str
    started_at: str
    due_at: str
    remaining_fraction: float
    breached: bool
    at_risk: bool
    business_hours: bool
    timezone: str


class Workaround(_Model):
    exists: bool | None
    description: str | None


class RootCause(_Model):
    status: Literal["confirmed", "suspected"]
    statement: str


class NextAction(_Model):
    actor: str
    action: str
    due: str
    section: str


class MissingInfo(_Model):
    key: str
    question: str
    section: str


class Check(_Model):
    key: str
    passed: bool
    details: list[str] = []


class Packet(_Model):
    schema_: Literal["escalation-packet/1"] = Field("escalation-packet/1", alias="schema")
    case_id: str
    ticket_id: str
    as_of: str
    pack: PackInfo
    summary: str
    product_area: str
    severity: Severity
    owner: Owner
    triggers: list[Trigger]
    sla: Sla | None
    workaround: Workaround
    root_cause: list[RootCause]
    reproduction_steps: list[str]
    customer_update: str
    next_actions: list[NextAction]
    missing_info: list[MissingInfo]
    tone: list[str] = Field(description="how the customer sounds; recorded, never used for severity")
    claims: list[Claim]
    checks: list[Check]
    needs_review: bool

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_json(self, indent: int | None = 1) -> str:
        return self.model_dump_json(by_alias=True, indent=indent)
