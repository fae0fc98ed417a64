"""Pack tests (`escalate policy test PACK`): golden cases and rule unit tests a pack carries."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import escalate
from escalation.errors import PackError
from escalation.pack import Pack, load_pack
from escalation.policy_tests import (
    PackTestResult,
    default_facts,
    forbidden_in,
    load_pack_tests,
    run_pack_tests,
)

ROOT = Path(__file__).resolve().parent.parent
LUMEN = (ROOT / "examples" / "lumen").resolve()
VIP_TEST = "core degraded with workaround on strategic → Sev2 by §2.3b (VIP uplift, §2.5)"
VIP_CASE = "02-massive-dynamic-saml-bookmarks-vip"



def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def remove_rule(pack_dir: Path, rule_id: str) -> None:
    path = pack_dir / "severity.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index(f"  - id: {rule_id}\n")
    end = text.index("  - id: ", start + 1)
    path.write_text(text[:start] + text[end:], encoding="utf-8")


def failures(pack: Pack) -> dict[str, PackTestResult]:
    return {r.name: r for r in run_pack_tests(pack).results if not r.passed}


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(i for i, ln in enumerate(lines, start=1) if needle in ln)


# ------------------------------------------------------------------ the bundled pack


def test_bundled_pack_tests_all_pass(pack: Pack) -> None:
    report = run_pack_tests(pack)
    assert [r.name for r in report.results if not r.passed] == []
    assert report.ok and report.failed == 0 and report.passed == len(report.results)
    cases = [r for r in report.results if r.kind == "case"]
    rules = [r for r in report.results if r.kind == "rule"]
    assert len(cases) >= 5 and len(rules) >= 12
    assert report.content_hash == pack.content_hash and report.version == pack.version


def test_bundled_rule_tests_cover_every_rule(pack: Pack) -> None:
    fired = {r.rule for r in run_pack_tests(pack).results if r.kind == "rule"}
    assert fired == {r.id for r in pack.severity.rules}


def test_bundled_cases_are_labelled_for_every_field(pack: Pack) -> None:
    cases, _ = load_pack_tests(pack)
    for t in cases:
        assert t.expected.severity_section and t.expected.product_area and t.expected.forbidden_phrases
        assert t.case.id == t.name
        assert t.expected_path.name == f"{t.name}.expected.yaml"


def test_defaults_for_unstated_facts(pack: Pack) -> None:
    facts = default_facts(pack)
    assert facts["accounts_affected"] == 1
    assert facts["core"] is False and facts["tier"] == ""
    assert set(facts) == set(pack.severity.facts)


def test_results_say_which_rule_fired_and_why(pack: Pack) -> None:
    report = run_pack_tests(pack)
    vip = next(r for r in report.results if r.name == VIP_TEST)
    assert vip.rule == "sev2-vip-uplift" and vip.section == "§2.3b"
    assert vip.rationale.startswith("§2.3b: ")
    assert vip.deciding_facts == {"broken": True, "core": True, "tier": "strategic", "workaround": True}
    case = next(r for r in report.results if r.name == VIP_CASE)
    assert case.rule == "sev2-vip-uplift" and case.got["severity"] == "Sev2"
    assert case.deciding_facts["tier"] == "strategic"


# ------------------------------------------------------------------ a broken policy fails the right tests


def test_removing_the_vip_uplift_fails_its_tests(pack_dir: Path) -> None:
    remove_rule(pack_dir, "sev2-vip-uplift")
    failed = failures(load_pack(pack_dir))
    assert set(failed) == {VIP_TEST, VIP_CASE}
    rule_result, case_result = failed[VIP_TEST], failed[VIP_CASE]
    for r in (rule_result, case_result):
        assert r.rule == "sev3-core-workaround"
        assert r.section == "§2.4a"
        assert r.deciding_facts["workaround"] is True
    assert {m.field for m in rule_result.mismatches} == {"level", "section", "rule"}
    by_field = {m.field: m for m in case_result.mismatches}
    assert (by_field["severity"].expected, by_field["severity"].got) == ("Sev2", "Sev3")
    assert "not fired: severity_change" in by_field["triggers"].detail  # Sev3 equals the recorded severity
    assert rule_result.where == f"{pack_dir / 'tests' / 'rules.yaml'}:{line_of(pack_dir / 'tests' / 'rules.yaml', VIP_TEST)}"  # noqa: E501


def test_changing_a_section_fails_the_tests_that_cite_it(pack_dir: Path) -> None:
    edit(pack_dir / "severity.yaml", 'section: "§2.4b"', 'section: "§2.4"')
    failed = failures(load_pack(pack_dir))
    assert set(failed) == {
        "non-core broken without workaround on strategic → Sev3 by §2.4b (no uplift for non-core)",
        "non-core unavailable for all users of three accounts → Sev3 by §2.4b (scope does not make non-core Sev1)",
        "04-wayne-pivot-drilldown-no-owner", "05-duff-vague-something-went-wrong",
    }
    for r in failed.values():
        assert r.rule == "sev3-noncore-no-workaround"
        assert [m.field for m in r.mismatches] in (["section"], ["severity_section"])


def test_a_forbidden_phrase_in_the_update_fails(pack_dir: Path) -> None:
    exp = pack_dir / "tests" / "cases" / "01-nakatomi-api-503-incident.expected.yaml"
    edit(exp, "  - Sev1  ", "  - STATUS   page\n  - Sev1  ")
    failed = failures(load_pack(pack_dir))
    assert set(failed) == {"01-nakatomi-api-503-incident"}
    [m] = failed["01-nakatomi-api-503-incident"].mismatches
    assert m.field == "forbidden_phrases" and m.got == ["STATUS   page"]


def test_missing_info_required_and_optional(pack_dir: Path) -> None:
    exp = pack_dir / "tests" / "cases" / "05-duff-vague-something-went-wrong.expected.yaml"
    edit(exp, "missing_info: [workspace_id, first_seen, repro_steps, product_area]\nmissing_info_optional: []",
         "missing_info: [first_seen, repro_steps, product_area]\nmissing_info_optional: [workspace_id]")
    assert failures(load_pack(pack_dir)) == {}
    edit(exp, "missing_info_optional: [workspace_id]", "missing_info_optional: [browser]")
    edit(exp, "missing_info: [first_seen,", "missing_info: [idp, first_seen,")
    [m] = failures(load_pack(pack_dir))["05-duff-vague-something-went-wrong"].mismatches
    assert m.field == "missing_info" and m.detail == "not listed: idp; not expected: workspace_id"


@pytest.mark.parametrize(("text", "phrase", "found"), [
    ("We will fix it by Friday.", "fix it by friday", True),
    ("see #inc-3107 for more", "#inc-3107", True),
    ("ticket ENG-88410 is open", "ENG-8841", False),
    ("our SEV1 process", "Sev1", True),
    ("a prefix-Sev1x word", "Sev1", False),
    ("status\n  page", "status page", True),
])
def test_forbidden_phrases_are_whole_words_any_case(text: str, phrase: str, found: bool) -> None:
    assert forbidden_in(text, [phrase]) == ([phrase] if found else [])


# ------------------------------------------------------------------ malformed test files


CASE_EXP = "tests/cases/03-bluth-api-429-furious.expected.yaml"


@pytest.mark.parametrize(("rel", "old", "new", "line_has", "message"), [
    (CASE_EXP, "owner_team: API Platform", "owner_team: API Platform\npriority: high", "priority: high",
     "priority: Extra inputs are not permitted"),
    (CASE_EXP, "triggers: [severity_change]", "triggers: severity_change", "triggers:", "triggers: Input should be"),
    (CASE_EXP, "severity: Sev4", "severity: Sev4: low", "severity: Sev4: low", "YAML syntax error"),
    (CASE_EXP, "severity: Sev4", "severity: Sev 4", "severity: Sev 4", "is not one of the pack's levels"),
    (CASE_EXP, "missing_info: []\nmissing_info_optional: []",
     "missing_info: [request_id]\nmissing_info_optional: [request_id]", "missing_info_optional:",
     "missing_info_optional: ['request_id'] also under missing_info"),
    (CASE_EXP, "  - renewal", '  - "  "', '  - "  "', "forbidden_phrases.6: an empty phrase"),
    ("tests/rules.yaml", "workaround: true, tier: enterprise}\n  expect: {level: Sev3, section: \"§2.4a\"",
     "workaround: true, tier: enterprise, mood: angry}\n  expect: {level: Sev3, section: \"§2.4a\"",
     "mood: angry", "7.facts.mood: not a fact the pack's rules read"),
    ("tests/rules.yaml", "accounts_affected: 2,", "accounts_affected: two,", "accounts_affected: two",
     "4.facts.accounts_affected: 'two' is not a int"),
    ("tests/rules.yaml", "facts: {security_incident: true,", "facts: {security_incident: yes please,",
     "yes please", "1.facts.security_incident: 'yes please' is not a bool"),
    ("tests/rules.yaml", "expect: {level: Sev4, section: \"§2.7\"}", "expect: {level: P4, section: \"§2.7\"}",
     "level: P4", "12.expect.level: 'P4' is not one of the pack's levels"),
    ("tests/rules.yaml", "- name: security incident, whatever the workflow → Sev1 by §2.2c",
     "- name: confirmed data loss on a non-core workflow of a standard account → Sev1 by §2.2b",
     "- name: confirmed data loss on a non-core workflow of a standard account → Sev1 by §2.2b\n  facts: {sec",
     "1.name: duplicate test name"),
    ("tests/rules.yaml", "  expect: {level: Sev1, section: \"§2.2c\", rule: sev1-security}\n", "",
     "- name: security incident", "1.expect: Field required"),
])
def test_malformed_test_file_names_file_and_line(pack_dir: Path, rel: str, old: str, new: str, line_has: str,
                                                 message: str) -> None:
    path = pack_dir / rel
    edit(path, old, new)
    text = path.read_text(encoding="utf-8")
    # the line the error must name: the first line holding line_has (which may span two lines)
    line = text[:text.index(line_has)].count("\n") + 1
    with pytest.raises(PackError) as e:
        load_pack_tests(load_pack(pack_dir))
    assert str(e.value).startswith(f"{path}:{line}: "), str(e.value)
    assert message in str(e.value)


def test_missing_or_orphaned_files(pack_dir: Path) -> None:
    cases = pack_dir / "tests" / "cases"
    (cases / "03-bluth-api-429-furious.expected.yaml").rename(cases / "03-bluth.expected.yaml")
    with pytest.raises(PackError, match=r"03-bluth\.expected\.yaml: no case beside it"):
        load_pack_tests(load_pack(pack_dir))
    (cases / "03-bluth.expected.yaml").unlink()
    with pytest.raises(PackError, match=r"03-bluth-api-429-furious\.case\.json: no expected labels beside it"):
        load_pack_tests(load_pack(pack_dir))


def test_a_malformed_case_is_a_pack_error(pack_dir: Path) -> None:
    path = pack_dir / "tests" / "cases" / "03-bluth-api-429-furious.case.json"
    edit(path, '"product_area": "api",\n  "engineering_owner"', '"product_area": "apis",\n  "engineering_owner"')
    with pytest.raises(PackError, match=r"\$\.ticket\.product_area: unknown product area 'apis'"):
        load_pack_tests(load_pack(pack_dir))


def test_a_pack_without_tests(pack_dir: Path) -> None:
    shutil.rmtree(pack_dir / "tests")
    with pytest.raises(PackError, match="the pack has no tests"):
        load_pack_tests(load_pack(pack_dir))


# ------------------------------------------------------------------ the command line


def test_cli_all_pass_exit_0() -> None:
    result = escalate("policy", "test", "examples/lumen")
    assert result.exit_code == 0, result.output
    n = len(run_pack_tests(load_pack(LUMEN)).results)
    assert result.stdout.strip().splitlines()[-1] == f"{n} passed, 0 failed"
    assert "case: 02-massive-dynamic-saml-bookmarks-vip" in result.stdout


def test_cli_failures_exit_1_and_name_the_rule(pack_dir: Path) -> None:
    remove_rule(pack_dir, "sev2-vip-uplift")
    result = escalate("policy", "test", pack_dir)
    assert result.exit_code == 1, result.output
    assert re.search(r"\d+ passed, 2 failed\s*$", result.stdout)
    assert "fired sev3-core-workaround" in result.stdout and "FAIL" in result.stdout

    as_json = escalate("policy", "test", pack_dir, "--json")
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    failed = [r for r in report["results"] if not r["passed"]]
    assert {r["name"] for r in failed} == {VIP_TEST, VIP_CASE}
    assert {r["rule"] for r in failed} == {"sev3-core-workaround"}


def test_cli_json_all_pass() -> None:
    result = escalate("policy", "test", LUMEN, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pack"] == "lumen-support-escalation" and all(r["passed"] for r in report["results"])
    assert report["failed"] == 0 and report["passed"] == len(report["results"])


def test_cli_malformed_exit_2(pack_dir: Path) -> None:
    path = pack_dir / CASE_EXP
    edit(path, "owner_team: API Platform", "owner_team: [API Platform")
    result = escalate("policy", "test", pack_dir)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}:")
    assert "YAML syntax error" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_bad_pack_exit_2(tmp_path: Path) -> None:
    result = escalate("policy", "test", tmp_path / "nope")
    assert result.exit_code == 2
    assert "not a folder" in result.stderr
