"""Customer-safe language: the one home of the rules a customer update must obey, and their checks.

A customer update is text we send outside the company, so it must be provably free of
anything internal (handbook §8.2) and of claims the ticket does not support (§8.4). The
rules are data in the policy pack (`language.yaml`): forbidden regexes, a deny-list of
internal terms and the approved phrases. What is internal about *this* case (names seen
only in internal notes, the text of those notes, whether a reproduction or a fix is on
record) comes from the case through `context_for_case`. `check_update` returns every
problem with the exact words at fault, so a person (or the composer) can fix the draft.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from .case import Case

STAFF_ROLES = ("agent", "engineer", "csm")
COPY_RUN_WORDS = 8
"""A run of this many words copied from an internal text is "content of internal notes" (§8.2)."""
MIN_SURNAME_LEN = 4
"""A blocked person's surname alone is checked when at least this long; shorter ones collide with words."""


def _compile(pattern: str, case_sensitive: bool = False) -> re.Pattern[str]:
    return re.compile(pattern, 0 if case_sensitive else re.IGNORECASE)


def _regex_error(pattern: str) -> str | None:
    try:
        re.compile(pattern)
    except re.error as e:
        return f"invalid regular expression {pattern!r}: {e}"
    return None


# ---------------------------------------------------------------- the pack model (language.yaml)

class LanguageRule(BaseModel):
    """One forbidden pattern; a match anywhere in an update is a finding."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    section: str
    message: str
    pattern: str
    case_sensitive: bool = False
    waived_when: Literal["reproduced", "fix_confirmed"] | None = None
    """The case fact that makes a match acceptable (e.g. a fix date an engineer confirmed)."""

    @model_validator(mode="after")
    def _pattern_compiles(self) -> LanguageRule:
        err = _regex_error(self.pattern)
        if err:
            raise ValueError(f"rule {self.id}: {err}")
        return self

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return _compile(self.pattern, self.case_sensitive)


class LanguageRules(BaseModel):
    """A company's customer-language policy (handbook §8), as data."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    section: str = "§8"
    forbidden: list[LanguageRule]
    internal_terms: list[str] = []
    internal_terms_section: str = "§8.2"
    approved_phrases: list[str] = []
    approved_section: str = "§8.3"
    reproduced_claim_pattern: str | None = None
    fixed_claim_pattern: str | None = None
    claims_section: str = "§8.4"
    negation_pattern: str = r"\b(?:not|never|no|cannot|unable|yet to)\b|n't\b"
    """A negation shortly before a claim ("we have not reproduced") means it is no claim."""

    @model_validator(mode="after")
    def _valid(self) -> LanguageRules:
        seen: set[str] = set()
        for rule in self.forbidden:
            if rule.id in seen:
                raise ValueError(f"rule {rule.id}: duplicate rule id")
            seen.add(rule.id)
        for name in ("reproduced_claim_pattern", "fixed_claim_pattern", "negation_pattern"):
            pattern = getattr(self, name)
            err = _regex_error(pattern) if pattern is not None else None
            if err:
                raise ValueError(f"{name}: {err}")
        if any(not t.strip() for t in self.internal_terms):
            raise ValueError("internal_terms: an empty term would match everything")
        return self

    def rule(self, rule_id: str) -> LanguageRule | None:
        return next((r for r in self.forbidden if r.id == rule_id), None)


# ---------------------------------------------------------------- what the case says

@dataclass(frozen=True)
class UpdateContext:
    """What is internal about one case, for checking an update drafted for it."""

    allowed_names: frozenset[str]    # the account's CSM and the replying agent(s) — may appear
    blocked_names: frozenset[str]    # other employees, other customers, names seen only internally
    internal_texts: tuple[str, ...]  # bodies of internal notes and attachments (never to be copied)
    public_texts: tuple[str, ...]    # text the customer already saw (copying from it is fine)
    reproduced: bool                 # an engineer/support reproduction is recorded
    fix_confirmed: bool              # an engineer confirmed a fix date / deployed fix in the ticket
    blocked_people: frozenset[str] = frozenset()
    """Blocked names known to be people (employees): their surname alone is checked too. Kept apart
    because a name seen only internally may be a company or a feature, whose last word is often a word."""


_CAP_WORD = r"[A-Z][a-z]+(?:['’-][A-Za-z]+)?"
_PROPER_RUN = re.compile(rf"(?<![\w.@/-]){_CAP_WORD}(?:[ \t]+{_CAP_WORD})+(?![\w@-])")
_ORG_NAME = re.compile(rf"(?<![\w.@/-]){_CAP_WORD}[ \t]+(?:Inc|Ltd|LLC|LLP|Corp|Co|GmbH|AG|SA|SAS|BV|NV|"
                       r"plc|KK|Pharma|Labs|Bank|Group|Holdings|Industries|Systems|Technologies)\b\.?")
_NOT_NAME_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december hi hello dear thanks thank regards best".split())

_SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))+[.!?]?")   # "page_size=1000?x" stays one sentence
_STAFF_NEGATION = re.compile(r"\b(?:not|never|no|cannot|unable|failed to|yet to|until|unless|once|if|when|"
                             r"whether)\b|n't\b", re.IGNORECASE)
_REPRODUCED = re.compile(r"\breproduc(?:ed|ible)\b|\bable to reproduce\b|\breproduc(?:e|ing) (?:it|this|the)\b"
                         r"|^repro\b|\brepro (?:on|by)\b", re.IGNORECASE | re.MULTILINE)
"""A staff reproduction, as the facts read it (the pack's `reproduced` concept), so the two never disagree."""
_WHEN = (r"(?:today|tonight|tomorrow|this (?:week|weekend|month)|next (?:week|month|release)|"
         r"(?:mon|tues|wednes|thurs|fri|satur|sun)day|end of (?:the )?(?:day|week|month)|\d{4}-\d{2}-\d{2}|"
         r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]* \d{1,2}\b|"
         r"\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|\d{1,2}:\d{2}|"
         r"(?:in|within) \d+ (?:hours?|days?))")
_FIX_DEPLOYED = (r"\b(?:fix|patch|hotfix|bugfix)(?:es)? (?:is|was|has been|got|went) (?:now )?"
                 r"(?:deployed|released|shipped|rolled out|live)\b"
                 r"|\b(?:deployed|released|shipped|rolled out) (?:the |a |our )?(?:fix|patch|hotfix|bugfix)\b"
                 r"|\bfixed in (?:the )?(?:app |release |version |build )*v?\d")
_FIX_FACT = re.compile(
    _FIX_DEPLOYED + r"|\b(?:fix|patch|hotfix|bugfix)(?:es)?\b[^.!?\n]{0,40}?\b(?:ships?|deploys?|goes out|"
    r"will (?:ship|go out|be (?:deployed|released|shipped|live|out))|(?:is )?(?:scheduled|planned) for|eta)\b"
    rf"[^.!?\n]{{0,30}}?\b{_WHEN}", re.IGNORECASE)
"""An engineer's note that a fix is deployed, or ships at a stated time."""
_AGENT_FIX_FACT = re.compile(_FIX_DEPLOYED, re.IGNORECASE)
"""What a support agent may already have told the customer: a fix is out (e.g. a documented app version)."""
_NOT_NAME_LAST_WORDS = frozenset(
    "team platform operations ops support triage engineering security identity messaging reporting app"
    .split())
"""Capitalised runs ending in these are team names ("Data Platform", "Billing Operations"), not people."""


def _affirmed(pattern: re.Pattern[str], text: str) -> bool:
    """True when a sentence states the pattern as a fact: not negated, not asked."""
    for s in _SENTENCE.finditer(text):
        sentence = s.group(0)
        m = pattern.search(sentence)
        if m and not sentence.rstrip().endswith("?") and not _STAFF_NEGATION.search(sentence[:m.start()]):
            return True
    return False


@lru_cache(maxsize=1024)
def _proper_phrases(text: str) -> frozenset[str]:
    """Capitalised runs ("Zbigniew Kowalczyk", "Contoso Pharma") and their 2+-word sub-runs."""
    found: set[str] = set()
    for m in _PROPER_RUN.finditer(text):
        words = m.group(0).split()
        for i in range(len(words)):
            for j in range(i + 2, len(words) + 1):
                sub = words[i:j]
                if not all(w.lower() in _NOT_NAME_WORDS for w in sub):
                    found.add(" ".join(sub))
    found.update(" ".join(m.group(0).rstrip(".").split()) for m in _ORG_NAME.finditer(text))
    return frozenset(p for p in found if p.split()[-1].lower() not in _NOT_NAME_LAST_WORDS)


def _mentions(text: str, term: str) -> bool:
    return _term_regex(term).search(text) is not None


@lru_cache(maxsize=4096)
def _term_regex(term: str, case_sensitive: bool = False) -> re.Pattern[str]:
    """A whole-word, whitespace-tolerant regex for a term or name."""
    body = r"\s+".join(re.escape(w) for w in term.split())
    return _compile(rf"(?<!\w){body}(?!\w)", case_sensitive)


def context_for_case(case: Case, *, other_customers: Iterable[str] = (), published: Iterable[str] = (),
                     known_names: Iterable[str] = ()) -> UpdateContext:
    """Derive what may and may not appear in an update for this case.

    `other_customers` are the names of the pack's other accounts. `published` is text the
    customer can read anyway (product docs): names and sentences from it are not internal.
    `known_names` are names that are no secret (teams, products, features of the pack), so a
    capitalised phrase seen only in internal notes is not blocked when it is one of them.
    The ticket's assignee counts as a replying agent: they are the one who sends the update.
    """
    events = [e for e in case.ticket.events if e.body.strip()]
    employees = {e.author.name for e in case.ticket.events if e.author.role in STAFF_ROLES}
    allowed = {e.author.name for e in case.ticket.events
               if e.author.role == "agent" and e.visibility == "public"}
    if case.account.owner:
        allowed.add(case.account.owner.name)
    if case.ticket.assignee:
        allowed.add(case.ticket.assignee.name)
    customers = {case.ticket.requester.name, case.account.name}
    customers |= {e.author.name for e in case.ticket.events if e.author.role == "customer"}

    internal = [e.body for e in events if e.visibility == "internal"]
    internal += [a.text for a in case.attachments]
    if case.ticket.engineering_owner:
        internal.append(case.ticket.engineering_owner)
    public = [case.ticket.subject] + [e.body for e in events if e.visibility == "public"]
    for r in case.related_tickets:
        (public if r.account_id == case.account.id else internal).append(r.subject)
    if case.incident:
        (public if case.incident.public else internal).append(case.incident.title)
    seen_by_customer = public + [t for t in published if t.strip()]

    known_ok = allowed | customers | {n for n in known_names if n.strip()}
    blocked = (employees - allowed) | {n for n in other_customers if n.strip() and n != case.account.name}
    for phrase in set().union(*(_proper_phrases(t) for t in internal)):
        if any(_mentions(t, phrase) for t in seen_by_customer):
            continue
        if any(_mentions(ok, phrase) for ok in known_ok):
            continue
        blocked.add(phrase)

    staff = [e for e in events if e.author.role in ("agent", "engineer")]
    reproduced = any(_affirmed(_REPRODUCED, e.body) for e in events if e.author.role in ("agent", "engineer", "csm"))
    reproduced = reproduced or any(_affirmed(_REPRODUCED, a.text) for a in case.attachments
                                   if a.kind == "repro_notes")
    fix_confirmed = any(_affirmed(_FIX_FACT, e.body) for e in staff if e.author.role == "engineer")
    fix_confirmed = fix_confirmed or any(_affirmed(_AGENT_FIX_FACT, e.body) for e in staff
                                         if e.author.role == "agent" and e.visibility == "public")
    return UpdateContext(
        allowed_names=frozenset(allowed), blocked_names=frozenset(blocked - allowed),
        internal_texts=tuple(internal), public_texts=tuple(seen_by_customer),
        reproduced=reproduced, fix_confirmed=fix_confirmed, blocked_people=frozenset(employees - allowed),
    )


# ---------------------------------------------------------------- the checks

@dataclass(frozen=True)
class Finding:
    """One problem in a draft: which rule, where, and the exact words at fault."""

    rule: str
    section: str
    message: str
    start: int
    end: int
    words: str


def check_for_case(text: str, rules: LanguageRules, case: Case | None = None,
                   accounts: Iterable[Any] = ()) -> list[Finding]:
    """The customer-safe check of a draft for a case: with the case, its internal names and notes and
    the pack's other customers (`accounts`: anything with `id` and `name`) are off limits too."""
    ctx = None
    if case is not None:
        ctx = context_for_case(case, other_customers=[a.name for a in accounts if a.id != case.account.id])
    return check_update(text, rules, ctx)


# Overlapping findings report one problem; the more specific kind wins (a name over a pattern,
# a pattern over a claim, anything over "copied from an internal note").
_PRIORITY = {"blocked_name": 0, "internal_term": 1, "reproduced_claim": 3, "fixed_claim": 3,
             "internal_content": 4}
_PATTERN_PRIORITY = 2


def _finding(rule: str, section: str, message: str, text: str, start: int, end: int) -> Finding:
    return Finding(rule=rule, section=section, message=message, start=start, end=end, words=text[start:end])


def _pattern_findings(text: str, rules: LanguageRules, ctx: UpdateContext | None) -> list[Finding]:
    out = []
    for rule in rules.forbidden:
        if ctx is not None and rule.waived_when and getattr(ctx, rule.waived_when):
            continue
        for m in rule.regex.finditer(text):
            if m.end() > m.start():
                out.append(_finding(rule.id, rule.section, rule.message, text, m.start(), m.end()))
    for term in rules.internal_terms:
        for m in _term_regex(term).finditer(text):
            out.append(_finding("internal_term", rules.internal_terms_section,
                                f"{term!r} is an internal term", text, m.start(), m.end()))
    return out


def _surnames(ctx: UpdateContext) -> set[str]:
    """Surnames of blocked people, unless they also belong to someone who may be named."""
    allowed_words = {w.lower() for n in ctx.allowed_names for w in n.split()}
    out = set()
    for name in ctx.blocked_people:
        words = name.split()
        if len(words) >= 2 and len(words[-1]) >= MIN_SURNAME_LEN and words[-1].lower() not in allowed_words:
            out.add(words[-1])
    return out


def _name_findings(text: str, ctx: UpdateContext) -> list[Finding]:
    msg = ("names {0!r}: an employee other than the CSM and the replying agent, another customer, "
           "or a name seen only in internal notes")
    out = []
    for name in ctx.blocked_names:
        for m in _term_regex(name).finditer(text):
            out.append(_finding("blocked_name", "§8.2", msg.format(name), text, m.start(), m.end()))
    # A surname alone is matched as written (capitalised or shouted): in lower case it is often a word.
    for surname in _surnames(ctx):
        for form in {surname, surname.upper()}:
            for m in _term_regex(form, True).finditer(text):
                out.append(_finding("blocked_name", "§8.2", msg.format(surname), text, m.start(), m.end()))
    return out


def _claim_findings(text: str, rules: LanguageRules, ctx: UpdateContext) -> list[Finding]:
    negation = _compile(rules.negation_pattern)
    checks = [
        (rules.reproduced_claim_pattern, ctx.reproduced, "reproduced_claim",
         "says the issue was reproduced, but no reproduction is recorded in the ticket"),
        (rules.fixed_claim_pattern, ctx.fix_confirmed, "fixed_claim",
         "says the issue is fixed, but no engineer confirmed a deployed fix in the ticket"),
    ]
    out = []
    for pattern, allowed, rule, message in checks:
        if pattern is None or allowed:
            continue
        for m in _compile(pattern).finditer(text):
            clause_start = max(text.rfind(c, 0, m.start()) for c in ".!?;\n,") + 1
            if negation.search(text[clause_start:m.start()]):
                continue
            out.append(_finding(rule, rules.claims_section, message, text, m.start(), m.end()))
    return out


_WORD = re.compile(r"\w+(?:['’]\w+)*")


def _words(text: str) -> list[tuple[str, int, int]]:
    """Words normalised for comparison (lower case, no apostrophes), with their offsets."""
    return [(m.group(0).lower().replace("'", "").replace("’", ""), m.start(), m.end())
            for m in _WORD.finditer(text)]


_NON_WORD = re.compile(r"\W+")


@lru_cache(maxsize=1024)
def _normalised(text: str) -> str:
    """Words of a text, lower case, single-spaced and padded: for substring search of word runs."""
    low = text.lower().replace("'", "").replace("’", "")
    return " " + _NON_WORD.sub(" ", low).strip() + " "


def _copy_findings(text: str, rules: LanguageRules, ctx: UpdateContext) -> list[Finding]:
    """Runs of COPY_RUN_WORDS+ words found in an internal text and nowhere the customer could see.

    The draft is short and the internal texts may be megabytes of log: each run of the draft
    is looked up in the normalised texts (a substring search) instead of enumerating every
    run of every internal text.
    """
    n = COPY_RUN_WORDS
    words = _words(text)
    if len(words) < n:
        return []
    internal = [_normalised(t) for t in ctx.internal_texts]
    seen = [_normalised(t) for t in (*ctx.public_texts, *rules.approved_phrases)]
    flagged = [False] * len(words)
    for i in range(len(words) - n + 1):
        gram = " " + " ".join(w[0] for w in words[i:i + n]) + " "
        if any(gram in t for t in internal) and not any(gram in t for t in seen):
            flagged[i:i + n] = [True] * n
    out = []
    i = 0
    while i < len(words):
        if not flagged[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(words) and flagged[j + 1]:
            j += 1
        out.append(_finding("internal_content", "§8.2", "copies the text of an internal note or attachment",
                            text, words[i][1], words[j][2]))
        i = j + 1
    return out


def _dedupe(findings: list[Finding]) -> list[Finding]:
    """One finding per overlapping span: the most specific kind first; among names the fullest
    ("Dmitri Volkov" over "Volkov"), among patterns the narrowest (the IP inside a log line)."""
    def rank(f: Finding) -> tuple[int, int, int]:
        width = f.end - f.start
        kind = _PRIORITY.get(f.rule, _PATTERN_PRIORITY)
        return kind, -width if f.rule == "blocked_name" else width, f.start
    kept: list[Finding] = []
    for f in sorted(findings, key=rank):
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    return sorted(kept, key=lambda f: (f.start, f.end))


def check_update(text: str, rules: LanguageRules, ctx: UpdateContext | None = None) -> list[Finding]:
    """Every §8 problem in a customer update, sorted by position; empty means safe to send.

    Without a case context only the context-free checks run (forbidden patterns, internal
    terms); with one, also blocked names, copied internal content and §8.4 claims, and rules
    with `waived_when` are skipped when the case records that fact.
    """
    findings = _pattern_findings(text, rules, ctx)
    if ctx is not None:
        findings += _name_findings(text, ctx)
        findings += _claim_findings(text, rules, ctx)
        findings += _copy_findings(text, rules, ctx)
    return _dedupe(findings)
