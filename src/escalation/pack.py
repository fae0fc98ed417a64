"""The policy pack: a folder of YAML, templates and documents that a support ops lead owns.

A pack is data, reviewed like code. It is validated fully on load: every file against a
pydantic model with `extra="forbid"`, every CEL rule compiled and checked to use only
declared facts, every regex compiled. An error names the file and line to fix. The pack's
content hash (over every file) is recorded in each packet, so a reviewed pack version is
provably the one that ran.

Layout (each file is documented in `docs/policy-pack.md`):

    skill.yaml            the skill contract: name, version, owner, roles, triggers, checklist, signals
    severity.yaml         severity levels, the evidence facts rules may read, rules as CEL
    triggers.yaml         trigger keys, their parameters and sections
    sla.yaml              SLA targets, business hours
    routing.yaml          product areas: owner team, on-call alias, core or not, vocabulary
    actions.yaml          next actions per severity, who talks to the customer
    required_info.yaml    information needed before an engineering handoff
    vocabulary.yaml       how concepts sound in tickets (unavailable, workaround, …)
    language.yaml         customer-safe language: forbidden patterns, approved phrases
    connectors.yaml       optional: which help-desk field holds tier, product area, severity, owners
    templates/*.j2        the customer update and the internal summary
    context/              policy handbook, product docs, accounts (cited as sources)
"""

from __future__ import annotations

import csv
import hashlib
import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from . import _cel as cel
from .connectors.mapping import ConnectorConfig
from .customer_safe import LanguageRules
from .errors import PackError
from .patterns import Matcher, alternation, compile_pattern
from .sla import SlaPolicy

PACK_FILES = (
    "skill.yaml", "severity.yaml", "triggers.yaml", "sla.yaml", "routing.yaml", "actions.yaml",
    "required_info.yaml", "vocabulary.yaml", "language.yaml",
)
TEMPLATES = ("customer_update.j2", "summary.j2")
RELEASES_FILE = "releases.jsonl"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as e:
        raise ValueError(f"invalid regular expression {pattern!r}: {e}") from None
    return pattern


RegexList = Annotated[list[str], AfterValidator(lambda v: [_check_regex(p) for p in v])]
"""A list of regular expressions, each compiled at load so a typo is a load error."""


# ---------------------------------------------------------------- skill.yaml

class Role(_Model):
    key: str
    description: str
    can_view_internal: bool = True
    can_approve_customer_update: bool = False
    own_accounts_only: bool = False


class ChecklistItem(_Model):
    key: str
    description: str
    section: str | None = None


class Signal(_Model):
    key: str
    description: str


class SkillContract(_Model):
    name: str
    version: str
    description: str
    owner: str
    license: str | None = None
    roles: list[Role]
    triggers: list[str]
    inputs: list[str]
    context: list[str]
    outputs: list[str]
    checklist: list[ChecklistItem]
    signals: list[Signal]


# ---------------------------------------------------------------- severity.yaml

EVIDENCE_FACTS: dict[str, str] = {
    "core": "the affected workflow is core (or a billing error at or above the pack's threshold)",
    "broken": "a failure is reported and it is not a question or documented expected behaviour",
    "unavailable": "every attempt fails (not merely slow, partial or intermittent)",
    "degraded": "broken but not unavailable: errors, intermittent or partial failures, slowness",
    "all_users": "all users of the account are affected",
    "accounts_affected": "distinct accounts reporting the same error signature recently (this one included)",
    "workaround": "a way to complete the task exists and the customer has not reported it failing",
    "data_loss_confirmed": "staff confirmed data loss or corruption",
    "security_incident": "staff confirmed unauthorized access, cross-tenant exposure or leaked credentials",
    "question": "a how-to question, feature request or documented expected behaviour",
    "tier": "the account's tier",
    "area": "the product area key, or 'unknown'",
    "billing_amount_usd": "the invoice or charge error in USD (0 when none)",
}
"""The evidence facts the engine computes; a pack's rules may read only these, and never tone."""


class FactDecl(_Model):
    type: Literal["bool", "int", "float", "string"]
    description: str


class SeverityRule(_Model):
    id: str
    level: str
    when: str = Field(description="CEL expression over the declared facts")
    section: str = Field(description="the policy section this rule encodes, e.g. '§2.3a'")
    reason: str = Field(description="the rationale in words, shown to reviewers")


class SeverityPolicy(_Model):
    levels: list[str] = Field(description="most severe first")
    facts: dict[str, FactDecl]
    rules: list[SeverityRule]
    section: str = "§2"

    @model_validator(mode="after")
    def _rules_ok(self) -> SeverityPolicy:
        unknown_facts = sorted(set(self.facts) - set(EVIDENCE_FACTS))
        if unknown_facts:
            raise ValueError(f"facts {unknown_facts} are not computed by the engine; "
                             f"known facts: {sorted(EVIDENCE_FACTS)}")
        for rule in self.rules:
            if rule.level not in self.levels:
                raise ValueError(f"rule {rule.id}: level {rule.level!r} is not one of {self.levels}")
            try:
                program = cel.compile(rule.when)
            except ValueError as e:
                first = str(e).splitlines()[0]
                raise ValueError(f"rule {rule.id}: CEL syntax error: {first}") from None
            unknown = sorted(set(program.variables()) - set(self.facts))
            if unknown:
                raise ValueError(f"rule {rule.id}: unknown fact(s) {unknown}; declare them under facts")
        if not self.rules or self.rules[-1].when.strip() != "true":
            raise ValueError("the last severity rule must be a catch-all with when: 'true'")
        return self

    def rank(self, level: str) -> int:
        return self.levels.index(level)


# ---------------------------------------------------------------- triggers.yaml

class TriggerDef(_Model):
    key: str
    section: str
    description: str
    params: dict[str, Any] = {}


class TriggerPolicy(_Model):
    triggers: list[TriggerDef]

    def get(self, key: str) -> TriggerDef | None:
        return next((t for t in self.triggers if t.key == key), None)


# ---------------------------------------------------------------- routing.yaml

class ProductArea(_Model):
    key: str
    name: str = Field(description="the customer-facing name, e.g. 'data sync'")
    team: str
    alias: str
    core: bool
    is_engineering: bool = True
    doc: str | None = None
    keywords: RegexList = Field(default=[], description="regexes for features and words of this area")
    log_components: RegexList = Field(default=[], description="regexes matching log component names")
    known_issue_prefix: str | None = None


class Routing(_Model):
    section: str
    areas: list[ProductArea]
    security_team: str
    security_alias: str
    security_section: str
    triage_team: str
    triage_section: str
    min_area_score: float = 3.0
    ambiguity_ratio: float = Field(0.75, description="runner-up / winner score above which the area is unclear")
    billing_core_threshold_usd: float | None = None
    billing_area: str | None = None
    billing_section: str | None = None

    def area(self, key: str | None) -> ProductArea | None:
        return next((a for a in self.areas if a.key == key), None)


# ---------------------------------------------------------------- actions.yaml

class ActionTemplate(_Model):
    actor: str = Field(description="'owner_team', 'owner_alias', 'security', 'comms_owner', 'csm', 'support_agent'")
    action: str
    due: str = Field(description="'now', 'first_response', 'update_cadence', 'end_of_business_day', "
                                 "'business_days:N', 'hours:N'")
    section: str


class ActionsPolicy(_Model):
    section: str
    by_severity: dict[str, list[ActionTemplate]]
    comms_owner_csm_tiers: list[str] = Field(description="tiers whose CSM owns customer communication")
    comms_section: str
    threat_action: ActionTemplate
    missing_info_action: ActionTemplate
    handoff_action: ActionTemplate
    open_question_action: ActionTemplate


# ---------------------------------------------------------------- required_info.yaml

class InfoItem(_Model):
    key: str
    needed_for: list[str] | Literal["all"] = Field(description="product areas, or 'all'")
    except_areas: list[str] = []
    question: str
    defect_only: bool = Field(True, description="not asked for questions and feature requests")
    shown_error_only: bool = False
    patterns: RegexList = Field(default=[], description="regexes; a match in the evidence means the item is provided")
    needs_date: bool = False
    cue: Annotated[str | None, AfterValidator(lambda v: v if v is None else _check_regex(v))] = Field(
        None, description="regex that must also occur in the same sentence")
    exclude: Annotated[str | None, AfterValidator(lambda v: v if v is None else _check_regex(v))] = Field(
        None, description="regex: a sentence matching it does not count")
    sources: list[Literal["customer", "agent", "engineer", "csm", "attachment", "account", "log"]] = [
        "customer", "agent", "engineer", "csm", "attachment", "account"]


class RequiredInfo(_Model):
    section: str
    items: list[InfoItem]
    product_area_item: InfoItem


# ---------------------------------------------------------------- vocabulary.yaml

class Concept(_Model):
    description: str
    roles: list[Literal["customer", "agent", "engineer", "csm", "system", "docs", "attachment"]] | None = None
    patterns: RegexList

    @cached_property
    def regex(self) -> Matcher:
        return compile_pattern(alternation(self.patterns))


REQUIRED_CONCEPTS = (
    "failure", "all_attempts", "all_users", "partial_scope", "intermittent", "slow",
    "workaround_offer", "workaround_works", "workaround_fails", "no_workaround",
    "data_corruption", "no_data_corruption", "security_exposure", "expected_behaviour",
    "question", "feature_request", "no_impact", "reproduced", "owner_named",
    "question_to_engineering", "root_cause_confirmed", "root_cause_suspected",
    "anger", "threat_churn", "threat_legal", "executive_complaint", "urgency",
    "billing_error", "billing_disputed", "error_shown",
)


class Vocabulary(_Model):
    concepts: dict[str, Concept]
    engineering_key: str = Field(description="regex for an engineering ticket key, e.g. ENG-1234")
    money: str = Field(description="regex capturing an amount with group 'amount'")
    negation_window: str = Field(r"\b(not|no|never|isn't|wasn't|doesn't|don't)\b",
                                 description="regex for a negation before an area name")

    @model_validator(mode="after")
    def _concepts_present(self) -> Vocabulary:
        missing = [c for c in REQUIRED_CONCEPTS if c not in self.concepts]
        if missing:
            raise ValueError(f"missing concept(s) {missing}: the extractors read them")
        _check_regex(self.engineering_key)
        _check_regex(self.money)
        return self

    def concept(self, name: str) -> Concept:
        return self.concepts[name]


# ---------------------------------------------------------------- the pack

class Account(_Model):
    id: str
    name: str
    tier: str
    csm_name: str
    timezone: str | None


class Document(_Model):
    """A context document section: a handbook § or a product-doc paragraph."""

    ref: str           # "handbook:§2.3" or "doc:exports.md"
    anchor: str        # "§2.3" or a heading
    title: str
    text: str


class Pack(_Model):
    """A loaded, validated policy pack."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    root: Path
    content_hash: str
    skill: SkillContract
    severity: SeverityPolicy
    triggers: TriggerPolicy
    sla: SlaPolicy
    routing: Routing
    actions: ActionsPolicy
    required_info: RequiredInfo
    vocabulary: Vocabulary
    language: LanguageRules
    templates: dict[str, str]
    handbook: str
    handbook_name: str
    docs: dict[str, str]
    accounts: list[Account]
    connectors: ConnectorConfig = ConnectorConfig()

    @property
    def name(self) -> str:
        return self.skill.name

    @property
    def version(self) -> str:
        return self.skill.version

    @cached_property
    def sections(self) -> dict[str, Document]:
        """Handbook paragraphs by § number ("§2.3"); a table's section holds the table."""
        return split_handbook(self.handbook)

    @cached_property
    def jinja(self) -> jinja2.Environment:
        env = jinja2.Environment(loader=jinja2.DictLoader(self.templates), autoescape=False,
                                 undefined=jinja2.StrictUndefined, trim_blocks=False, lstrip_blocks=True,
                                 keep_trailing_newline=False)
        return env

    @cached_property
    def compiled_rules(self) -> list[tuple[SeverityRule, Any]]:
        return [(r, cel.compile(r.when)) for r in self.severity.rules]


_SECTION_RE = re.compile(r"^(?:#+\s*)?(?:§|)(\d+(?:\.\d+)?)\.?\s", re.M)


def split_handbook(text: str) -> dict[str, Document]:
    """Split a handbook into citable sections.

    Headings "## 2. Severity definitions" open section §2; paragraphs starting "§2.3" open
    §2.3 and run until the next § paragraph or heading. Quotes cited from a section are
    verbatim substrings of the handbook, so a reviewer can find them.
    """
    sections: dict[str, Document] = {}
    current: str | None = None
    title = ""
    buf: list[str] = []

    def flush() -> None:
        if current is not None:
            body = "\n".join(buf).strip()
            prev = sections.get(current)
            if prev is None:
                sections[current] = Document(ref=f"handbook:{current}", anchor=current, title=title, text=body)

    for line in text.splitlines():
        m_head = re.match(r"^#{1,6}\s+(\d+)\.\s+(.*)$", line)
        m_para = re.match(r"^§(\d+\.\d+)\s+(.*)$", line)
        if m_head:
            flush()
            current, title, buf = f"§{m_head.group(1)}", m_head.group(2).strip(), [line]
        elif m_para:
            flush()
            current = f"§{m_para.group(1)}"
            title = re.sub(r"\*\*", "", m_para.group(2)).split(".")[0][:80]
            buf = [line]
        else:
            buf.append(line)
    flush()
    return sections


# ---------------------------------------------------------------- loading

def _yaml_line(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as near as it exists."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if node is None:
            break
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if getattr(k, "value", None) == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        node = nxt
    return line


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(path: Path) -> tuple[Any, str]:
    """A pack YAML file's data and text; unreadable, non-UTF-8 or invalid YAML is a PackError with file:line."""
    if not path.exists():
        raise PackError(f"{path}: missing; a pack needs {', '.join(PACK_FILES)}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise PackError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise PackError(f"{path}: not UTF-8 at byte {e.start}") from None
    try:
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - a safe loader (libyaml when present)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise PackError(f"{where}: YAML syntax error: {e.problem}") from None
    return data, text


def _validate(model: type[BaseModel], path: Path) -> Any:
    data, text = load_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = tuple(err["loc"])
        line = _yaml_line(yaml.compose(text, Loader=_Loader), loc)  # nodes only when there is an error
        named = re.match(r"(?:Value error, )?rule ([\w.-]+):", err["msg"])
        if named:  # a rule-level error: point at the rule's own line
            for i, ln in enumerate(text.splitlines(), start=1):
                if re.match(rf"\s*-?\s*id:\s*['\"]?{re.escape(named.group(1))}['\"]?\s*$", ln):
                    line = i
                    break
        where = f"{path}:{line}" if line else str(path)
        dotted = ".".join(str(p) for p in loc) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        raise PackError(f"{where}: {dotted + ': ' if loc else ''}{msg}") from None


def content_hash(root: Path) -> str:
    """sha256 over every file of the pack (path and bytes), independent of the machine."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts):
            continue
        if rel == RELEASES_FILE:
            continue  # the release log records hashes of the pack; it is not part of what it hashes
        h.update(rel.encode() + b"\0" + p.read_bytes() + b"\0")
    return "sha256:" + h.hexdigest()


def _load_accounts(path: Path) -> list[Account]:
    if not path.exists():
        return []
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                rows.append(Account(id=row["account_id"], name=row["name"], tier=row["tier"],
                                    csm_name=row["csm_name"], timezone=row.get("timezone") or None))
            except (KeyError, ValidationError) as e:
                raise PackError(f"{path}:{i}: bad account row: {e}") from None
    return rows


def _check_sections(root: Path, models: dict[str, Any], handbook: str) -> None:
    """Every § a rule, trigger or action cites must exist in the handbook: a rationale cites it."""
    sections = split_handbook(handbook)

    def known(section: str) -> bool:
        m = re.match(r"§(\d+(?:\.\d+)?)", section.strip())
        return m is not None and f"§{m.group(1)}" in sections

    severity: SeverityPolicy = models["severity.yaml"]
    for rule in severity.rules:
        if not known(rule.section):
            raise PackError(f"{root / 'severity.yaml'}: rule {rule.id}: section {rule.section!r} "
                            "is not in the handbook")
    triggers: TriggerPolicy = models["triggers.yaml"]
    for t in triggers.triggers:
        if not known(t.section):
            raise PackError(f"{root / 'triggers.yaml'}: trigger {t.key}: section {t.section!r} is not in the handbook")
    actions: ActionsPolicy = models["actions.yaml"]
    for level, items in actions.by_severity.items():
        for a in items:
            if not known(a.section):
                raise PackError(f"{root / 'actions.yaml'}: {level}: section {a.section!r} is not in the handbook")


def load_pack(root: Path) -> Pack:
    """Load and validate a pack folder; any problem is a PackError naming file and line."""
    root = Path(root)
    if not root.is_dir():
        raise PackError(f"{root}: not a folder; point --policy at a policy pack folder")
    models: dict[str, Any] = {}
    for fname, model in (("skill.yaml", SkillContract), ("severity.yaml", SeverityPolicy),
                         ("triggers.yaml", TriggerPolicy), ("sla.yaml", SlaPolicy), ("routing.yaml", Routing),
                         ("actions.yaml", ActionsPolicy), ("required_info.yaml", RequiredInfo),
                         ("vocabulary.yaml", Vocabulary), ("language.yaml", LanguageRules)):
        models[fname] = _validate(model, root / fname)
    templates: dict[str, str] = {}
    for t in TEMPLATES:
        p = root / "templates" / t
        if not p.exists():
            raise PackError(f"{p}: missing template")
        src = p.read_text(encoding="utf-8")
        try:
            jinja2.Environment().parse(src)
        except jinja2.TemplateSyntaxError as e:
            raise PackError(f"{p}:{e.lineno}: template syntax error: {e.message}") from None
        templates[t] = src
    ctx = root / "context"
    handbooks = sorted(ctx.glob("*.md")) if ctx.is_dir() else []
    if (ctx / "handbook.md").exists():
        handbooks = [ctx / "handbook.md"]
    elif len(handbooks) > 1:
        raise PackError(f"{ctx}: several .md files ({', '.join(p.name for p in handbooks)}); name the policy "
                        "handbook context/handbook.md")
    if not handbooks:
        raise PackError(f"{ctx}: missing; the pack needs its policy handbook as context/handbook.md")
    docs_dir = ctx / "docs"
    docs = {p.name: p.read_text(encoding="utf-8") for p in sorted(docs_dir.glob("*.md"))} if docs_dir.is_dir() else {}
    routing: Routing = models["routing.yaml"]
    for area in routing.areas:
        if area.doc and area.doc not in docs:
            raise PackError(f"{root / 'routing.yaml'}: area {area.key}: doc {area.doc!r} not in context/docs/")
    actions: ActionsPolicy = models["actions.yaml"]
    severity: SeverityPolicy = models["severity.yaml"]
    for level in severity.levels:
        if level not in actions.by_severity:
            raise PackError(f"{root / 'actions.yaml'}: by_severity has no actions for {level}")
    _check_sections(root, models, handbooks[0].read_text(encoding="utf-8"))
    return Pack(
        root=root, content_hash=content_hash(root), skill=models["skill.yaml"], severity=severity,
        triggers=models["triggers.yaml"], sla=models["sla.yaml"], routing=routing, actions=actions,
        required_info=models["required_info.yaml"], vocabulary=models["vocabulary.yaml"],
        language=models["language.yaml"], templates=templates, handbook=handbooks[0].read_text(encoding="utf-8"),
        handbook_name=handbooks[0].name, docs=docs, accounts=_load_accounts(ctx / "accounts.csv"),
        connectors=_validate(ConnectorConfig, root / "connectors.yaml") if (root / "connectors.yaml").exists()
        else ConnectorConfig(),
    )
