"""The vendor-neutral ticket every importer produces, and how it becomes a case.

Importers only read their vendor's shapes into `ImportedTicket` (events already in case
form, bodies already plain text); everything decided by policy — tier, product area,
severity field, owners — comes from the pack's field mapping and account list here, so
all vendors fill a case the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..case import Case, parse_case
from ..errors import InputError
from ..pack import Pack
from .mapping import VendorMapping, apply

_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass
class ImportedTicket:
    """One ticket as read from a vendor, before policy mapping."""

    source: str                      # "zendesk", "jira", ...
    ticket_id: str
    subject: str
    created_at: datetime
    status: str
    requester_name: str
    requester_email: str | None
    events: list[dict[str, Any]]     # escalation-case/1 events: id, at, author{name, role}, visibility, body, changes
    docs: dict[str, Any]             # the documents mapping paths read ("ticket", "organization", ...)
    tags: list[str] = field(default_factory=list)
    priority: str | None = None      # already one of low/normal/high/urgent, or None
    assignee: dict[str, Any] | None = None
    org_id: str | None = None
    org_name: str | None = None
    attachments: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def api_time(value: Any, where: str, api: str, example: str = "2026-03-04T10:15:30Z") -> datetime:
    """An aware datetime from a vendor API's ISO 8601 text; a clear error instead of a naive or garbled time."""
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{where}: expected a timestamp such as {example}, got {value!r}")
    try:
        dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{where}: {value!r} is not an ISO 8601 timestamp; "
                         f"pass the JSON exactly as the {api} returned it") from None
    if dt.tzinfo is None:
        raise InputError(f"{where}: timestamp {value!r} has no time zone; the {api} writes them with Z or an offset")
    return dt


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-") or "unknown"


def _pack_account(pack: Pack | None, account_id: str | None, name: str | None) -> Any:
    if pack is None:
        return None
    for acc in pack.accounts:
        if account_id and acc.id == account_id:
            return acc
    if name:
        folded = name.casefold()
        for acc in pack.accounts:
            if acc.name.casefold() == folded:
                return acc
    return None


def to_case(t: ImportedTicket, mapping: VendorMapping, pack: Pack | None, *,
            as_of: datetime | None = None) -> tuple[Case, list[str]]:
    """Build and validate the case; returns it with warnings about what could not be mapped.

    `as_of` defaults to the newest event, so importing the same payload twice gives the
    same case (no wall clock).
    """
    warnings = list(t.warnings)
    if not t.events:
        raise InputError(f"{t.source} ticket {t.ticket_id}: no comments or messages to read; "
                         "pass the comments/conversations file as well")
    mapped = apply(mapping, t.docs, t.tags)

    account_id = mapped.get("account_id") or t.org_id
    account_name = mapped.get("account_name") or t.org_name
    if not account_name and t.requester_email and "@" in t.requester_email:
        account_name = t.requester_email.rsplit("@", 1)[1]
    known = _pack_account(pack, account_id, account_name)
    tier = mapped.get("tier") or (known.tier if known else None)
    if tier is None:
        tier = "unknown"
        warnings.append("tier: no mapped field, tag or known account gives the tier; set it in the pack's "
                        f"connectors.yaml ({t.source}.fields.tier) or list the account in context/accounts.csv")
    elif pack is not None:
        tiers = {row.tier for row in pack.sla.targets}
        if tiers and tier not in tiers:
            warnings.append(f"tier: {tier!r} is not a tier of the pack's SLA table ({', '.join(sorted(tiers))}); "
                            "map it with values: in connectors.yaml")
    owner_name = mapped.get("account_owner") or (known.csm_name if known else None)
    account: dict[str, Any] = {
        "id": account_id or (known.id if known else f"{t.source}-org-{_slug(account_name or 'unknown')}"),
        "name": account_name or (known.name if known else "unknown"),
        "tier": tier,
    }
    if owner_name:
        account["owner"] = {"name": owner_name, "email": mapped.get("account_owner_email"), "role": "csm"}
    tz = mapped.get("timezone") or (known.timezone if known else None)
    if tz:
        account["timezone"] = tz

    area = mapped.get("product_area")
    area_keys = [a.key for a in pack.routing.areas] if pack is not None else []
    if area is not None and pack is not None and area not in area_keys:
        warnings.append(f"product_area: {area!r} is not a product area of the pack; left unset "
                        f"(map vendor values to one of {', '.join(area_keys)} with values:)")
        area = None

    events = sorted(t.events, key=lambda e: (e["at"], e["id"]))
    newest = max(e["at"] for e in events)
    priority = mapped.get("priority", t.priority)
    if priority not in (None, "low", "normal", "high", "urgent"):
        warnings.append(f"priority: {priority!r} is not low/normal/high/urgent; left unset")
        priority = None
    ticket: dict[str, Any] = {
        "id": t.ticket_id,
        "subject": t.subject or "(no subject)",
        "created_at": t.created_at,
        "status": t.status,
        "priority": priority,
        "severity": mapped.get("severity"),
        "product_area": area,
        "engineering_owner": mapped.get("engineering_owner"),
        "assignee": t.assignee,
        "requester": {"name": t.requester_name or "unknown", "email": t.requester_email},
        "tags": t.tags,
        "events": events,
    }
    data = {
        "schema": "escalation-case/1",
        "id": f"{t.source}-{t.ticket_id}",
        "as_of": as_of or newest,
        "ticket": ticket,
        "account": account,
        "attachments": t.attachments,
    }
    return parse_case(data, where=f"{t.source} ticket {t.ticket_id}"), warnings
