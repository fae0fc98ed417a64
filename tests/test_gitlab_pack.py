"""The GitLab pack: GitLab's published support policy encoded as a second, real policy pack."""

from __future__ import annotations

from pathlib import Path

import escalation.pack
from escalation.pack import load_pack

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
