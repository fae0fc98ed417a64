"""Extractors: each fact rests on quotes; the pack's vocabulary decides what is said."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casebuilder import make_case
from escalation.case import parse_case
from escalation.documents import index_for
from escalation.engine import run
from escalation.evidence import collect
from escalation.facts import Fact, Facts, extract
from escalation.pack import Pack


def facts_of(data: dict, pack: Pack) -> Facts:
    case = parse_case(data)
    return extract(collect(case, pack), pack, index_for(pack))


def test_a_fact_cannot_exist_without_a_quote() -> None:
    with pytest.raises(ValidationError):
        Fact(key="x", statement="unsupported", sources=())


def test_workaround_reported_failing_is_no_workaround(pack: Pack) -> None:
    data = make_case([
        ("customer", "public", "Our scheduled CSV export fails every night. Workspace acme-main."),
        ("agent", "public", "In the meantime, you can run a manual export from Admin > Exports > Export now."),
        ("customer", "public", "We tried Export now twice this morning and it failed too."),
    ], product_area="exports")
    f = facts_of(data, pack)
    assert f.workaround is not None and f.workaround.value is False
    assert any("failed too" in q.quote for q in f.workaround.sources)


def test_workaround_offered_and_confirmed_exists(pack: Pack) -> None:
    data = make_case([
        ("customer", "public", "Our scheduled CSV export fails some nights. Workspace acme-main."),
        ("agent", "public", "In the meantime, you can run a manual export from Admin > Exports > Export now."),
        ("customer", "public", "Export now worked, thanks."),
    ], product_area="exports")
    f = facts_of(data, pack)
    assert f.workaround is not None and f.workaround.value is True


def test_customer_claim_of_corruption_is_not_confirmed_but_an_engineers_is(pack: Pack) -> None:
    claim = [("customer", "public", "All our numbers are wrong, the data is corrupted! Workspace acme-main.")]
    assert facts_of(make_case(claim, product_area="sync"), pack).data_corruption is None
    confirmed = claim + [("engineer", "internal", "Confirmed data corruption: the sync overwrote 1,200 rows.")]
    f = facts_of(make_case(confirmed, product_area="sync"), pack)
    assert f.data_corruption is not None
    assert f.data_corruption.sources[0].ref == "ticket:e2"


def test_staff_denial_after_a_suspicion_wins(pack: Pack) -> None:
    data = make_case([
        ("customer", "public", "The export times are wrong."),
        ("agent", "internal", "Possible data corruption? Checking."),
        ("agent", "internal", "Not corruption: same instant, just UTC. This is expected behaviour."),
    ], product_area="exports")
    f = facts_of(data, pack)
    assert f.data_corruption is None
    assert f.question is not None


def test_every_attempt_failing_for_part_of_the_account_is_not_account_wide(pack: Pack) -> None:
    data = make_case([
        ("customer", "public", "Every run of the Postgres connector is failing in workspace cyb-eu. "
                               "Our two other workspaces are syncing normally."),
    ], product_area="sync")
    f = facts_of(data, pack)
    assert f.unavailable is not None
    assert f.partial_scope is not None and f.all_users is None


def test_product_area_is_inferred_from_logs_when_the_field_is_empty(pack: Pack) -> None:
    log = ("2026-05-06T05:19:47Z ERROR sync.extract run=r-1 table=orders SSL SYSCALL error: EOF detected\n"
           "2026-05-06T05:30:01Z INFO  sync.run connector=postgres workspace=cyb-mes run=r-2 start\n")
    data = make_case([("customer", "public", "The numbers on our dashboard are not updating since Sunday.")],
                     attachments=[{"id": "a1", "kind": "log", "name": "sync.log", "text": log}])
    data["ticket"]["events"].append({"id": "e9", "at": "2026-05-06T12:00:00Z",
                                     "author": {"name": "Alex Agent", "role": "agent"}, "visibility": "internal",
                                     "body": "The dashboard is fine, the data is stale: the Postgres connector fails."})
    f = facts_of(data, pack)
    assert f.product_area == "sync"
    assert "SYNC-KI-9" in [k.known_issue for k in f.known_issues]


def test_vague_report_leaves_the_area_unknown_and_routes_to_triage(pack: Pack) -> None:
    data = make_case([
        ("customer", "public", "Someone said numbers are wrong somewhere, maybe a dashboard, an export or the "
                               "invoice. Nothing is blocked for us."),
    ])
    packet = run(parse_case(data), pack)
    assert packet.product_area == "unknown"
    assert packet.owner.team == pack.routing.triage_team
    assert "product_area" in [m.key for m in packet.missing_info]


def test_same_error_on_two_accounts_gets_the_same_log_signature() -> None:
    from escalation.logs import error_signatures

    a = ("2026-04-14T13:20:05Z ERROR sync.ingest run=sr-1 SYNC-E503 ingest gateway unavailable "
         "host=gw-2.int.x ip=10.0.0.1\n")
    b = ("2026-04-15T08:02:11Z ERROR sync.ingest run=sr-998 SYNC-E503 ingest gateway unavailable "
         "host=gw-7.int.x ip=10.9.9.9\n")
    sa, sb = error_signatures([("attachment:a1", a)]), error_signatures([("attachment:a1", b)])
    assert sa[0].template == sb[0].template
    assert "SYNC-E503" in sa[0].template and "10.0.0.1" not in sa[0].template


def test_first_seen_needs_a_date_not_a_relative_phrase(pack: Pack) -> None:
    relative = make_case([("customer", "public", "Exports fail since last night. Workspace acme-main.")],
                         product_area="exports")
    dated = make_case([("customer", "public", "Exports fail since 3 May 2026. Workspace acme-main.")],
                      product_area="exports")
    assert "first_seen" not in facts_of(relative, pack).provided
    assert "first_seen" in facts_of(dated, pack).provided


def test_threats_are_tone_and_add_an_account_owner_action(pack: Pack) -> None:
    calm = make_case([("customer", "public", "Our scheduled export fails some nights. Workspace acme-main.")],
                     product_area="exports")
    angry = make_case([("customer", "public", "Our scheduled export fails some nights. Workspace acme-main. "
                                              "If this is not fixed we will cancel our contract.")],
                      product_area="exports")
    p_calm, p_angry = run(parse_case(calm), pack), run(parse_case(angry), pack)
    assert p_calm.severity.level == p_angry.severity.level
    assert any(a.section == "§6.2" for a in p_angry.next_actions)
    assert not any(a.section == "§6.2" for a in p_calm.next_actions)


def test_docs_index_finds_the_passage_the_customer_describes(pack: Pack) -> None:
    data = make_case([("customer", "public", "The API keeps answering HTTP 429 Too Many Requests with a "
                                             "Retry-After header when our importer runs. Workspace acme-main.")],
                     product_area="api")
    f = facts_of(data, pack)
    assert f.docs, "the FTS5 index should find a docs passage"
    assert f.docs[0].sources[0].ref == "doc:api.md"
    assert "429" in f.docs[0].sources[0].quote or "requests per minute" in f.docs[0].sources[0].quote
