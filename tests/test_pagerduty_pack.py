"""The PagerDuty pack: PagerDuty's public incident-response docs (SEV-1..SEV-5) as a policy pack,
and the starter that `escalate init` copies for a new company."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import escalation.pack
from escalation.pack import load_pack

PACK_DIR = Path(escalation.pack.__file__).parent / "packs" / "pagerduty"
CASE = PACK_DIR / "tests" / "cases" / "01-quillfeather-notifications-down.case.json"
YAML_FILES = sorted(PACK_DIR.rglob("*.yaml"))
TOP_LEVEL_KEY = re.compile(r"^[A-Za-z_][\w-]*\s*:")


def test_pack_loads_with_sev_levels_and_numbered_handbook() -> None:
    pack = load_pack(PACK_DIR)
    assert pack.name == "pagerduty-incident-escalation"
    assert pack.severity.levels == ["SEV-1", "SEV-2", "SEV-3", "SEV-4", "SEV-5"]
    assert pack.handbook_name == "handbook.md"
    for section in ("§2.1", "§2.2", "§2.3", "§2.4", "§2.5", "§3.2", "§8.2"):
        assert section in pack.sections
    for rule in pack.severity.rules:
        assert rule.section in pack.sections, rule.id
    for rule in pack.language.forbidden:
        assert rule.section in pack.sections, rule.id
    assert {t.tier for t in pack.sla.targets} == {"premium", "standard"}


def test_yaml_files_found() -> None:
    names = {p.relative_to(PACK_DIR).as_posix() for p in YAML_FILES}
    for required in (
        "skill.yaml",
        "severity.yaml",
        "sla.yaml",
        "routing.yaml",
        "actions.yaml",
        "required_info.yaml",
        "vocabulary.yaml",
        "language.yaml",
        "triggers.yaml",
        "tests/rules.yaml",
    ):
        assert required in names


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.relative_to(PACK_DIR).as_posix())
def test_every_top_level_key_has_a_comment_above(path: Path) -> None:
    """A starter pack explains every section in plain language: the nearest non-blank line above
    each top-level key (or top-level list item) is a comment."""
    lines = path.read_text(encoding="utf-8").splitlines()
    top = [i for i, line in enumerate(lines) if TOP_LEVEL_KEY.match(line) or line.startswith("- ")]
    assert top, f"{path.name}: no top-level entries"
    uncommented = []
    for i in top:
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j < 0 or not lines[j].lstrip().startswith("#"):
            uncommented.append(f"line {i + 1}: {lines[i][:60]}")
    assert uncommented == [], f"{path.name}: top-level entries without a comment above"
