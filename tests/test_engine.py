"""End-to-end behaviour of run(case, pack): determinism, grounding, the checklist, invariants."""

from __future__ import annotations

import json
import re

import pytest

from conftest import all_case_paths
from escalation.case import Case, load_case
from escalation.engine import run, tone_variants
from escalation.evidence import collect
from escalation.pack import Pack
from escalation.packet import Packet
from escalation.verify import CHECKS, resolve

CASE_PATHS = all_case_paths()
IDS = [p.name.split(".")[0] for p in CASE_PATHS]


@pytest.fixture(scope="module", params=CASE_PATHS, ids=IDS)
def case(request: pytest.FixtureRequest) -> Case:
    return load_case(request.param)


def test_same_case_and_pack_give_byte_identical_json(case: Case, pack: Pack) -> None:
    assert run(case, pack).to_json() == run(case, pack).to_json()


def test_packet_round_trips_through_its_schema(case: Case, pack: Pack) -> None:
    packet = run(case, pack)
    again = Packet.model_validate_json(packet.to_json())
    assert again == packet
    assert packet.pack.content_hash.startswith("sha256:") and packet.pack.version == pack.version


def test_every_quote_occurs_verbatim_in_the_source_it_names(case: Case, pack: Pack) -> None:
    packet = run(case, pack)
    ev = collect(case, pack)
    assert packet.claims
    for claim in packet.claims:
        assert claim.sources, claim.text
        for src in claim.sources:
            text = resolve(ev, pack, src.ref)
            assert text is not None, src.ref
            norm = lambda s: re.sub(r"\s+", " ", s).strip().lower()  # noqa: E731
            assert norm(src.quote) in norm(text), (src.ref, src.quote)


def test_all_checks_pass_and_someone_acts_next(case: Case, pack: Pack) -> None:
    packet = run(case, pack, tone_check="text")
    failed = {c.key: c.details for c in packet.checks if not c.passed}
    assert not failed
    assert {c.key for c in packet.checks} == set(CHECKS)
    assert packet.owner.team
    assert packet.next_actions and all(a.due for a in packet.next_actions)
    assert not packet.needs_review


def test_customer_update_is_built_only_from_public_sources(case: Case, pack: Pack) -> None:
    packet = run(case, pack)
    ev = collect(case, pack)
    for claim in packet.claims:
        if claim.part != "customer_update":
            continue
        for src in claim.sources:
            if src.ref.startswith(("handbook:", "doc:")):
                continue
            assert ev.by_ref[src.ref].visibility == "public", (claim.text, src.ref)


def test_internal_notes_never_reach_the_customer_update(case: Case, pack: Pack) -> None:
    """Plant internal-only strings in an internal note; none may appear in the update."""
    planted = ("Context: primary at db-shard-99.int.lumen.example (10.11.12.13), ENG-99999, "
               "war room #inc-sev-99, Quentin Marchetti on it; Initech saw the same. "
               "Keys in /srv/lumen/secrets; ran SELECT * FROM tenants.")
    data = case.model_dump(mode="json", by_alias=True)
    internal = [e for e in data["ticket"]["events"] if e["visibility"] == "internal" and e["body"]]
    if internal:
        internal[0]["body"] += "\n" + planted
    data["attachments"] = list(data["attachments"]) + [{"id": "zz", "kind": "text", "name": "n.txt",
                                                         "text": planted}]
    packet = run(Case.model_validate(data), pack)
    update = packet.customer_update.lower()
    for canary in ("db-shard-99", "10.11.12.13", "ENG-99999", "#inc-sev-99", "Quentin", "Marchetti",
                   "/srv/lumen/secrets", "SELECT * FROM", "Initech"):
        if canary == "Initech" and case.account.name.startswith("Initech"):
            continue
        assert canary.lower() not in update, canary
    assert not re.search(r"\bSev[1-4]\b", packet.customer_update)


def test_tone_and_priority_do_not_change_severity_or_triggers(case: Case, pack: Pack) -> None:
    base = run(case, pack, tone_check="off")
    for _, variant in tone_variants(case):
        other = run(variant, pack, tone_check="off")
        assert other.severity.level == base.severity.level
        assert [t.key for t in other.triggers] == [t.key for t in base.triggers]


def test_packet_lists_what_the_eval_reads(case: Case, pack: Pack) -> None:
    data = json.loads(run(case, pack).to_json())
    for key in ("severity", "product_area", "owner", "triggers", "missing_info", "workaround", "summary",
                "reproduction_steps", "customer_update", "next_actions", "claims"):
        assert key in data
    assert data["severity"]["level"] in pack.severity.levels
    assert data["customer_update"].strip()
