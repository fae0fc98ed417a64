"""Build small escalation-case/1 dicts for focused tests."""

from __future__ import annotations

from typing import Any


def make_case(events: list[tuple[str, str, str]], *, tier: str = "enterprise", product_area: str | None = None,
              severity: str | None = None, attachments: list[dict[str, Any]] | None = None,
              related: list[dict[str, Any]] | None = None, engineering_owner: str | None = None,
              as_of: str = "2026-05-06T15:00:00Z", subject: str = "Problem") -> dict[str, Any]:
    """events: (role, visibility, body); times are an hour apart from 09:00Z."""
    names = {"customer": "Casey Client", "agent": "Alex Agent", "engineer": "Erin Engineer", "csm": "Priya Raman",
             "system": "system"}
    evs = []
    for i, (role, vis, body) in enumerate(events, start=1):
        evs.append({"id": f"e{i}", "at": f"2026-05-06T{8 + i:02d}:00:00Z", "author": {"name": names[role],
                    "role": role}, "visibility": vis, "body": body})
    return {
        "schema": "escalation-case/1", "id": "t-1", "as_of": as_of,
        "ticket": {"id": "9001", "subject": subject, "created_at": "2026-05-06T09:00:00Z", "status": "open",
                   "priority": "normal", "severity": severity, "product_area": product_area,
                   "engineering_owner": engineering_owner, "assignee": {"name": "Alex Agent", "group": "Tier 2"},
                   "requester": {"name": "Casey Client", "email": "casey@example.com"}, "tags": [], "events": evs},
        "account": {"id": "acc-1002", "name": "Initech", "tier": tier,
                    "owner": {"name": "Priya Raman", "email": "priya@lumen.example", "role": "csm"},
                    "timezone": "America/New_York"},
        "attachments": attachments or [], "related_tickets": related or [], "incident": None,
    }
