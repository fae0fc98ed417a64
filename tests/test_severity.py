"""Severity follows policy, not emotion: the rules, their inputs, and tone invariance."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import all_case_paths
from escalation.assessment import evaluate_rules, severity_context
from escalation.case import Case, load_case
from escalation.documents import index_for
from escalation.engine import analyse
from escalation.evidence import collect
from escalation.facts import extract
from escalation.pack import EVIDENCE_FACTS, Pack

BASE: dict[str, Any] = {
    "core": True, "broken": True, "unavailable": False, "degraded": True, "all_users": False,
    "accounts_affected": 1, "workaround": False, "data_loss_confirmed": False, "security_incident": False,
    "question": False, "tier": "enterprise",
}


@pytest.mark.parametrize(("changes", "level", "section"), [
    ({"unavailable": True, "degraded": False, "all_users": True}, "Sev1", "§2.2a"),
    ({"unavailable": True, "degraded": False, "accounts_affected": 3}, "Sev1", "§2.2a"),
    ({"unavailable": True, "degraded": False, "all_users": True, "workaround": True}, "Sev3", "§2.4a"),
    ({"data_loss_confirmed": True, "workaround": True, "core": False}, "Sev1", "§2.2b"),
    ({"security_incident": True, "broken": False, "degraded": False}, "Sev1", "§2.2c"),
    ({}, "Sev2", "§2.3a"),
    ({"workaround": True, "tier": "strategic"}, "Sev2", "§2.3b"),
    ({"workaround": True}, "Sev3", "§2.4a"),
    ({"core": False}, "Sev3", "§2.4b"),
    ({"core": False, "tier": "strategic"}, "Sev3", "§2.4b"),          # VIP uplift never for non-core (§2.5)
    ({"core": False, "workaround": True, "tier": "strategic"}, "Sev4", "§2.7"),
    ({"broken": False, "degraded": False, "question": True, "tier": "strategic"}, "Sev4", "§2.7"),
])
def test_rules_map_facts_to_the_handbook_severity(pack: Pack, changes: dict[str, Any], level: str,
                                                  section: str) -> None:
    rule = evaluate_rules(pack, {**BASE, **changes})
    assert (rule.level, rule.section) == (level, section)


def test_rules_can_only_read_declared_evidence_facts(pack: Pack) -> None:
    assert set(pack.severity.facts) <= set(EVIDENCE_FACTS)
    for banned in ("priority", "tone", "anger", "threat", "urgency", "capitals"):
        assert banned not in EVIDENCE_FACTS
        assert all(banned not in p.variables() for _, p in pack.compiled_rules)


CASES = all_case_paths()


def _shout(text: str, how: int) -> str:
    if how == 0:
        return text.upper() + "!!!"
    if how == 1:
        return "URGENT!!! " + text + " We will CANCEL our contract and call our lawyers."
    if how == 2:
        return text.replace("!", ".").lower()
    return text + "\n\nThis is completely unacceptable. Our CEO is asking me every hour. FIX IT NOW!!!"


@pytest.mark.skipif(not CASES, reason="no cases")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(min_value=0, max_value=max(0, len(CASES) - 1)),
       hows=st.lists(st.integers(min_value=-1, max_value=3), min_size=1, max_size=12),
       priority=st.sampled_from(["low", "normal", "high", "urgent", None]))
def test_tone_never_moves_severity_or_triggers(pack: Pack, index: int, hows: list[int], priority: str | None) -> None:
    """Same facts, different tone: the same severity and the same triggers (handbook §2, §2.10)."""
    case = load_case(CASES[index])
    data = case.model_dump(mode="json", by_alias=True)
    customer = [e for e in data["ticket"]["events"] if e["author"]["role"] == "customer" and e["body"]]
    for event, how in zip(customer, hows, strict=False):
        if how >= 0:
            event["body"] = _shout(event["body"], how)
    data["ticket"]["priority"] = priority
    _, base = analyse(case, pack)
    _, loud = analyse(Case.model_validate(data), pack)
    assert loud.severity.level == base.severity.level
    assert [t.key for t in loud.triggers] == [t.key for t in base.triggers]


def test_severity_context_has_no_tone_even_when_the_customer_threatens(pack: Pack) -> None:
    path = next((p for p in CASES if "angry" in p.name or "furious" in p.name), None)
    if path is None:
        pytest.skip("no angry case available")
    case = load_case(path)
    ev = collect(case, pack)
    facts = extract(ev, pack, index_for(pack))
    assert facts.tone.facts, "the angry case should record tone facts"
    ctx, _ = severity_context(facts, pack)
    assert set(ctx) == set(pack.severity.facts)
