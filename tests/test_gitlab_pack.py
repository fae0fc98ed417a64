"""The GitLab pack: GitLab's published support policy encoded as a second, real policy pack."""

from __future__ import annotations

from pathlib import Path

import escalation.pack
from escalation.case import load_case
from escalation.engine import run
from escalation.pack import load_pack
from escalation.policy_tests import run_pack_tests

PACK_DIR = Path(escalation.pack.__file__).parent / "packs" / "gitlab"
CASE = PACK_DIR / "tests" / "cases" / "01-fjord-502-all-users.case.json"


def test_pack_loads_with_gitlab_levels_and_numbered_handbook() -> None:
    pack = load_pack(PACK_DIR)
    assert pack.name == "gitlab-support-escalation"
    assert pack.severity.levels == ["Severity 1", "Severity 2", "Severity 3", "Severity 4"]
    assert pack.handbook_name == "handbook.md"
    for section in ("§2.1", "§2.2", "§2.3", "§2.4", "§3.1", "§4.1"):
        assert section in pack.sections
    for rule in pack.severity.rules:
        assert rule.section in pack.sections, rule.id
    assert {t.tier for t in pack.sla.targets} == {"ultimate", "premium", "starter"}


def test_pack_tests_all_pass() -> None:
    report = run_pack_tests(load_pack(PACK_DIR))
    failed = [(r.name, [m.model_dump() for m in r.mismatches]) for r in report.results if not r.passed]
    assert failed == []
    assert report.passed >= 9  # 3 golden cases + the rule tests


def test_golden_packet_passes_every_check() -> None:
    pack = load_pack(PACK_DIR)
    packet = run(load_case(CASE), pack)
    assert packet.severity.level == "Severity 1"
    assert packet.owner.team == "On-Call Support Engineer"
    failing = [c.key for c in packet.checks if not c.passed]
    assert failing == []
    assert "Severity 1" not in packet.customer_update
