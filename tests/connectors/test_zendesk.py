"""The Zendesk importer on hand-built API v2 payloads: visibility, roles, text, mapping and errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import ImportedTicket, to_case
from escalation.connectors.zendesk import parse
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack

FIXTURES = Path(__file__).parent / "fixtures"
ROOT = Path(__file__).resolve().parents[2]
INTERNAL_SENTENCES = [
    "OOM-killed since the 03:10 UTC deploy",
    "exp-worker-7.int.lumen.example",
    "Export now jobs run in the interactive pool",
    "exp-batch-2",
    "ENG-9120",
]

MAPPING = VendorMapping.model_validate({"fields": {
    "product_area": [{"path": "ticket.custom_fields[id=360011110001].value",
                      "values": {"reporting__exports": "exports", "platform__sync": "sync"}}],
    "severity": [{"path": "ticket.custom_fields[id=360011110002].value",
                  "values": {"sev_1": "Sev1", "sev_2": "Sev2", "sev_3": "Sev3", "sev_4": "Sev4"}}],
    "tier": [{"path": "organization.organization_fields.support_plan",
              "values": {"enterprise_plus": "enterprise", "strategic_partner": "strategic"}},
             {"tags": {"plan_strategic": "strategic", "plan_standard": "standard"}}],
}})


def load(name: str, vendor: str = "zendesk") -> Any:
    """A fresh copy of a fixture, so a test may change it."""
    return json.loads((FIXTURES / vendor / name).read_text())


def full() -> ImportedTicket:
    return parse(load("ticket_48213.json"), comments=load("comments_48213.json"), users=load("users_48213.json"),
                 organization=load("organization_6001.json"))


def event(t: ImportedTicket, comment_id: int) -> dict[str, Any]:
    return next(e for e in t.events if e["id"] == f"zd-comment-{comment_id}")


# ---------------------------------------------------------------- events


def test_every_comment_becomes_an_event_with_its_author_and_time() -> None:
    t = full()
    assert [e["id"] for e in t.events] == [f"zd-comment-{i}" for i in range(30001, 30007)]
    assert [e["author"]["name"] for e in t.events] == ["Nora Quillfeather", "Tobias Marchetti", "Tobias Marchetti",
                                                       "Halvard Brisk", "Oren Valdez", "Tobias Marchetti"]
    assert event(t, 30001)["at"] == datetime(2026, 10, 13, 13, 5, tzinfo=UTC)
    assert t.warnings == []


def test_private_comments_become_internal_and_public_ones_public() -> None:
    t = full()
    vis = {e["id"]: e["visibility"] for e in t.events}
    assert vis == {"zd-comment-30001": "public", "zd-comment-30002": "public", "zd-comment-30003": "internal",
                   "zd-comment-30004": "internal", "zd-comment-30005": "public", "zd-comment-30006": "public"}


def test_a_comment_without_public_flag_is_kept_internal_with_a_warning() -> None:
    comments = load("comments_48213.json")
    del comments["comments"][1]["public"]
    t = parse(load("ticket_48213.json"), comments=comments, users=load("users_48213.json"))
    assert event(t, 30002)["visibility"] == "internal"
    assert any("30002" in w and "internal" in w for w in t.warnings)


def test_end_users_are_customers_and_agents_and_admins_are_agents() -> None:
    t = full()
    roles = {e["author"]["name"]: e["author"]["role"] for e in t.events}
    assert roles == {"Nora Quillfeather": "customer", "Oren Valdez": "customer",
                     "Tobias Marchetti": "agent", "Halvard Brisk": "agent"}


def test_unknown_authors_are_named_by_id_and_warned_about() -> None:
    # only the sideloaded users (Nora, Tobias): Halvard (8002) and Oren (9002) are unknown
    t = parse(load("ticket_48213.json"), comments=load("comments_48213.json"))
    assert event(t, 30004)["author"] == {"name": "user 8002", "role": "agent"}
    assert event(t, 30005)["author"] == {"name": "user 9002", "role": "agent"}
    assert event(t, 30001)["author"] == {"name": "Nora Quillfeather", "role": "customer"}
    assert sum("user 8002" in w for w in t.warnings) == 1 and sum("user 9002" in w for w in t.warnings) == 1


def test_an_unknown_requester_is_still_the_customer() -> None:
    ticket = load("ticket_48213.json")
    del ticket["users"]
    t = parse(ticket, comments=load("comments_48213.json"))
    assert event(t, 30001)["author"] == {"name": "user 9001", "role": "customer"}
    assert t.requester_name == "user 9001" and t.requester_email is None
    assert any(w.startswith("requester:") for w in t.warnings)


def test_plain_body_is_preferred_over_body_and_html_body() -> None:
    comments = load("comments_48213.json")
    comments["comments"][1]["plain_body"] = "Plain text wins."
    t = parse(load("ticket_48213.json"), comments=comments, users=load("users_48213.json"))
    assert event(t, 30002)["body"] == "Plain text wins."


def test_html_bodies_are_read_as_text() -> None:
    t = full()
    body = event(t, 30004)["body"]  # this comment has HTML in body and no plain_body
    assert "<" not in body and "exp-batch-2 pool time out with E-EXP-2041" in body
    assert "\n- Rolling back the pool memory limit now\n" in body and "\n- Tracked in ENG-9120\n" in body
    comments = load("comments_48213.json")
    for c in comments["comments"]:
        c.pop("plain_body", None)
        c.pop("body", None)
    t = parse(load("ticket_48213.json"), comments=comments, users=load("users_48213.json"))
    assert event(t, 30001)["body"].startswith("Hello,\n\nSince this morning")
    assert "Admin > Exports" in event(t, 30001)["body"]  # entities decoded


def test_text_with_angle_brackets_that_is_not_html_is_kept_verbatim() -> None:
    comments = load("comments_48213.json")
    comments["comments"][1]["plain_body"] = "The API returns List<Record> and <none> for empty pages."
    t = parse(load("ticket_48213.json"), comments=comments, users=load("users_48213.json"))
    assert event(t, 30002)["body"] == "The API returns List<Record> and <none> for empty pages."


def test_attachments_are_listed_as_metadata_lines_not_downloaded() -> None:
    t = full()
    assert event(t, 30001)["body"].endswith("\n\n[attachment: export-history.png (image/png, 48213 bytes)]")
    assert event(t, 30004)["body"].endswith("[attachment: exp-batch-2-oom.log (text/plain, 18234 bytes)]")
    assert "[attachment:" not in event(t, 30002)["body"]
    assert t.attachments == []


# ---------------------------------------------------------------- ticket, users, organization


def test_ticket_fields_requester_assignee_and_organization() -> None:
    t = full()
    assert (t.source, t.ticket_id, t.subject, t.status, t.priority) == (
        "zendesk", "48213", "Scheduled XLSX exports stuck in Queued since this morning", "open", "high")
    assert t.created_at == datetime(2026, 10, 13, 13, 5, tzinfo=UTC)
    assert (t.requester_name, t.requester_email) == ("Nora Quillfeather", "nora.quillfeather@oscorp-labs.example")
    assert t.assignee == {"name": "Tobias Marchetti", "group": "Tier 2 Support"}
    assert (t.org_id, t.org_name) == ("acc-1013", "Oscorp Labs")  # the organization's external_id when set


def test_sideloads_are_used_when_no_separate_files_are_given() -> None:
    t = parse(load("ticket_48213.json"), comments=load("comments_48213.json"))
    assert (t.org_id, t.org_name) == ("6001", "Oscorp Labs")
    assert t.requester_name == "Nora Quillfeather"
    assert t.docs["organization"]["organization_fields"]["support_plan"] == "enterprise_plus"


def test_bare_ticket_with_separate_files() -> None:
    t = parse(load("ticket_48213.json")["ticket"], comments=load("comments_48213.json")["comments"],
              users=load("users_48213.json")["users"], organization=load("organization_6001.json")["organization"])
    assert t.assignee == {"name": "Tobias Marchetti", "group": None}  # group names come only from the sideload
    assert t.org_name == "Oscorp Labs" and t.requester_name == "Nora Quillfeather"
    assert [e["author"]["name"] for e in t.events][3:5] == ["Halvard Brisk", "Oren Valdez"]


def test_an_organizations_list_picks_the_tickets_organization() -> None:
    other = {"id": 6999, "name": "Someone Else", "tags": ["plan_strategic"]}
    org = load("organization_6001.json")["organization"]
    t = parse(load("ticket_48213.json"), comments=load("comments_48213.json"),
              organization={"organizations": [other, org]})
    assert t.org_name == "Oscorp Labs" and "plan_strategic" not in t.tags


def test_docs_and_tags_for_the_mapping() -> None:
    t = full()
    assert set(t.docs) == {"ticket", "organization", "requester"}
    assert t.docs["ticket"]["id"] == 48213
    assert t.docs["requester"]["email"] == "nora.quillfeather@oscorp-labs.example"
    assert t.tags == ["exports", "scheduled_exports", "xlsx", "plan_enterprise", "region_us"]


def test_unknown_priority_is_dropped_with_a_warning_and_null_priority_is_fine() -> None:
    ticket = load("ticket_48213.json")
    ticket["ticket"]["priority"] = "critical"
    t = parse(ticket, comments=load("comments_48213.json"))
    assert t.priority is None and any("critical" in w for w in t.warnings)
    ticket["ticket"]["priority"] = None
    t = parse(ticket, comments=load("comments_48213.json"))
    assert t.priority is None and not any(w.startswith("priority") for w in t.warnings)


# ---------------------------------------------------------------- comments: missing, paged, ordered


def test_without_comments_the_description_is_the_first_customer_message() -> None:
    t = parse(load("ticket_48213.json"))
    assert len(t.events) == 1
    ev = t.events[0]
    assert ev["id"] == "zd-description-48213" and ev["visibility"] == "public"
    assert ev["author"] == {"name": "Nora Quillfeather", "role": "customer"}
    assert ev["at"] == t.created_at and ev["body"].startswith("Hello,")
    assert any("comments: not given" in w and "--comments" in w for w in t.warnings)


def test_an_empty_comments_file_falls_back_to_the_description() -> None:
    t = parse(load("ticket_48213.json"), comments={"comments": [], "next_page": None})
    assert [e["id"] for e in t.events] == ["zd-description-48213"]
    assert any("no comments" in w for w in t.warnings)


def test_no_comments_and_no_description_asks_for_comments() -> None:
    ticket = load("ticket_48213.json")
    ticket["ticket"]["description"] = ""
    with pytest.raises(InputError, match="--comments"):
        parse(ticket)


def test_one_page_of_several_is_warned_about_and_pages_can_be_merged() -> None:
    comments = load("comments_48213.json")["comments"]
    page1 = {"comments": comments[:3], "next_page": "https://lumen-example.zendesk.com/api/v2/tickets/48213/"
             "comments.json?page=2", "previous_page": None, "count": 6}
    page2 = {"comments": comments[3:], "next_page": None, "previous_page": "...page=1", "count": 6}
    t = parse(load("ticket_48213.json"), comments=page1, users=load("users_48213.json"))
    assert len(t.events) == 3 and any("next_page" in w for w in t.warnings)
    t = parse(load("ticket_48213.json"), comments=[page1, page2], users=load("users_48213.json"))
    assert len(t.events) == 6 and not any("next_page" in w for w in t.warnings)
    cursor = {"comments": comments[:3], "meta": {"has_more": True, "after_cursor": "xyz"}, "links": {"next": "..."}}
    assert any("next_page" in w for w in parse(load("ticket_48213.json"), comments=cursor).warnings)


def test_case_events_are_in_time_order_whatever_the_file_order(lumen: Pack) -> None:
    comments = load("comments_48213.json")
    comments["comments"].reverse()
    case, _ = to_case(parse(load("ticket_48213.json"), comments=comments, users=load("users_48213.json")),
                      MAPPING, lumen)
    times = [e.at for e in case.ticket.events]
    assert times == sorted(times) and case.ticket.events[0].id == "zd-comment-30001"


# ---------------------------------------------------------------- mapping and to_case


def test_mapping_fills_tier_area_and_severity_and_the_case_validates(lumen: Pack) -> None:
    case, warnings = to_case(full(), MAPPING, lumen)
    assert warnings == []
    assert case.id == "zendesk-48213" and case.ticket.id == "48213"
    assert case.ticket.product_area == "exports" and case.ticket.severity == "Sev3"
    assert case.account.tier == "enterprise" and case.account.name == "Oscorp Labs"
    assert case.account.id == "acc-1013" and case.account.timezone == "America/New_York"
    assert case.account.owner is not None and case.account.owner.name == "Priya Raman"
    assert case.as_of == datetime(2026, 10, 13, 16, 30, tzinfo=UTC)  # the newest comment
    assert case.ticket.requester.email == "nora.quillfeather@oscorp-labs.example"
    assert [e.visibility for e in case.ticket.events].count("internal") == 2


def test_as_of_is_passed_through(lumen: Pack) -> None:
    as_of = datetime(2026, 10, 14, 9, 0, tzinfo=UTC)
    case, _ = to_case(full(), MAPPING, lumen, as_of=as_of)
    assert case.as_of == as_of


def test_tier_falls_back_to_tags_when_the_organization_field_does_not_map(lumen: Pack) -> None:
    ticket = load("ticket_48213.json")
    org = ticket["organizations"][0]
    org["name"] = "Not A Pack Account"
    org["organization_fields"]["support_plan"] = "legacy_gold"  # not in values: does not match
    org["tags"] = ["plan_strategic"]
    t = parse(ticket, comments=load("comments_48213.json"), users=load("users_48213.json"))
    case, warnings = to_case(t, MAPPING, lumen)
    assert case.account.tier == "strategic"
    assert warnings == []


def test_unmapped_values_leave_fields_unset_and_the_pack_account_gives_the_tier(lumen: Pack) -> None:
    ticket = load("ticket_48213.json")
    ticket["ticket"]["custom_fields"][0]["value"] = "something_new"
    ticket["organizations"][0]["organization_fields"] = {}
    t = parse(ticket, comments=load("comments_48213.json"), users=load("users_48213.json"))
    case, warnings = to_case(t, MAPPING, lumen)
    assert case.ticket.product_area is None
    assert case.account.tier == "enterprise"  # Oscorp Labs in context/accounts.csv
    assert warnings == []


def test_without_a_mapping_or_known_account_the_tier_is_unknown_with_a_warning(lumen: Pack) -> None:
    ticket = load("ticket_48213.json")
    ticket["organizations"][0]["name"] = "Nowhere Ltd"
    case, warnings = to_case(parse(ticket, comments=load("comments_48213.json")), VendorMapping(), lumen)
    assert case.account.tier == "unknown" and any(w.startswith("tier:") for w in warnings)


def test_the_engine_runs_end_to_end_and_keeps_internal_notes_out_of_the_update(lumen: Pack) -> None:
    case, warnings = to_case(full(), MAPPING, lumen)
    assert warnings == []
    packet = run(case, lumen)
    assert [c.key for c in packet.checks if not c.passed] == []
    assert not packet.needs_review
    assert packet.product_area == "exports" and packet.ticket_id == "48213"
    assert packet.severity.level == "Sev3" and packet.severity.recorded == "Sev3"
    assert packet.customer_update.startswith("Hi Nora,")
    for sentence in INTERNAL_SENTENCES:
        assert sentence not in packet.customer_update
    internal = {e.id for e in case.ticket.events if e.visibility == "internal"}
    for claim in packet.claims:
        if claim.visibility == "public":
            assert not {s.ref for s in claim.sources} & internal


def test_the_packs_own_zendesk_mapping_works_too(lumen: Pack) -> None:
    case, _ = to_case(full(), lumen.connectors.zendesk, lumen)
    packet = run(case, lumen)
    assert all(c.passed for c in packet.checks)
    assert "OOM-killed" not in packet.customer_update


# ---------------------------------------------------------------- wrong input


JIRA_ISSUE = {"id": "10042", "key": "SUP-42", "self": "https://example.atlassian.net/rest/api/3/issue/10042",
              "fields": {"summary": "Exports stuck", "created": "2026-10-13T13:05:00.000+0000"}}


@pytest.mark.parametrize(("payload", "message"), [
    (JIRA_ISSUE, "Jira issue"),
    ({"ticket": JIRA_ISSUE}, "Jira issue"),
    ([{"ticket": {"id": 1}}], "got a list"),
    ("48213", "expected a JSON object"),
    ({"tickets": [{"id": 1}], "next_page": None}, "list of tickets"),
    ({"comments": [], "next_page": None}, "comments file, not a ticket"),
    ({"audits": []}, "audits"),
    ({"ticket": [1, 2]}, r"\$\.ticket is a list"),
    ({"ticket": {"subject": "x", "created_at": "2026-10-13T13:05:00Z"}}, "missing 'id'"),
    ({"ticket": {"id": 1, "subject": "x"}}, "missing 'created_at'"),
    ({"ticket": {"id": 1, "created_at": "2026-10-13T13:05:00Z"}}, "missing 'subject'"),
])
def test_wrong_ticket_files_get_a_clear_error(payload: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(payload, comments=load("comments_48213.json"))


def test_a_freshdesk_ticket_is_refused() -> None:
    with pytest.raises(InputError, match="Freshdesk ticket"):
        parse(load("ticket_7315.json", "freshdesk"))


@pytest.mark.parametrize(("comments", "message"), [
    (load("ticket_48213.json"), "ticket file, not comments"),
    (load("conversations_7315.json", "freshdesk"), "Freshdesk conversations"),
    ({"conversations": []}, "Freshdesk conversations"),
    ({"audits": [], "next_page": None}, "audits"),
    ({"users": []}, "expected {'comments'"),
    ("comments.json", "expected {'comments'"),
    ({"comments": [{"id": 1, "body": "hi"}]}, r"comments\[0\]: not a ticket comment"),
    ({"comments": ["hi"]}, r"comments\[0\]"),
])
def test_wrong_comments_files_get_a_clear_error(comments: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(load("ticket_48213.json"), comments=comments)


def test_an_organization_that_is_not_the_tickets_is_refused() -> None:
    with pytest.raises(InputError, match="organization 6999 but the ticket belongs to organization 6001"):
        parse(load("ticket_48213.json"), organization={"organization": {"id": 6999, "name": "Someone Else"}})


def test_bad_timestamps_name_the_comment() -> None:
    comments = load("comments_48213.json")
    comments["comments"][2]["created_at"] = "2026-10-13T13:52:00"
    with pytest.raises(InputError, match=r"comments\[2\] \(id 30003\).*no time zone"):
        parse(load("ticket_48213.json"), comments=comments)
    ticket = load("ticket_48213.json")
    ticket["ticket"]["created_at"] = "yesterday"
    with pytest.raises(InputError, match="created_at: 'yesterday' is not an ISO 8601 timestamp"):
        parse(ticket)


def test_a_users_file_that_is_not_users_is_refused() -> None:
    with pytest.raises(InputError, match="Zendesk users"):
        parse(load("ticket_48213.json"), comments=load("comments_48213.json"), users=load("comments_48213.json"))
