"""Jira importer: API v2 wiki markup and v3 ADF read the same, restricted comments stay internal."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from escalation.connectors import jira
from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import ImportedTicket, to_case
from escalation.connectors.vendors import case_from_payloads
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack

FIXTURES = Path(__file__).parent / "fixtures" / "jira"

MAPPING = VendorMapping.model_validate({"fields": {
    "account_name": [{"path": "fields.customfield_10002[*].name"}],
    "tier": [{"path": "fields.customfield_10050.value", "values": {"Enterprise": "enterprise"}}],
    "product_area": [{"path": "fields.components[*].name", "values": {"Exports": "exports"}}],
    "severity": [{"path": "fields.customfield_10060.value", "values": {"Sev1": "Sev1", "Sev2": "Sev2"}}],
}})
"""A connectors.yaml for these fixtures: JSM Organizations, tier and severity custom fields (fixed here so the
test does not move when the bundled pack's mapping changes)."""

INTERNAL_MARKERS = ("exp-db-02", "heap", "EXPORT_HEAP_MB", "renews", "promise a date", "OutOfMemoryError",
                    "finance desk", "Erin")
"""Words only the restricted / internal comments of the fixtures contain."""


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def v2() -> ImportedTicket:
    return jira.parse(load("issue_v2.json"))


def v3() -> ImportedTicket:
    return jira.parse(load("issue_v3_jsm.json"), comments=load("comments_v3.json"))


def event(t: ImportedTicket, event_id: str) -> dict[str, Any]:
    return next(e for e in t.events if e["id"] == event_id)


def p(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def text(s: str, *marks: dict[str, Any]) -> dict[str, Any]:
    return {"type": "text", "text": s, **({"marks": list(marks)} if marks else {})}


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


# ---------------------------------------------------------------- text


def test_v2_wiki_and_v3_adf_give_the_same_description() -> None:
    a, b = event(v2(), "description")["body"], event(v3(), "description")["body"]
    assert a == b
    assert a.splitlines()[:3] == ["What happens", "",
                                  "Exporting the Q3 revenue report as CSV fails after about two minutes with an error "
                                  "page."]
    assert "1. Open the report Q3 revenue in Reports (https://app.example.com/reports)" in a
    assert "  1. Leave the default columns" in a
    assert "HTTP 500 Internal Server Error\nrequest-id: 7f3c2a91-0b7e-4d55-9a61-2c8e4f1d0a33" in a
    assert "*" not in a and "{noformat}" not in a and "h3." not in a


def test_v2_and_v3_same_comment_text() -> None:
    assert event(v2(), "c10201")["body"] == event(v3(), "c10301")["body"]
    assert event(v2(), "c10203")["body"] == event(v3(), "c10304")["body"].removesuffix(" \N{THUMBS UP SIGN}")


def test_adf_nested_lists_code_blocks_and_mentions() -> None:
    adf = doc(
        p({"type": "mention", "attrs": {"id": "abc", "text": "@Erin Engineer"}}, text(" please look")),
        {"type": "bulletList", "content": [
            {"type": "listItem", "content": [p(text("outer one")), {"type": "orderedList", "attrs": {"order": 3},
                                             "content": [{"type": "listItem", "content": [p(text("inner three"))]},
                                                         {"type": "listItem", "content": [p(text("inner four"))]}]}]},
            {"type": "listItem", "content": [p(text("outer two"), {"type": "hardBreak"}, text("continued"))]},
        ]},
        {"type": "codeBlock", "attrs": {"language": "java"},
         "content": [text("  at com.example.A.run(A.java:10)\n    *kept as is*")]},
        {"type": "blockquote", "content": [p(text("quoted"))]},
        {"type": "rule"},
        p({"type": "inlineCard", "attrs": {"url": "https://status.example.com/i/1"}},
          text(" "), {"type": "emoji", "attrs": {"shortName": ":warning:", "text": "\u26a0\ufe0f"}}),
    )
    assert jira.adf_to_text(adf) == (
        "@Erin Engineer please look\n\n"
        "- outer one\n"
        "  3. inner three\n"
        "  4. inner four\n"
        "- outer two\n"
        "  continued\n\n"
        "  at com.example.A.run(A.java:10)\n    *kept as is*\n\n"
        "quoted\n\n"
        "----\n\n"
        "https://status.example.com/i/1 \u26a0\ufe0f"
    )


def test_adf_tables_panels_and_unknown_nodes() -> None:
    def cell(kind: str, s: str) -> dict[str, Any]:
        return {"type": kind, "content": [p(text(s))]}
    adf = doc(
        {"type": "table", "content": [
            {"type": "tableRow", "content": [cell("tableHeader", "Region"), cell("tableHeader", "Errors")]},
            {"type": "tableRow", "content": [cell("tableCell", "eu-west"), cell("tableCell", "503")]},
        ]},
        {"type": "panel", "attrs": {"panelType": "info"}, "content": [p(text("in a panel"))]},
        {"type": "someFutureBlock", "content": [p(text("still read"))]},
        {"type": "mediaSingle", "content": [{"type": "media", "attrs": {"id": "x", "type": "file"}}]},
        p(text("the docs", {"type": "link", "attrs": {"href": "https://docs.example.com"}}),
          {"type": "someFutureInline", "content": [text(" and more")]}),
    )
    assert jira.adf_to_text(adf) == ("Region | Errors\neu-west | 503\n\nin a panel\n\nstill read\n\n"
                                     "the docs (https://docs.example.com) and more")


def test_wiki_markup_to_text() -> None:
    markup = ("h2. Title\r\nSee [~jdoe] and [the docs|https://docs.example.com] and {{config.yaml}}.\r\n"
              "* one\r\n** one.a\r\n* two\r\n\r\n||Host||State||\r\n|a1|down|\r\n"
              "{code:java}\r\nint *x* = 1; // _not italic_\r\n{code}\r\nmy_var_name stays, 2*3*4 stays")
    assert jira.wiki_to_text(markup) == (
        "Title\n\nSee @jdoe and the docs (https://docs.example.com) and config.yaml.\n\n"
        "- one\n  - one.a\n- two\n\nHost | State\na1 | down\n\n"
        "int *x* = 1; // _not italic_\n\nmy_var_name stays, 2*3*4 stays"
    )


def test_unterminated_code_block_keeps_the_rest_verbatim() -> None:
    assert jira.wiki_to_text("Trace:\n{noformat}\nat x.Y(Y.java:1)\n*star*") == "Trace:\n\nat x.Y(Y.java:1)\n*star*"


# ---------------------------------------------------------------- visibility, roles, changes


def test_restricted_and_jsm_internal_comments_are_internal() -> None:
    a, b = v2(), v3()
    assert event(a, "c10202")["visibility"] == "internal"   # visibility: role Developers
    assert event(a, "c10204")["visibility"] == "internal"   # visibility: group support-leads
    assert event(b, "c10302")["visibility"] == "internal"   # jsdPublic: false
    assert event(b, "c10303")["visibility"] == "internal"   # sd.public.comment {"internal": true}
    for t, ids in ((a, ("description", "c10201", "c10203")), (b, ("description", "c10301", "c10304"))):
        assert all(event(t, i)["visibility"] == "public" for i in ids)


def test_author_roles() -> None:
    a, b = v2(), v3()
    assert event(a, "description")["author"] == {"name": "Dana Whitfield", "role": "customer"}
    assert event(a, "c10203")["author"]["role"] == "customer"       # the reporter, an atlassian account
    assert event(a, "c10201")["author"]["role"] == "agent"
    assert event(b, "c10304")["author"]["role"] == "customer"       # a JSM portal customer
    issue = load("issue_v2.json")
    issue["fields"]["comment"]["comments"][0]["author"] = {"accountId": "557058:bot", "displayName": "Triage Bot",
                                                           "accountType": "app"}
    issue["fields"]["comment"]["comments"][1]["author"] = {"accountId": "qm:other", "displayName": "Pat Portal",
                                                           "accountType": "customer"}
    t = jira.parse(issue)
    assert event(t, "c10201")["author"] == {"name": "Triage Bot", "role": "system"}
    assert event(t, "c10202")["author"]["role"] == "customer"


def test_server_users_match_the_reporter_by_name() -> None:
    issue = load("issue_v2.json")
    server_dana = {"name": "dwhitfield", "key": "JIRAUSER10100", "displayName": "Dana Whitfield"}
    issue["fields"]["reporter"] = issue["fields"]["creator"] = server_dana
    issue["fields"]["comment"]["comments"][2]["author"] = dict(server_dana)
    issue["fields"]["comment"]["comments"][0]["author"] = {"name": "aagent", "key": "aagent",
                                                           "displayName": "Alex Agent"}
    t = jira.parse(issue)
    assert event(t, "c10203")["author"]["role"] == "customer"
    assert event(t, "c10201")["author"]["role"] == "agent"
    assert t.requester_email is None


def test_changelog_becomes_internal_field_change_events() -> None:
    t = v2()
    sev = event(t, "h20001")
    assert sev["visibility"] == "internal"
    assert sev["changes"] == {"priority": ("Major", "Blocker"), "severity": ("Sev3", "Sev1")}
    assert sev["body"] == "priority changed from Major to Blocker; Severity changed from Sev3 to Sev1"
    assert sev["author"] == {"name": "Alex Agent", "role": "agent"}
    auto = event(t, "h20002")
    assert auto["changes"] == {"status": ("Open", "In Progress")}   # the labels change is not kept
    assert auto["author"]["role"] == "system"
    assert event(t, "h20003")["changes"] == {"components": (None, "Exports"), "assignee": (None, "Alex Agent")}
    assert event(t, "h20001")["at"] == datetime(2026, 3, 4, 10, 40, tzinfo=UTC)


def test_severity_field_found_by_name_and_components_merged() -> None:
    issue = load("issue_v2.json")
    issue["changelog"]["histories"] = [{"id": "9", "created": "2026-03-04T11:00:00.000+0000", "items": [
        {"field": "Customer Severity Level", "fieldId": "customfield_10999", "fromString": None, "toString": "Sev 2"},
        {"field": "Component", "fieldId": "components", "fromString": "Exports", "toString": None},
        {"field": "Component", "fieldId": "components", "fromString": None, "toString": "API"},
    ]}]
    h = event(jira.parse(issue), "h9")
    assert h["changes"] == {"severity": (None, "Sev 2"), "components": ("Exports", "API")}
    assert h["author"] == {"name": "Jira automation", "role": "system"}   # no author: an automation rule


@pytest.mark.parametrize(("name", "expected"), [
    ("Highest", "urgent"), ("Blocker", "urgent"), ("High", "high"), ("Critical", "high"), ("Medium", "normal"),
    ("Major", "normal"), ("Low", "low"), ("Lowest", "low"), ("Minor", "low"), ("Trivial", "low"),
])
def test_priority_mapping(name: str, expected: str) -> None:
    issue = load("issue_v2.json")
    issue["fields"]["priority"] = {"id": "9", "name": name}
    t = jira.parse(issue)
    assert t.priority == expected and not t.warnings


def test_unknown_priority_is_left_unset_with_a_warning() -> None:
    issue = load("issue_v2.json")
    issue["fields"]["priority"] = {"name": "P0 - Drop everything"}
    t = jira.parse(issue)
    assert t.priority is None
    assert "P0 - Drop everything" in t.warnings[0] and "jira.fields.priority" in t.warnings[0]


def test_fields_tags_and_timestamps() -> None:
    t = v2()
    assert t.ticket_id == "SUP-101" and t.source == "jira"
    assert t.subject == "CSV export of the Q3 revenue report fails with HTTP 500"
    assert t.status == "In Progress" and t.priority == "urgent"
    assert t.created_at == datetime(2026, 3, 4, 10, 15, 30, tzinfo=UTC)
    assert t.requester_email == "dana.whitfield@initech.example.com"
    assert t.assignee == {"name": "Alex Agent"}
    assert t.tags == ["csv", "month-end", "Exports"]
    assert set(t.docs) == {"issue", "fields"} and t.docs["fields"]["customfield_10050"]["value"] == "Enterprise"
    issue = load("issue_v2.json")
    issue["fields"]["created"] = "2026-03-04T11:15:30.000+0100"
    assert jira.parse(issue).created_at == datetime(2026, 3, 4, 10, 15, 30, tzinfo=UTC)


def test_comments_file_overrides_embedded_comments() -> None:
    alone = jira.parse(load("issue_v3_jsm.json"))
    assert [e["id"] for e in alone.events] == ["description", "c10301"]
    assert "1 of 4 comments" in alone.warnings[0]
    full = v3()
    assert [e["id"] for e in full.events] == ["description", "c10301", "c10302", "c10303", "c10304"]
    assert not full.warnings
    assert jira.parse(load("issue_v3_jsm.json"), comments=load("comments_v3.json")["comments"]).events == full.events


def test_search_result_with_one_issue_and_vendor_table(pack: Pack) -> None:
    via_table, _ = case_from_payloads("jira", {"issues": [load("issue_v2.json")]}, {}, pack)
    assert sorted((e.id, e.body) for e in via_table.ticket.events) == sorted(
        (e["id"], e["body"]) for e in v2().events)  # the case orders events by time


# ---------------------------------------------------------------- wrong input


@pytest.mark.parametrize(("payload", "words"), [
    ({"ticket": {"id": 35436, "subject": "Help", "requester_id": 20978392}}, "Zendesk"),
    ({"id": 35436, "subject": "Help", "requester_id": 1, "via": {"channel": "web"}}, "Zendesk"),
    ({"bugs": [{"id": 1, "summary": "x"}]}, "Bugzilla"),
    ([{"key": "SUP-1"}], "expected an issue object, got a list"),
    ("SUP-1", "expected an issue object, got a string"),
    ({"key": "SUP-1"}, "no 'fields'"),
    ({"fields": {"summary": "x"}}, "no 'key'"),
    ({"key": "SUP-1", "fields": {"created": "2026-03-04T10:15:30.000+0000"}}, "fields.summary is missing"),
    ({"key": "SUP-1", "fields": {"summary": "x"}}, "fields.created"),
    ({"key": "SUP-1", "fields": {"summary": "x", "created": "04/Mar/26 10:15"}}, "not an ISO 8601 timestamp"),
    ({"key": "SUP-1", "fields": {"summary": "x", "created": "2026-03-04T10:15:30"}}, "no time zone"),
])
def test_wrong_files_give_a_clear_error(payload: Any, words: str) -> None:
    with pytest.raises(InputError, match=words) as exc:
        jira.parse(payload)
    assert "\n" not in str(exc.value)


def test_wrong_comments_file_gives_a_clear_error() -> None:
    with pytest.raises(InputError, match="this is an issue, not its comments"):
        jira.parse(load("issue_v2.json"), comments=load("issue_v3_jsm.json"))
    with pytest.raises(InputError, match=r"expected \{\"comments\": \[...\]\}, got a string"):
        jira.parse(load("issue_v2.json"), comments="nope")
    with pytest.raises(InputError, match=r"comments\[0\]: expected a comment object"):
        jira.parse(load("issue_v2.json"), comments={"comments": ["hello"]})


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize("which", ["v2", "v3"])
def test_end_to_end_with_the_lumen_pack(which: str, pack: Pack) -> None:
    t = v2() if which == "v2" else v3()
    case, warnings = to_case(t, MAPPING, pack)
    assert warnings == []
    assert case.account.name == "Initech" and case.account.tier == "enterprise"
    assert case.ticket.product_area == "exports"
    packet = run(case, pack)
    assert [(c.key, c.details) for c in packet.checks if not c.passed] == []
    assert not packet.needs_review
    internal = [e.body for e in case.ticket.events if e.visibility == "internal" and e.body]
    assert len(internal) >= 2
    for body in internal:
        for sentence in body.split(". "):
            assert sentence.strip()[:40] not in packet.customer_update
    for marker in INTERNAL_MARKERS:
        assert marker not in packet.customer_update
    assert "Dana" in packet.customer_update


@pytest.mark.parametrize("which", ["v2", "v3"])
def test_end_to_end_with_the_packs_own_mapping(which: str, pack: Pack) -> None:
    """The bundled pack's connectors.yaml (whatever it maps) gives a packet that passes and keeps secrets."""
    case, _ = to_case(v2() if which == "v2" else v3(), pack.connectors.jira, pack)
    packet = run(case, pack)
    assert [(c.key, c.details) for c in packet.checks if not c.passed] == []
    for marker in INTERNAL_MARKERS:
        assert marker not in packet.customer_update


def test_recorded_severity_comes_from_the_mapped_custom_field(pack: Pack) -> None:
    case, _ = to_case(v2(), MAPPING, pack)
    assert case.ticket.severity == "Sev1"
    assert run(case, pack).severity.recorded == "Sev1"


def test_a_leaked_restriction_would_be_caught() -> None:
    """Guard for the test above: the same comment without its restriction is public."""
    issue = copy.deepcopy(load("issue_v2.json"))
    del issue["fields"]["comment"]["comments"][1]["visibility"]
    assert event(jira.parse(issue), "c10202")["visibility"] == "public"
