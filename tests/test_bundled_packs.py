"""Every bundled real-policy pack passes its own tests, and a golden case gives a clean packet."""

from __future__ import annotations

from pathlib import Path

import pytest

import escalation.pack
from escalation.case import load_case
from escalation.engine import run
from escalation.pack import load_pack
from escalation.policy_tests import run_pack_tests

PACKS = Path(escalation.pack.__file__).parent / "packs"

# (pack, golden case, severity level, owner team or None when any owner will do)
GOLDEN = [
    ("gitlab", "01-fjord-502-all-users", "Severity 1", "On-Call Support Engineer"),
    ("pagerduty", "01-quillfeather-notifications-down", "SEV-2", None),
]


@pytest.mark.parametrize("name", ["lumen", "gitlab", "pagerduty"])
def test_pack_tests_all_pass(name: str) -> None:
    report = run_pack_tests(load_pack(PACKS / name))
    failed = [(r.name, [m.model_dump() for m in r.mismatches]) for r in report.results if not r.passed]
    assert failed == []
    assert report.passed >= 9  # golden cases + the rule tests


@pytest.mark.parametrize(("name", "case", "level", "owner"), GOLDEN)
def test_golden_packet_passes_every_check(name: str, case: str, level: str, owner: str | None) -> None:
    pack_dir = PACKS / name
    packet = run(load_case(pack_dir / "tests" / "cases" / f"{case}.case.json"), load_pack(pack_dir))
    assert packet.severity.level == level
    if owner is not None:
        assert packet.owner.team == owner
    assert [c.key for c in packet.checks if not c.passed] == []
    assert level not in packet.customer_update
