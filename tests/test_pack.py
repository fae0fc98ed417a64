"""The policy pack: full validation on load, errors with file and line, content hash, contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from escalation.errors import PackError
from escalation.pack import EVIDENCE_FACTS, Pack, load_pack, split_handbook
from escalation.verify import CHECKS


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_bundled_pack_loads_with_every_section(pack: Pack) -> None:
    assert pack.name and pack.version and pack.content_hash.startswith("sha256:")
    assert pack.severity.levels == ["Sev1", "Sev2", "Sev3", "Sev4"]
    assert {a.key for a in pack.routing.areas} == {"sync", "exports", "dashboards", "api", "auth", "notifications",
                                                    "mobile", "billing"}
    assert len(pack.sla.targets) == 12
    assert {"§2.2", "§2.3", "§4.1", "§8.2"} <= set(pack.sections)


def test_every_rule_cites_a_handbook_section_that_exists(pack: Pack) -> None:
    for rule in pack.severity.rules:
        base = re.match(r"§\d+(?:\.\d+)?", rule.section)
        assert base and base.group(0) in pack.sections, rule.id


def test_content_hash_changes_with_any_file(pack_dir: Path) -> None:
    before = load_pack(pack_dir).content_hash
    _edit(pack_dir / "context" / "handbook.md", "Head of Support Operations", "Head of Support Ops")
    assert load_pack(pack_dir).content_hash != before


@pytest.mark.parametrize(("file", "old", "new", "expect"), [
    ("severity.yaml", 'when: "data_loss_confirmed"', 'when: "data_loss_confirmed && ("',
     r"severity\.yaml:\d+: .*CEL syntax"),
    ("severity.yaml", 'when: "security_incident"', 'when: "security_incident || customer_is_angry"',
     r"severity\.yaml:\d+: .*unknown fact.*customer_is_angry"),
    ("routing.yaml", "team: Reporting", "team: [Reporting", r"routing\.yaml:\d+: YAML syntax error"),
    ("vocabulary.yaml", "'\\bbroken\\b'", "'\\bbroken(\\b'", r"vocabulary\.yaml:\d+: .*invalid regular expression"),
    ("sla.yaml", '"1 h"', '"an hour"', r"sla\.yaml:\d+: "),
    ("actions.yaml", "comms_section:", "comms_sektion:", r"actions\.yaml:\d+: "),
])
def test_pack_errors_name_file_and_line(pack_dir: Path, file: str, old: str, new: str, expect: str) -> None:
    _edit(pack_dir / file, old, new)
    with pytest.raises(PackError, match=expect):
        load_pack(pack_dir)


def test_rule_error_points_at_the_rule(pack_dir: Path) -> None:
    _edit(pack_dir / "severity.yaml", 'when: "security_incident"', 'when: "security_incident &&"')
    with pytest.raises(PackError) as err:
        load_pack(pack_dir)
    line = int(re.search(r"severity\.yaml:(\d+)", str(err.value)).group(1))  # type: ignore[union-attr]
    assert "sev1-security" in (pack_dir / "severity.yaml").read_text().splitlines()[line - 1]


def test_missing_file_is_named(pack_dir: Path) -> None:
    (pack_dir / "triggers.yaml").unlink()
    with pytest.raises(PackError, match=r"triggers\.yaml: missing"):
        load_pack(pack_dir)


def test_catch_all_rule_is_required(pack_dir: Path) -> None:
    data = yaml.safe_load((pack_dir / "severity.yaml").read_text())
    data["rules"] = data["rules"][:-1]
    (pack_dir / "severity.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(PackError, match="catch-all"):
        load_pack(pack_dir)


def test_skill_contract_checklist_is_implemented_as_code(pack: Pack) -> None:
    """Every checklist item the contract promises is a check the engine runs, and vice versa."""
    assert {c.key for c in pack.skill.checklist} == set(CHECKS)


def test_declared_facts_are_documented_and_known(pack: Pack) -> None:
    for name, decl in pack.severity.facts.items():
        assert name in EVIDENCE_FACTS
        assert decl.description


def test_handbook_sections_are_verbatim_substrings(pack: Pack) -> None:
    for sec in split_handbook(pack.handbook).values():
        assert sec.text in pack.handbook


def test_skill_roles_cover_the_governance_contract(pack: Pack) -> None:
    keys = {r.key for r in pack.skill.roles}
    assert {"support", "success", "engineering_triage", "account_owner", "owner"} <= keys
    triage = next(r for r in pack.skill.roles if r.key == "engineering_triage")
    assert not triage.can_approve_customer_update


def test_a_rule_citing_a_missing_section_is_refused(pack_dir: Path) -> None:
    _edit(pack_dir / "severity.yaml", 'section: "§2.2c"', 'section: "§9.9"')
    with pytest.raises(PackError, match=r"severity\.yaml: rule sev1-security: section '§9\.9' is not in the handbook"):
        load_pack(pack_dir)


def test_the_handbook_is_named_not_guessed(pack_dir: Path) -> None:
    (pack_dir / "context" / "handbook.md").rename(pack_dir / "context" / "policy.md")
    (pack_dir / "context" / "notes.md").write_text("# notes\n")
    with pytest.raises(PackError, match="context/handbook.md"):
        load_pack(pack_dir)
