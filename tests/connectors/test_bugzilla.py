"""Bugzilla importer: REST responses and bare bugs, private comments stay internal, history becomes changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from escalation.connectors import bugzilla
from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import ImportedTicket, to_case
from escalation.connectors.vendors import case_from_payloads
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack

FIXTURES = Path(__file__).parent / "fixtures" / "bugzilla"

MAPPING = VendorMapping.model_validate({"fields": {
    "account_name": [{"tags": {"customer:initech": "Initech"}}],
    "product_area": [{"path": "bug.component", "values": {"Exports": "exports"}}],
}})
"""What a Lumen connectors.yaml would say for this fixture: the customer in a whiteboard tag."""

INTERNAL_MARKERS = ("exp-db-02", "xlsx-compat", "0xFFFF", "EXPORT_COMPAT_ROWS", "4.13 train", "Cause found")


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def full() -> ImportedTicket:
    return bugzilla.parse(load("bug.json"), comments=load("comments.json"), history=load("history.json"))


def bare_bug() -> dict[str, Any]:
    """The same bug as one object with comments and history embedded (as bugbug's export keeps them)."""
    bug = dict(load("bug.json")["bugs"][0])
    bug["comments"] = load("comments.json")["bugs"]["4201"]["comments"]
    bug["history"] = load("history.json")["bugs"][0]["history"]
    return bug


def event(t: ImportedTicket, event_id: str) -> dict[str, Any]:
    return next(e for e in t.events if e["id"] == event_id)


def test_fields() -> None:
    t = full()
    assert (t.source, t.ticket_id) == ("bugzilla", "4201")
    assert t.subject == "Scheduled CSV export stops at 65,535 rows since 4.12"
    assert t.status == "ASSIGNED" and t.priority == "high"
    assert t.created_at == datetime(2026, 3, 2, 8, 12, 40, tzinfo=UTC)
    assert (t.requester_name, t.requester_email) == ("Dana Whitfield", "dana.whitfield@initech.example.com")
    assert t.assignee == {"name": "Erin Engineer"}
    assert t.tags == ["regression", "dataloss", "exports-triage", "customer:initech"]
    assert t.docs == {"bug": load("bug.json")["bugs"][0]}
    assert t.warnings == []


def test_first_comment_is_the_description_and_roles() -> None:
    t = full()
    assert [e["id"] for e in t.events][:4] == ["description", "c91002", "c91003", "c91004"]
    desc = event(t, "description")
    assert desc["author"] == {"name": "Dana Whitfield", "role": "customer"} and desc["visibility"] == "public"
    assert desc["body"].startswith("Since the upgrade to 4.12")
    assert event(t, "c91002")["author"] == {"name": "Alex Agent", "role": "engineer"}
    assert event(t, "c91004")["author"]["role"] == "customer"


def test_private_comment_is_internal() -> None:
    t = full()
    assert event(t, "c91003")["visibility"] == "internal"
    assert [e["visibility"] for e in t.events if e["id"] in ("description", "c91002", "c91004")] == ["public"] * 3


def test_history_becomes_internal_field_change_events() -> None:
    t = full()
    h0, h1, h2 = event(t, "h0"), event(t, "h1"), event(t, "h2")
    assert h0["changes"] == {"priority": ("--", "P2"), "severity": ("S3", "S2")}   # cc is not kept
    assert h0["body"] == "priority changed from -- to P2; severity changed from S3 to S2"
    assert h1["changes"] == {"status": ("NEW", "ASSIGNED"), "assignee": ("nobody@example.com",
                                                                         "erin.engineer@example.com")}
    assert h2["changes"] == {"component": ("General", "Exports")}   # keywords are not kept
    assert h2["author"]["role"] == "system"                          # triage-bot@
    assert all(h["visibility"] == "internal" for h in (h0, h1, h2))
    assert h1["at"] == datetime(2026, 3, 2, 15, 46, tzinfo=UTC)


def test_bare_bug_with_embedded_comments_and_history_reads_the_same(pack: Pack) -> None:
    assert bugzilla.parse(bare_bug()).events == full().events
    assert bugzilla.parse({"bugs": [bare_bug()]}).events == full().events
    via_table, _ = case_from_payloads("bugzilla", bare_bug(), {}, pack)
    assert sorted((e.id, e.body) for e in via_table.ticket.events) == sorted(
        (e["id"], e["body"]) for e in full().events)  # the case orders events by time


def test_comment_without_author_and_old_field_names() -> None:
    bug = bare_bug()
    bug["comments"] = [{"id": 1, "count": 0, "text": "It crashes.\r\nEvery time.", "time": "2026-03-02T08:12:40Z"},
                       {"id": 2, "count": 1, "text": "Confirmed.", "author": "alex.agent@example.com",
                        "time": "2026-03-02T09:00:00Z", "is_private": 1}]
    t = bugzilla.parse(bug)
    assert event(t, "description")["author"] == {"name": "Dana Whitfield", "role": "customer"}
    assert event(t, "description")["body"] == "It crashes.\nEvery time."
    assert event(t, "c2")["visibility"] == "internal"


@pytest.mark.parametrize(("raw", "expected"), [("P1", "urgent"), ("P2", "high"), ("P3", "normal"), ("P4", "low"),
                                                ("P5", "low"), ("--", None), ("", None)])
def test_priority_mapping(raw: str, expected: str | None) -> None:
    bug = bare_bug()
    bug["priority"] = raw
    t = bugzilla.parse(bug)
    assert t.priority == expected and t.warnings == []


def test_unknown_priority_warns() -> None:
    bug = bare_bug()
    bug["priority"] = "Highest"
    t = bugzilla.parse(bug)
    assert t.priority is None and "bugzilla.fields.priority" in t.warnings[0]


def test_missing_history_and_description_warn() -> None:
    bug = bare_bug()
    del bug["history"]
    bug["comments"] = bug["comments"][1:]
    t = bugzilla.parse(bug)
    assert any(w.startswith("history:") for w in t.warnings)
    assert any(w.startswith("description:") for w in t.warnings)


def test_resolution_is_part_of_the_status_and_nobody_is_no_assignee() -> None:
    bug = bare_bug()
    bug.update(status="RESOLVED", resolution="FIXED", assigned_to="nobody@mozilla.org", assigned_to_detail=None)
    t = bugzilla.parse(bug)
    assert t.status == "RESOLVED FIXED" and t.assignee is None


@pytest.mark.parametrize(("payload", "kwargs", "words"), [
    ({"key": "SUP-1", "fields": {"summary": "x"}}, {}, "Jira issue"),
    ({"ticket": {"id": 1, "subject": "x"}}, {}, "Zendesk"),
    ([1, 2], {}, "expected a bug object, got a list"),
    ({"bugs": []}, {}, "holds no bug"),
    ({"bugs": [{"id": 1, "summary": "a"}, {"id": 2, "summary": "b"}]}, {}, "holds 2 bugs"),
    ({"bugs": {"4201": {"comments": []}}, "comments": {}}, {}, "looks like a comment list"),
    ({"bugs": [{"id": 4201, "history": []}]}, {}, "looks like a bug history"),
    ({"error": True, "code": 101, "message": "Bug #4201 does not exist."}, {}, "API error"),
    ({"id": 4201}, {}, "no 'summary'"),
    ({"id": 4201, "summary": "x", "creation_time": "2026-03-02T08:12:40Z"}, {}, "carries no comments"),
    ({"id": 4201, "summary": "x", "creation_time": "2 March 2026"}, {}, "not an ISO 8601 timestamp"),
])
def test_wrong_files_give_a_clear_error(payload: Any, kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(InputError, match=words) as exc:
        bugzilla.parse(payload, **kwargs)
    assert "\n" not in str(exc.value)


def test_supplementary_files_of_another_bug_or_kind() -> None:
    other: dict[str, Any] = {"bugs": {"999": {"comments": []}}, "comments": {}}
    with pytest.raises(InputError, match="comments of bug 999, not of bug 4201"):
        bugzilla.parse(load("bug.json"), comments=other)
    with pytest.raises(InputError, match="history of bug 7, not of bug 4201"):
        bugzilla.parse(load("bug.json"), comments=load("comments.json"), history={"bugs": [{"id": 7, "history": []}]})
    with pytest.raises(InputError, match="/rest/bug/{id}/history"):
        bugzilla.parse(load("bug.json"), comments=load("comments.json"), history=load("comments.json"))


def test_end_to_end_with_the_lumen_pack(pack: Pack) -> None:
    case, warnings = to_case(full(), MAPPING, pack)
    assert warnings == []
    assert case.account.name == "Initech" and case.ticket.product_area == "exports"
    packet = run(case, pack)
    assert [(c.key, c.details) for c in packet.checks if not c.passed] == []
    assert packet.severity.recorded == "S2"           # from the history's severity change
    for marker in INTERNAL_MARKERS:
        assert marker not in packet.customer_update
    private = event(full(), "c91003")["body"]
    for sentence in private.split(". "):
        assert sentence[:40] not in packet.customer_update
