"""Pack tests: the golden cases and rule unit tests a policy pack carries in `PACK/tests/`.

A pack version may be released only when its own tests pass (`escalate policy test PACK`).
Two kinds, both written by the pack's owner without code:

    tests/cases/NAME.case.json        a case (`escalation-case/1`)
    tests/cases/NAME.expected.yaml    what the packet must say for it, labelled from the handbook:
        severity: Sev2                  the level
        severity_section: "§2.3b"       optional: the section of the rule that decides it
        owner_team: Identity
        product_area: auth              optional
        triggers: [severity_change]     the exact set
        missing_info: [workspace_id]    must all be listed
        missing_info_optional: []       may be listed; anything else listed is a failure
        forbidden_phrases: ["Sev2"]     must not occur in the customer update (case-insensitive,
                                        whole word or phrase)
        notes: "why, with the handbook sections"   optional, for reviewers

    tests/rules.yaml                  unit tests of the severity rules alone:
        - name: core degraded with workaround on strategic
          facts: {core: true, broken: true, degraded: true, workaround: true, tier: strategic}
          expect: {level: Sev2, section: "§2.3b"}     # section (and rule: ID) optional

A fact a rule test leaves out takes its type's default (bool false, int 0, float 0.0,
string ""), except `accounts_affected`, which is 1 (the reporting account). Facts are
checked against the pack's declared facts and their types.

Every result says which rule fired, its rationale, and the facts the rule reads: for a
failure, that is why the pack decided what it did. A malformed test file is a PackError
naming the file and line, as for the pack itself.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .assessment import evaluate_rules
from .case import Case, check_against_pack, load_case
from .engine import run
from .errors import InputError, PackError
from .pack import Pack, _yaml_line, load_yaml

TESTS_DIR = "tests"
CASES_DIR = "tests/cases"
RULES_FILE = "tests/rules.yaml"
CASE_SUFFIX = ".case.json"
EXPECTED_SUFFIX = ".expected.yaml"

FactValue = bool | int | float | str

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---------------------------------------------------------------- the test files

class ExpectedPacket(_Model):
    """`NAME.expected.yaml`: what the packet for a golden case must say."""

    severity: str
    severity_section: str | None = None
    owner_team: str
    product_area: str | None = None
    triggers: list[str] = Field(description="the exact set of triggers")
    missing_info: list[str] = Field(default=[], description="keys that must be listed")
    missing_info_optional: list[str] = Field(default=[], description="keys that may be listed")
    forbidden_phrases: list[str] = Field(default=[], description="must not occur in the customer update")
    notes: str | None = Field(None, description="the labeller's reasons, for reviewers")


class ExpectedRule(_Model):
    level: str
    section: str | None = None
    rule: str | None = Field(None, description="the id of the rule that must fire")


class RuleTestSpec(_Model):
    """One entry of `tests/rules.yaml`."""

    name: str
    facts: dict[str, FactValue] = {}
    expect: ExpectedRule


class CaseTest(_Model):
    """A loaded golden case."""

    name: str
    case: Case
    expected: ExpectedPacket
    case_path: Path
    expected_path: Path


class RuleTest(_Model):
    """A loaded rule test, its facts completed with the defaults."""

    name: str
    where: str
    given: dict[str, FactValue]
    facts: dict[str, FactValue]
    expect: ExpectedRule


# ---------------------------------------------------------------- the report

class Mismatch(_Model):
    field: str
    expected: Any
    got: Any
    detail: str = ""


class PackTestResult(_Model):
    kind: Literal["case", "rule"]
    name: str
    where: str = Field(description="the file (and line) that states the expectation")
    passed: bool
    expected: dict[str, Any]
    got: dict[str, Any]
    mismatches: list[Mismatch]
    rule: str = Field(description="the severity rule that fired")
    section: str
    rationale: str
    deciding_facts: dict[str, FactValue] = Field(
        description="the facts the fired rule reads (all facts for the catch-all: no earlier rule held)")
    facts: dict[str, FactValue]
    given: dict[str, FactValue] = Field(default={}, description="a rule test's stated facts (before defaults)")


class PackTestReport(_Model):
    pack: str
    version: str
    content_hash: str
    passed: int
    failed: int
    results: list[PackTestResult]

    @property
    def ok(self) -> bool:
        return self.failed == 0


# ---------------------------------------------------------------- loading


def _line(text: str, loc: tuple[Any, ...]) -> int | None:
    line: int | None = _yaml_line(yaml.compose(text, Loader=_Loader), loc)
    return line


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)


def _validation_error(e: ValidationError, path: Path, text: str) -> PackError:
    err = e.errors()[0]
    loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc)
    msg = err["msg"].removeprefix("Value error, ")
    return PackError(f"{_at(path, _line(text, loc))}: {dotted + ': ' if dotted else ''}{msg}")


def _load_expected(path: Path, pack: Pack) -> ExpectedPacket:
    data, text = load_yaml(path)
    if not isinstance(data, dict):
        raise PackError(f"{_at(path, 1)}: expected a mapping with severity, owner_team, triggers, missing_info, "
                        f"forbidden_phrases; got {type(data).__name__ if data is not None else 'an empty file'}")
    try:
        expected = ExpectedPacket.model_validate(data)
    except ValidationError as e:
        raise _validation_error(e, path, text) from None
    levels = pack.severity.levels
    if expected.severity not in levels:
        raise PackError(f"{_at(path, _line(text, ('severity',)))}: severity: {expected.severity!r} is not one of "
                        f"the pack's levels {levels}")
    both = sorted(set(expected.missing_info) & set(expected.missing_info_optional))
    if both:
        raise PackError(f"{_at(path, _line(text, ('missing_info_optional',)))}: missing_info_optional: {both} "
                        "also under missing_info; a key is either required or optional")
    for i, phrase in enumerate(expected.forbidden_phrases):
        if not phrase.strip():
            raise PackError(f"{_at(path, _line(text, ('forbidden_phrases', i)))}: forbidden_phrases.{i}: "
                            "an empty phrase")
    return expected


def _load_case(path: Path, pack: Pack) -> Case:
    try:
        case = load_case(path)
        check_against_pack(case, [a.key for a in pack.routing.areas], str(path))
    except InputError as e:  # a pack's own test file: the pack is at fault
        raise PackError(str(e)) from None
    return case


def _load_cases(pack: Pack) -> list[CaseTest]:
    folder = pack.root / CASES_DIR
    if not folder.is_dir():
        return []
    cases = {p.name.removesuffix(CASE_SUFFIX): p for p in sorted(folder.glob(f"*{CASE_SUFFIX}"))}
    expected = {p.name.removesuffix(EXPECTED_SUFFIX): p for p in sorted(folder.glob(f"*{EXPECTED_SUFFIX}"))}
    orphans = sorted(set(expected) - set(cases))
    if orphans:
        name = orphans[0]
        raise PackError(f"{expected[name]}: no case beside it; expected {folder / (name + CASE_SUFFIX)}")
    out: list[CaseTest] = []
    for name, case_path in cases.items():
        exp_path = expected.get(name)
        if exp_path is None:
            raise PackError(f"{case_path}: no expected labels beside it; write {folder / (name + EXPECTED_SUFFIX)}")
        out.append(CaseTest(name=name, case=_load_case(case_path, pack), expected=_load_expected(exp_path, pack),
                            case_path=case_path, expected_path=exp_path))
    return out


_TYPES: dict[str, tuple[type, ...]] = {"bool": (bool,), "int": (int,), "float": (int, float), "string": (str,)}
_DEFAULTS: dict[str, FactValue] = {"bool": False, "int": 0, "float": 0.0, "string": ""}
_FACT_DEFAULTS: dict[str, FactValue] = {"accounts_affected": 1}


def default_facts(pack: Pack) -> dict[str, FactValue]:
    """Every declared fact at its default: false, 0, 0.0, "" (accounts_affected: 1)."""
    return {k: _FACT_DEFAULTS.get(k, _DEFAULTS[d.type]) for k, d in pack.severity.facts.items()}


def _load_rules(pack: Pack) -> list[RuleTest]:
    path = pack.root / RULES_FILE
    if not path.exists():
        return []
    data, text = load_yaml(path)
    if data is None:
        return []
    if not isinstance(data, list):
        raise PackError(f"{_at(path, 1)}: expected a list of rule tests ({{name, facts, expect: {{level, section}}}}),"
                        f" got {type(data).__name__}")
    try:
        specs = TypeAdapter(list[RuleTestSpec]).validate_python(data)
    except ValidationError as e:
        raise _validation_error(e, path, text) from None
    declared = pack.severity.facts
    levels = pack.severity.levels
    seen: set[str] = set()
    out: list[RuleTest] = []
    for i, spec in enumerate(specs):
        where = _at(path, _line(text, (i,)))
        if spec.name in seen:
            raise PackError(f"{_at(path, _line(text, (i, 'name')))}: {i}.name: duplicate test name {spec.name!r}")
        seen.add(spec.name)
        facts = default_facts(pack)
        for key, value in spec.facts.items():
            at = _at(path, _line(text, (i, "facts", key)))
            decl = declared.get(key)
            if decl is None:
                raise PackError(f"{at}: {i}.facts.{key}: not a fact the pack's rules read; declared facts: "
                                f"{sorted(declared)}")
            is_bool = isinstance(value, bool)
            if not isinstance(value, _TYPES[decl.type]) or (is_bool and decl.type != "bool"):
                raise PackError(f"{at}: {i}.facts.{key}: {value!r} is not a {decl.type} (severity.yaml declares "
                                f"{key} as {decl.type})")
            facts[key] = float(value) if decl.type == "float" else value
        if spec.expect.level not in levels:
            raise PackError(f"{_at(path, _line(text, (i, 'expect', 'level')))}: {i}.expect.level: "
                            f"{spec.expect.level!r} is not one of the pack's levels {levels}")
        out.append(RuleTest(name=spec.name, where=where, given=dict(spec.facts), facts=facts, expect=spec.expect))
    return out


def load_pack_tests(pack: Pack) -> tuple[list[CaseTest], list[RuleTest]]:
    """The pack's golden cases and rule tests; a malformed file is a PackError naming file and line."""
    tests = pack.root / TESTS_DIR
    cases = _load_cases(pack)
    rules = _load_rules(pack)
    if not cases and not rules:
        raise PackError(f"{tests}: the pack has no tests; add golden cases as {CASES_DIR}/NAME{CASE_SUFFIX} with "
                        f"NAME{EXPECTED_SUFFIX} beside each, and rule tests in {RULES_FILE}")
    return cases, rules


# ---------------------------------------------------------------- running

def _deciding(pack: Pack, rule_id: str, facts: dict[str, FactValue]) -> dict[str, FactValue]:
    """The facts the fired rule reads; for the catch-all (reads none) every fact, since none held."""
    program = next((p for r, p in pack.compiled_rules if r.id == rule_id), None)
    names = sorted(program.variables()) if program is not None else []
    return {k: facts[k] for k in names if k in facts} if names else dict(facts)


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """A phrase as a case-insensitive, whole-word pattern; any whitespace between its words."""
    body = r"\s+".join(re.escape(w) for w in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def forbidden_in(text: str, phrases: list[str]) -> list[str]:
    """The phrases that occur in text (case-insensitive, whole word or phrase)."""
    return [p for p in phrases if phrase_pattern(p).search(text)]


def run_case_test(test: CaseTest, pack: Pack) -> PackTestResult:
    packet = run(test.case, pack)
    exp = test.expected
    sev = packet.severity
    got_triggers = [t.key for t in packet.triggers]
    got_missing = [m.key for m in packet.missing_info]
    found = forbidden_in(packet.customer_update, exp.forbidden_phrases)
    expected: dict[str, Any] = {"severity": exp.severity, "owner_team": exp.owner_team,
                                "triggers": sorted(exp.triggers), "missing_info": sorted(exp.missing_info)}
    got: dict[str, Any] = {"severity": sev.level, "owner_team": packet.owner.team,
                           "triggers": sorted(got_triggers), "missing_info": sorted(got_missing)}
    mismatches: list[Mismatch] = []
    _compare("severity", exp.severity, sev.level, expected, got, mismatches)
    _compare("severity_section", exp.severity_section, sev.section, expected, got, mismatches)
    _compare("owner_team", exp.owner_team, packet.owner.team, expected, got, mismatches)
    _compare("product_area", exp.product_area, packet.product_area, expected, got, mismatches)
    if set(got_triggers) != set(exp.triggers):
        extra = sorted(set(got_triggers) - set(exp.triggers))
        absent = sorted(set(exp.triggers) - set(got_triggers))
        detail = "; ".join(s for s in (f"not fired: {', '.join(absent)}" if absent else "",
                                       f"not expected: {', '.join(extra)}" if extra else "") if s)
        mismatches.append(Mismatch(field="triggers", expected=sorted(exp.triggers), got=sorted(got_triggers),
                                   detail=detail))
    absent = sorted(set(exp.missing_info) - set(got_missing))
    extra = sorted(set(got_missing) - set(exp.missing_info) - set(exp.missing_info_optional))
    if exp.missing_info_optional:
        expected["missing_info_optional"] = sorted(exp.missing_info_optional)
    if absent or extra:
        detail = "; ".join(s for s in (f"not listed: {', '.join(absent)}" if absent else "",
                                       f"not expected: {', '.join(extra)}" if extra else "") if s)
        mismatches.append(Mismatch(field="missing_info", expected=sorted(exp.missing_info), got=sorted(got_missing),
                                   detail=detail))
    if exp.forbidden_phrases:
        expected["forbidden_phrases"], got["forbidden_phrases"] = [], found
        if found:
            mismatches.append(Mismatch(field="forbidden_phrases", expected=[], got=found,
                                       detail=f"in the customer update: {', '.join(repr(p) for p in found)}"))
    facts = dict(sev.facts)
    return PackTestResult(kind="case", name=test.name, where=str(test.expected_path), passed=not mismatches,
                          expected=expected, got=got, mismatches=mismatches, rule=sev.rule, section=sev.section,
                          rationale=sev.rationale, deciding_facts=_deciding(pack, sev.rule, facts), facts=facts)


def _compare(field: str, want: str | None, have: str, expected: dict[str, Any], got: dict[str, Any],
             mismatches: list[Mismatch]) -> None:
    """One scalar expectation: recorded on both sides when stated, a mismatch when it differs."""
    if want is None:
        return
    expected[field], got[field] = want, have
    if have != want:
        mismatches.append(Mismatch(field=field, expected=want, got=have))


def run_rule_test(test: RuleTest, pack: Pack) -> PackTestResult:
    rule = evaluate_rules(pack, dict(test.facts))
    exp = test.expect
    expected: dict[str, Any] = {"level": exp.level}
    got: dict[str, Any] = {"level": rule.level}
    mismatches: list[Mismatch] = []
    _compare("level", exp.level, rule.level, expected, got, mismatches)
    _compare("section", exp.section, rule.section, expected, got, mismatches)
    _compare("rule", exp.rule, rule.id, expected, got, mismatches)
    return PackTestResult(kind="rule", name=test.name, where=test.where, passed=not mismatches, expected=expected,
                          got=got, mismatches=mismatches, rule=rule.id, section=rule.section,
                          rationale=f"{rule.section}: {rule.reason}",
                          deciding_facts=_deciding(pack, rule.id, test.facts), facts=dict(test.facts),
                          given=dict(test.given))


def run_pack_tests(pack: Pack) -> PackTestReport:
    """Run every golden case and rule test of the pack; the report has one result per test."""
    cases, rules = load_pack_tests(pack)
    results = [run_rule_test(t, pack) for t in rules] + [run_case_test(t, pack) for t in cases]
    passed = sum(r.passed for r in results)
    return PackTestReport(pack=pack.name, version=pack.version, content_hash=pack.content_hash, passed=passed,
                          failed=len(results) - passed, results=results)
