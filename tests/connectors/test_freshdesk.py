"""The Freshdesk importer on hand-built API v2 payloads: visibility, roles, text, mapping and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from escalation.connectors.freshdesk import parse
from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import ImportedTicket, to_case
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
INTERNAL_SENTENCES = [
    "the ingest gateway swallows 401s as retries",
    "OAuth refresh token was revoked",
    "sync-worker-eu-2",
    "ENG-9311",
    "connector-stark-eu-ops.log",
]

MAPPING = VendorMapping.model_validate({"fields": {
    "product_area": [{"path": "ticket.custom_fields.cf_product_area",
                      "values": {"Data sync": "sync", "Exports": "exports", "Sign-in": "auth"}}],
    "severity": [{"path": "ticket.custom_fields.cf_severity",
                  "values": {"S1 - Critical": "Sev1", "S2 - Major": "Sev2", "S3 - Minor": "Sev3"}}],
    "tier": [{"path": "company.custom_fields.support_tier",
              "values": {"Strategic": "strategic", "Enterprise": "enterprise", "Standard": "standard"}},
             {"tags": {"vip": "strategic"}}],
    "account_id": [{"path": "company.custom_fields.account_id"}],
}})


def load(name: str, vendor: str = "freshdesk") -> Any:
    """A fresh copy of a fixture, so a test may change it."""
    return json.loads((FIXTURES / vendor / name).read_text())


def full() -> ImportedTicket:
    return parse(load("ticket_7315.json"), conversations=load("conversations_7315.json"),
                 requester=load("contact_77000101001.json"), company=load("company_77000300001.json"),
                 agents=load("agents.json"))


def event(t: ImportedTicket, suffix: str) -> dict[str, Any]:
    return next(e for e in t.events if e["id"].endswith(suffix))


# ---------------------------------------------------------------- events


def test_the_description_is_the_first_customer_message_then_every_conversation() -> None:
    t = full()
    assert [e["id"] for e in t.events] == ["fd-description-7315"] + [
        f"fd-conversation-7700070000{i}" for i in range(1, 6)]
    first = t.events[0]
    assert first["author"] == {"name": "Greta Lindqvist", "role": "customer"}
    assert first["visibility"] == "public" and first["at"] == datetime(2026, 10, 20, 7, 45, tzinfo=UTC)
    assert first["body"].startswith("Hello Lumen support,\n\nSince about 23:00 CET last night")
    assert t.warnings == []


def test_private_notes_are_internal_and_replies_public() -> None:
    vis = {e["id"]: e["visibility"] for e in full().events}
    assert vis == {"fd-description-7315": "public", "fd-conversation-77000700001": "public",
                   "fd-conversation-77000700002": "internal", "fd-conversation-77000700003": "public",
                   "fd-conversation-77000700004": "internal", "fd-conversation-77000700005": "public"}


def test_a_public_note_is_public_and_a_conversation_without_private_flag_is_internal() -> None:
    convs = load("conversations_7315.json")
    convs[3]["private"] = False  # a public note (source 2): visible to the requester in Freshdesk
    del convs[0]["private"]
    t = parse(load("ticket_7315.json"), conversations=convs)
    assert event(t, "77000700004")["visibility"] == "public"
    assert event(t, "77000700001")["visibility"] == "internal"
    assert any("77000700001" in w and "internal" in w for w in t.warnings)


def test_incoming_or_requester_messages_are_customer_and_the_rest_agent() -> None:
    t = full()
    roles = {e["id"][-2:]: (e["author"]["name"], e["author"]["role"]) for e in t.events}
    assert roles == {"15": ("Greta Lindqvist", "customer"), "01": ("Henrik Olsen", "agent"),
                     "02": ("Henrik Olsen", "agent"), "03": ("Greta Lindqvist", "customer"),
                     "04": ("Ilse Varga", "agent"), "05": ("Henrik Olsen", "agent")}


def test_someone_else_at_the_customer_is_named_by_from_email() -> None:
    convs = load("conversations_7315.json")
    convs[2]["user_id"] = 77000101002
    convs[2]["from_email"] = "Mats Ekberg <mats.ekberg@stark-logistics.example>"
    t = parse(load("ticket_7315.json"), conversations=convs)
    assert event(t, "77000700003")["author"] == {"name": "Mats Ekberg <mats.ekberg@stark-logistics.example>",
                                                "role": "customer"}


def test_the_requester_is_a_customer_even_when_not_marked_incoming() -> None:
    convs = load("conversations_7315.json")
    convs[2]["incoming"] = False  # e.g. a reply through the portal recorded by an integration
    t = parse(load("ticket_7315.json"), conversations=convs)
    assert event(t, "77000700003")["author"] == {"name": "Greta Lindqvist", "role": "customer"}


def test_agents_without_an_agents_file_are_named_by_id() -> None:
    t = parse(load("ticket_7315.json"), conversations=load("conversations_7315.json"))
    assert event(t, "77000700004")["author"] == {"name": "agent 77000200002", "role": "agent"}
    assert t.assignee == {"name": "agent 77000200001", "group": None}


def test_an_outbound_email_ticket_starts_with_the_agent() -> None:
    ticket = load("ticket_7315.json")
    ticket["source"] = 10
    t = parse(ticket, conversations=load("conversations_7315.json"), agents=load("agents.json"))
    assert t.events[0]["author"] == {"name": "Henrik Olsen", "role": "agent"}


def test_html_is_read_when_there_is_no_plain_text() -> None:
    ticket = load("ticket_7315.json")
    del ticket["description_text"]
    convs = load("conversations_7315.json")
    for c in convs:
        c["body_text"] = ""
    t = parse(ticket, conversations=convs)
    desc = t.events[0]["body"]
    assert "<" not in desc and "The sync history shows SYNC-E214: upstream rejected credentials" in desc
    assert "Best regards,\nGreta Lindqvist\nHead of Planning Systems" in desc
    body = event(t, "77000700002")["body"]
    assert body.startswith("Connector log for stark-eu-ops") and "<b>" not in body


def test_attachments_are_listed_as_metadata_lines() -> None:
    t = full()
    assert t.events[0]["body"].endswith("\n\n[attachment: sync-history-stark-eu-ops.csv (text/csv, 5120 bytes)]")
    note = event(t, "77000700002")["body"]
    assert note.endswith("\n\n[attachment: connector-stark-eu-ops.log (text/plain, 20480 bytes)]")
    assert t.attachments == []


# ---------------------------------------------------------------- ticket fields


def test_ticket_fields_requester_company_and_docs() -> None:
    t = full()
    assert (t.source, t.ticket_id, t.status, t.priority) == ("freshdesk", "7315", "open", "high")
    assert t.subject == "Salesforce sync stuck since last night - no new records in Lumen"
    assert (t.requester_name, t.requester_email) == ("Greta Lindqvist", "greta.lindqvist@stark-logistics.example")
    assert (t.org_id, t.org_name) == ("77000300001", "Stark Logistics")
    assert t.assignee == {"name": "Henrik Olsen", "group": None}
    assert t.tags == ["sync", "salesforce", "connector"]
    assert set(t.docs) == {"ticket", "company", "requester"}
    assert t.docs["company"]["custom_fields"]["support_tier"] == "Strategic"
    assert t.docs["requester"]["job_title"] == "Head of Planning Systems"


def test_embedded_requester_and_company_are_used_when_not_given() -> None:
    t = parse(load("ticket_7315.json"), conversations=load("conversations_7315.json"))
    assert t.requester_name == "Greta Lindqvist" and t.org_name == "Stark Logistics"
    assert t.docs["company"] == {"id": 77000300001, "name": "Stark Logistics"}


@pytest.mark.parametrize(("status", "text"), [(2, "open"), (3, "pending"), (4, "resolved"), (5, "closed")])
def test_statuses_map_to_text(status: int, text: str) -> None:
    ticket = load("ticket_7315.json")
    ticket["status"] = status
    assert parse(ticket, conversations=[]).status == text


def test_a_custom_status_is_kept_with_a_warning() -> None:
    ticket = load("ticket_7315.json")
    ticket["status"] = 7
    t = parse(ticket, conversations=[])
    assert t.status == "status 7" and any("custom Freshdesk status" in w for w in t.warnings)


@pytest.mark.parametrize(("priority", "text"), [(1, "low"), (2, "normal"), (3, "high"), (4, "urgent"), (None, None)])
def test_priorities_map_to_case_priorities(priority: int | None, text: str | None) -> None:
    ticket = load("ticket_7315.json")
    ticket["priority"] = priority
    t = parse(ticket, conversations=[])
    assert t.priority == text and not any(w.startswith("priority") for w in t.warnings)


def test_an_unknown_priority_is_dropped_with_a_warning() -> None:
    ticket = load("ticket_7315.json")
    ticket["priority"] = 9
    t = parse(ticket, conversations=[])
    assert t.priority is None and any(w.startswith("priority: 9") for w in t.warnings)


# ---------------------------------------------------------------- conversations: missing, embedded


def test_without_conversations_only_the_description_is_read_with_a_warning() -> None:
    t = parse(load("ticket_7315.json"))
    assert [e["id"] for e in t.events] == ["fd-description-7315"]
    assert any("--conversations" in w for w in t.warnings)


def test_embedded_conversations_are_read_and_a_full_embed_is_warned_about() -> None:
    ticket = load("ticket_7315.json")
    ticket["conversations"] = load("conversations_7315.json")
    t = parse(ticket)
    assert len(t.events) == 6 and t.warnings == []
    many = load("conversations_7315.json") * 2
    for i, c in enumerate(many):
        c["id"] = 77000800000 + i
    ticket["conversations"] = many
    t = parse(ticket)
    assert len(t.events) == 11 and any("first 10" in w for w in t.warnings)


def test_pages_of_conversations_are_merged() -> None:
    convs = load("conversations_7315.json")
    t = parse(load("ticket_7315.json"), conversations=[convs[:3], convs[3:]])
    assert len(t.events) == 6


def test_no_description_and_no_conversations_asks_for_conversations() -> None:
    ticket = load("ticket_7315.json")
    ticket["description"] = ticket["description_text"] = ""
    ticket["attachments"] = []
    with pytest.raises(InputError, match="--conversations"):
        parse(ticket)


def test_no_description_but_conversations_is_fine() -> None:
    ticket = load("ticket_7315.json")
    ticket["description"] = ticket["description_text"] = ""
    ticket["attachments"] = []
    t = parse(ticket, conversations=load("conversations_7315.json"))
    assert t.events[0]["id"] == "fd-conversation-77000700001"


# ---------------------------------------------------------------- mapping and to_case


def test_mapping_fills_tier_area_severity_and_account(lumen: Pack) -> None:
    case, warnings = to_case(full(), MAPPING, lumen)
    assert warnings == []
    assert case.id == "freshdesk-7315"
    assert (case.ticket.product_area, case.ticket.severity, case.ticket.priority) == ("sync", "Sev2", "high")
    assert (case.account.id, case.account.name, case.account.tier) == ("acc-1006", "Stark Logistics", "strategic")
    assert case.account.timezone == "Europe/Berlin"
    assert case.as_of == datetime(2026, 10, 20, 10, 15, tzinfo=UTC)
    assert [e.id for e in case.ticket.events][0] == "fd-description-7315"
    assert [e.visibility for e in case.ticket.events].count("internal") == 2


def test_as_of_and_time_order(lumen: Pack) -> None:
    convs = load("conversations_7315.json")
    convs.reverse()
    t = parse(load("ticket_7315.json"), conversations=convs, company=load("company_77000300001.json"))
    as_of = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)
    case, _ = to_case(t, MAPPING, lumen, as_of=as_of)
    assert case.as_of == as_of
    times = [e.at for e in case.ticket.events]
    assert times == sorted(times)


def test_tier_from_tags_and_unlisted_values(lumen: Pack) -> None:
    ticket = load("ticket_7315.json")
    ticket["tags"].append("vip")
    ticket["custom_fields"]["cf_product_area"] = "Something new"
    company = load("company_77000300001.json")
    company["name"] = "Unlisted Freight"
    company["custom_fields"] = {"support_tier": "Gold"}  # not in values: does not match
    ticket["company"] = company
    case, warnings = to_case(parse(ticket, conversations=load("conversations_7315.json")), MAPPING, lumen)
    assert case.account.tier == "strategic" and case.ticket.product_area is None
    assert warnings == []


def test_the_engine_runs_end_to_end_and_keeps_private_notes_out_of_the_update(lumen: Pack) -> None:
    case, warnings = to_case(full(), MAPPING, lumen)
    assert warnings == []
    packet = run(case, lumen)
    assert [c.key for c in packet.checks if not c.passed] == []
    assert not packet.needs_review
    assert packet.product_area == "sync" and packet.ticket_id == "7315"
    assert packet.severity.recorded == "Sev2"
    assert packet.customer_update.startswith("Hi Greta,")
    for sentence in INTERNAL_SENTENCES:
        assert sentence not in packet.customer_update
    internal = {e.id for e in case.ticket.events if e.visibility == "internal"}
    for claim in packet.claims:
        if claim.visibility == "public":
            assert not {s.ref for s in claim.sources} & internal


def test_the_packs_own_freshdesk_mapping_works_too(lumen: Pack) -> None:
    case, _ = to_case(full(), lumen.connectors.freshdesk, lumen)
    assert case.account.tier == "strategic"
    packet = run(case, lumen)
    assert all(c.passed for c in packet.checks)
    assert "swallows 401s" not in packet.customer_update


# ---------------------------------------------------------------- wrong input


JIRA_ISSUE = {"id": "10042", "key": "SUP-42", "fields": {"summary": "Sync stuck", "created": "2026-10-20T07:45:00Z"}}


@pytest.mark.parametrize(("payload", "message"), [
    (JIRA_ISSUE, "Jira issue"),
    (load("ticket_48213.json", "zendesk"), "Zendesk ticket"),
    (load("ticket_48213.json", "zendesk")["ticket"], "Zendesk ticket"),
    (load("comments_48213.json", "zendesk"), "Zendesk comments"),
    (load("conversations_7315.json"), "conversations list, not a ticket"),
    ([load("ticket_7315.json")], "got a list"),
    (7315, "expected a JSON object"),
    ({"results": [], "total": 0}, "list or search of tickets"),
    ({"id": 1, "created_at": "2026-10-20T07:45:00Z", "status": 2}, "missing 'subject'"),
    ({"subject": "x", "status": 2}, "missing 'id', 'created_at'"),
])
def test_wrong_ticket_files_get_a_clear_error(payload: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(payload)


@pytest.mark.parametrize(("conversations", "message"), [
    (load("comments_48213.json", "zendesk"), "Zendesk comments"),
    (load("comments_48213.json", "zendesk")["comments"], "Zendesk comments"),
    (load("ticket_7315.json"), "got a ticket"),
    ("conversations.json", "expected a list of conversations"),
    ([{"id": 1, "body": "hi"}], r"conversations\[0\]: not a conversation"),
    ([42], r"conversations\[0\]: expected a conversation object"),
])
def test_wrong_conversations_files_get_a_clear_error(conversations: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(load("ticket_7315.json"), conversations=conversations)


def test_a_company_or_requester_that_is_not_the_tickets_is_refused() -> None:
    company = load("company_77000300001.json")
    company["id"] = 123
    with pytest.raises(InputError, match="company 123 but the ticket's is 77000300001"):
        parse(load("ticket_7315.json"), company=company)
    with pytest.raises(InputError, match="requester: expected a requester object"):
        parse(load("ticket_7315.json"), requester=[load("contact_77000101001.json")])
    contact = load("contact_77000101001.json")
    contact["id"] = 5
    with pytest.raises(InputError, match="requester 5 but the ticket's is 77000101001"):
        parse(load("ticket_7315.json"), requester=contact)


def test_bad_timestamps_name_the_conversation() -> None:
    convs = load("conversations_7315.json")
    convs[1]["created_at"] = "2026-10-20 08:30"
    with pytest.raises(InputError, match=r"conversations\[1\] \(id 77000700002\).*no time zone"):
        parse(load("ticket_7315.json"), conversations=convs)


def test_a_bad_agents_file_is_refused() -> None:
    with pytest.raises(InputError, match="GET /api/v2/agents"):
        parse(load("ticket_7315.json"), agents=["Henrik"])
