"""Facts: typed statements extracted from evidence, each resting on verbatim quotes.

A `Fact` cannot be built without at least one quote from a named source; a sentence in a
packet is rendered from facts, so it inherits their sources. Extractors are deterministic:
they read the pack's vocabulary (regexes for how a concept sounds in tickets), so another
company's pack changes the words, not the code.

Facts about the customer's tone (anger, capitals, threats, urgency) are collected apart,
in `ToneFacts`: the severity rules never see them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from .documents import DocIndex, Passage
from .evidence import STAFF_ROLES, Evidence, Sentence, Source
from .logs import LogSignature, error_signatures, signature_tokens
from .pack import Concept, Pack
from .patterns import Matcher, alternation, compile_pattern

Visibility = Literal["public", "internal"]


class Quote(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    ref: str
    quote: str


class Fact(BaseModel):
    """A statement and the verbatim evidence it rests on; no evidence, no fact."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    key: str
    statement: str
    value: bool | int | float | str | None = True
    sources: tuple[Quote, ...] = Field(min_length=1)
    visibility: Visibility = "internal"

    @staticmethod
    def of(key: str, statement: str, sentences: list[Sentence] | tuple[Sentence, ...],
           value: bool | int | float | str | None = True, limit: int = 3) -> Fact:
        picked = list(dict.fromkeys(sentences))[:limit]
        quotes = tuple(Quote(ref=s.ref, quote=_clip(s.text)) for s in picked)
        public = all(s.source.visibility == "public" for s in picked)
        return Fact(key=key, statement=statement, value=value, sources=quotes,
                    visibility="public" if public else "internal")


def _clip(text: str, limit: int = 400) -> str:
    """A quote short enough to read; cut at a word boundary, still a verbatim substring."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut[: cut.rfind(" ")] if " " in cut else cut


# ---------------------------------------------------------------- matching

def _negated(text: str, start: int) -> bool:
    before = text[max(0, start - 12):start].lower()
    return bool(re.search(r"\b(no|not|without|never|nor)\s+(\w+\s+)?$", before))


def matches(concept: Concept, sentences: list[Sentence], *, allow_negated: bool = True) -> list[Sentence]:
    """Sentences whose author's role the concept accepts and whose text matches it."""
    out = []
    rx = concept.regex
    for s in sentences:
        if concept.roles is not None and _role(s) not in concept.roles:
            continue
        if s.start in s.source.hits(rx, allow_negated, _negated):
            out.append(s)
    return out


def sentence_hits(rx: Matcher, sentences: list[Sentence] | tuple[Sentence, ...]
                  ) -> list[tuple[Sentence, int, int]]:
    """(sentence, start, end) for each sentence holding a match of rx; one scan per source."""
    out = []
    for s in sentences:
        hit = s.source.hits(rx).get(s.start)
        if hit is not None:
            out.append((s, hit[0], hit[1]))
    return out


def _role(s: Sentence) -> str:
    if s.source.kind == "attachment":
        return "attachment"
    if s.source.kind == "doc":
        return "docs"
    return s.source.role


_HEDGE = re.compile(r"\b(possible|possibly|maybe|might|may be|perhaps|suspect\w*|looks like|not sure|probably|"
                    r"seems?|could be|not (yet )?confirmed|unconfirmed)\b|\?", re.I)


def hedged(s: Sentence) -> bool:
    return bool(_HEDGE.search(s.text))


# ---------------------------------------------------------------- the facts of a case

@dataclass(frozen=True)
class Signal:
    """A time-ordered statement for or against something (a workaround, say)."""

    polarity: bool
    sentence: Sentence
    order: float


@dataclass
class ToneFacts:
    """How the customer sounds. Recorded for people and for §6.2 actions; never for severity."""

    facts: list[Fact] = field(default_factory=list)
    threat: Fact | None = None           # churn, legal or executive escalation


@dataclass
class Facts:
    """Everything the assessment may use, each item grounded in quotes."""

    product_area: str
    area: Fact
    area_scores: dict[str, float]
    symptoms: list[Fact]
    error_messages: list[Fact]
    signatures: list[LogSignature]
    broken: Fact | None
    unavailable: Fact | None
    intermittent: Fact | None
    partial_scope: Fact | None
    all_users: Fact | None
    question: Fact | None
    expected: Fact | None
    data_corruption: Fact | None
    security: Fact | None
    workaround: Fact | None                # value True/False, or None when nothing is said
    workaround_customer_text: Fact | None  # a customer-safe description (public source)
    known_issues: list[Passage]
    accounts_affected: int
    accounts_fact: Fact | None
    billing_amount: float | None
    billing_fact: Fact | None
    reproduced: Fact | None
    repro_steps: list[Fact]
    root_causes: list[Fact]
    handed_to_engineering: Fact | None
    owner_named: Fact | None
    open_question: Fact | None           # the last internal question to engineering, if unanswered
    open_question_at: datetime | None
    recorded_severity: str | None
    recorded_severity_fact: Fact | None
    tier: str
    tier_fact: Fact
    last_public_reply: Source | None
    provided: dict[str, Fact]
    error_shown: list[Sentence]
    impact: list[Fact]
    docs: list[Fact]                     # product-doc passages most relevant to the report (FTS5)
    tone: ToneFacts


def _quote_in(source: Source, needle: str) -> Sentence | None:
    """A sentence of `source` containing `needle` (case-insensitive)."""
    low = needle.lower()
    for s in source.sentences:
        if low in s.text.lower():
            return s
    return None


def _field_sentence(ev: Evidence, value: str) -> Sentence | None:
    src = ev.by_ref.get("ticket")
    if src is None:
        return None
    i = src.text.find(value)
    if i < 0:
        return None
    return Sentence(src, i, i + len(value))


def _span(source: Source, needle: str) -> Sentence | None:
    i = source.text.find(needle)
    return Sentence(source, i, i + len(needle)) if i >= 0 else None


def extract(ev: Evidence, pack: Pack, index: DocIndex, *, lean: bool = False) -> Facts:
    """Run every extractor over the evidence; pure, deterministic.

    lean=True skips what only the packet's text needs (required information, impact lines, doc
    citations, tone): enough for severity, triggers, owner and SLA — replay and re-checks.
    """
    voc = pack.vocabulary
    case = ev.case
    C = voc.concept
    people = ev.sentences(roles=("customer", "agent", "engineer", "csm"), kinds=("ticket_event", "subject"))
    customer = [s for s in people if s.role == "customer"]
    staff = [s for s in people if s.role in STAFF_ROLES]
    internal_staff = [s for s in staff if s.source.visibility == "internal"]
    attach = ev.sentences(kinds=("attachment",))

    # -- known issues named or matched in the case
    known: dict[str, Passage] = {}
    ki_negated: set[str] = set()
    for s in people + attach:
        for ki, passage in index.known_issues.items():
            if ki in s.text:
                rest = s.text[s.text.find(ki):]
                if re.search(r"\b(doesn't|does not|don't|not) (apply|match)|\bnot (the|this)\b", rest[:120], re.I) \
                        and not rest.startswith(ki + ")"):
                    ki_negated.add(ki)
                else:
                    known.setdefault(ki, passage)
    error_messages = _error_messages(customer + staff + attach)
    for fact in error_messages:
        for q in fact.sources:
            for passage in index.phrase_match(_core_error(q.quote)):
                if passage.known_issue and passage.known_issue not in ki_negated:
                    known.setdefault(passage.known_issue, passage)
    # a known issue whose title quotes an error message that occurs in the case matches it too
    case_text = " ".join(s.text for s in people + attach).lower()
    for ki, passage in index.known_issues.items():
        for phrase in re.findall(r'"([^"\n]{8,})"', passage.title or ""):
            if phrase.lower() in case_text and ki not in ki_negated:
                known.setdefault(ki, passage)
    for ki in ki_negated:
        known.pop(ki, None)
    known_issues = [known[k] for k in sorted(known)]

    # -- product area
    area, area_fact, scores = _product_area(ev, pack, known_issues)

    # -- failure and scope
    failure = [s for s in matches(C("failure"), customer + staff, allow_negated=False)
               if s.role == "customer" or "?" not in s.text]
    no_impact = matches(C("no_impact"), customer)
    staff_failure = [s for s in failure if s.role in STAFF_ROLES and "?" not in s.text]
    question_staff = matches(C("question"), internal_staff) + matches(C("feature_request"), internal_staff)
    question_customer = matches(C("question"), customer) + matches(C("feature_request"), customer)
    expected = [s for s in matches(C("expected_behaviour"), staff) if not re.search(r"\bnot\b.{0,20}expected", s.text)]
    question_fact = expected_fact = None
    if expected:
        expected_fact = Fact.of("expected_behaviour", "Staff confirm the reported behaviour is documented, "
                                "expected behaviour, not a defect.", expected)
    else:
        expected_fact = _documented_expected(ev, pack, index, customer, staff)
    if question_staff:
        question_fact = Fact.of("question", "Support classified the ticket as a question or feature request, "
                                "not a defect.", question_staff)
    elif expected_fact is not None:
        question_fact = expected_fact
    elif question_customer and not failure:
        question_fact = Fact.of("question", "The customer asks a question; nothing is reported broken.",
                                question_customer)
    broken_fact = None
    staff_repro = [s for s in matches(C("reproduced"), staff, allow_negated=False) if "?" not in s.text]
    if failure and question_fact is None and not (no_impact and not staff_failure):
        broken_fact = Fact.of("broken", "A failure is reported: " + _brief(failure[0].text), failure)
    elif staff_repro and question_fact is None:
        broken_fact = Fact.of("broken", "Staff reproduced the problem: " + _brief(staff_repro[0].text), staff_repro)

    # "every run" only says something fails when the same or the previous sentence reports a failure
    failing = set(failure)
    all_attempts = [s for s in matches(C("all_attempts"), customer + staff, allow_negated=False)
                    if s in failing or _previous(s) in failing]
    intermittent = matches(C("intermittent"), customer + staff + attach) + matches(C("slow"), customer + staff)
    partial = matches(C("partial_scope"), customer + staff)
    all_users = matches(C("all_users"), customer + staff, allow_negated=False)
    unavailable_fact = intermittent_fact = partial_fact = all_users_fact = None
    if broken_fact is not None:
        if intermittent:
            intermittent_fact = Fact.of("intermittent", "Failures are intermittent or partial (degraded, not "
                                        "unavailable): " + _brief(intermittent[0].text), intermittent)
        elif all_attempts:
            unavailable_fact = Fact.of("unavailable", "Every attempt fails: " + _brief(all_attempts[0].text),
                                       all_attempts)
        if partial:
            partial_fact = Fact.of("partial_scope", "Only part of the account is affected: "
                                   + _brief(partial[0].text), partial)
        elif all_users:
            all_users_fact = Fact.of("all_users", "All users of the account are affected: "
                                     + _brief(all_users[0].text), all_users)
        elif unavailable_fact is not None:
            all_users_fact = Fact.of("all_users", "Every attempt fails and no one is reported unaffected.",
                                     all_attempts)

    # -- data corruption and security (staff-confirmed only)
    corruption = _confirmed(C("data_corruption"), C("no_data_corruption"), staff)
    corruption_fact = Fact.of("data_corruption", "Staff confirmed data corruption or loss: "
                              + _brief(corruption[-1].text), corruption) if corruption else None
    security = [s for s in matches(C("security_exposure"), staff, allow_negated=False)
                if not hedged(s) or re.search(r"confirm", s.text, re.I)]
    security_fact = Fact.of("security", "Staff confirmed a security or privacy exposure: "
                            + _brief(security[0].text), security) if security else None

    # -- workaround
    workaround_fact, workaround_public = _workaround(ev, pack, known_issues, customer, staff)

    # -- billing
    billing_amount, billing_fact = _billing(pack, customer + staff, area)

    # -- accounts affected (same error signature on other accounts)
    signatures = error_signatures([(s.ref, s.text) for s in ev.sources
                                   if s.kind == "attachment" and s.attachment_kind == "log"])
    accounts_affected, accounts_fact = _accounts_affected(ev, pack, error_messages, signatures)

    # -- reproduction, root cause
    # a question ("can you verify, since you were able to reproduce it?") reports no reproduction
    reproduced = [s for s in matches(C("reproduced"), staff + attach, allow_negated=False)
                  if not s.text.rstrip().endswith("?")]
    repro_notes = [s for s in attach if s.source.attachment_kind == "repro_notes"]
    reproduced_fact = None
    if reproduced or repro_notes:
        reproduced_fact = Fact.of("reproduced", "Support or engineering reproduced the problem.",
                                  reproduced or repro_notes[:1])
    repro_steps = _repro_steps(ev, customer, staff, reproduced,
                               [x for x in failure if x.role == "customer"] if broken_fact is not None else [])
    root_causes = []
    for s in matches(C("root_cause_suspected"), [x for x in staff if x.role == "engineer"] + internal_staff):
        root_causes.append(Fact.of("root_cause", "Suspected (not confirmed): " + _brief(s.text, 220), [s],
                                   value="suspected"))
    for s in matches(C("root_cause_confirmed"), [x for x in staff if x.role == "engineer"]):
        if not hedged(s):
            root_causes.append(Fact.of("root_cause", "Confirmed by engineering: " + _brief(s.text, 220), [s],
                                       value="confirmed"))
    root_causes = list({f.sources[0].quote: f for f in root_causes}.values())[:3]

    # -- engineering handoff
    handed = [s for s in ev.sentences(roles=("engineer",), kinds=("ticket_event",))][:1]
    eng_key = re.compile(voc.engineering_key)
    handed += [s for s in internal_staff if eng_key.search(s.text)][:1]
    handed_fact = Fact.of("handed_to_engineering", "The ticket has been handed to engineering.", handed) \
        if handed else None
    owner_named_fact = None
    if case.ticket.engineering_owner:
        fs = _field_sentence(ev, case.ticket.engineering_owner)
        if fs is not None:
            owner_named_fact = Fact.of("owner_named", f"Engineering owner on the ticket: "
                                       f"{case.ticket.engineering_owner}.", [fs], value=case.ticket.engineering_owner)
    if owner_named_fact is None:
        named = [s for s in matches(C("owner_named"), internal_staff) if "?" not in s.text]
        if named:
            owner_named_fact = Fact.of("owner_named", "An internal note names who owns the next step: "
                                       + _brief(named[-1].text), named[-1:])
    open_q, open_q_at = _open_question(ev, pack)

    # -- recorded severity, tier, last public reply
    recorded, recorded_fact = _recorded_severity(ev, pack)
    tier = case.account.tier
    tier_s = _span(ev.by_ref["account"], f'"tier": "{tier}"') or _span(ev.by_ref["account"], tier)
    assert tier_s is not None
    tier_fact = Fact.of("tier", f"The account {case.account.name} is on the {tier} tier.", [tier_s], value=tier)
    replies = [s for s in ev.events() if s.visibility == "public" and s.role in STAFF_ROLES and s.text.strip()]
    last_reply = replies[-1] if replies else None

    provided = {} if lean else _provided_info(ev, pack)
    error_shown = [s for s in matches(C("error_shown"), customer, allow_negated=False)]
    impact = [] if lean else _impact(ev, pack, customer + staff)
    tone = ToneFacts() if lean else _tone(ev, pack, customer, staff)
    symptoms = [Fact.of("symptom", "Customer reports: " + _brief(s.text, 240), [s]) for s in
                _dedupe([x for x in failure if x.role == "customer"])[:3]]
    if not symptoms and customer:
        symptoms = [Fact.of("symptom", "Customer writes: " + _brief(customer[0].text, 240), customer[:1])]

    return Facts(
        product_area=area, area=area_fact, area_scores=scores, symptoms=symptoms, error_messages=error_messages,
        signatures=signatures, broken=broken_fact, unavailable=unavailable_fact, intermittent=intermittent_fact,
        partial_scope=partial_fact, all_users=all_users_fact, question=question_fact, expected=expected_fact,
        data_corruption=corruption_fact, security=security_fact, workaround=workaround_fact,
        workaround_customer_text=workaround_public, known_issues=known_issues, accounts_affected=accounts_affected,
        accounts_fact=accounts_fact, billing_amount=billing_amount, billing_fact=billing_fact,
        reproduced=reproduced_fact, repro_steps=repro_steps, root_causes=root_causes,
        handed_to_engineering=handed_fact, owner_named=owner_named_fact, open_question=open_q,
        open_question_at=open_q_at, recorded_severity=recorded, recorded_severity_fact=recorded_fact, tier=tier,
        tier_fact=tier_fact, last_public_reply=last_reply, provided=provided, error_shown=error_shown,
        impact=impact, docs=[] if lean else _relevant_docs(ev, index, customer), tone=tone,
    )


def _previous(s: Sentence) -> Sentence | None:
    i = s.source.sentence_index(s)
    return s.source.sentences[i - 1] if i > 0 else None


def _documented_expected(ev: Evidence, pack: Pack, index: DocIndex, customer: list[Sentence],
                         staff: list[Sentence]) -> Fact | None:
    """§2.8: behaviour the product docs describe as expected is not a defect, even before staff say so.

    The customer's words must find, as the best docs passage, a known issue the docs call expected,
    and name what its title is about beyond the product area's own words ("timestamps").
    """
    text = " ".join(s.text for s in customer[:8])
    hits = index.search(text, limit=1)
    if not hits:
        return None
    p = hits[0][0]
    if not (p.expected and p.known_issue and p.title):
        return None
    if any(re.search(r"\bnot (?:the )?expected\b|\bis a (?:bug|defect)\b|\bconfirmed (?:a )?(?:bug|defect)\b", s.text,
                     re.I) for s in staff):
        return None
    area_words = [compile_pattern(alternation(a.keywords)) for a in pack.routing.areas if a.keywords]
    distinctive = [w for w in re.findall(r"[A-Za-z]{5,}", _clean(p.title)) if not any(m.search(w) for m in area_words)]
    low = text.lower()
    if not any(re.search(rf"\b{re.escape(w.lower())}\b", low) for w in distinctive):
        return None
    src = ev.by_ref.get(p.ref)
    first = p.text.splitlines()[0].strip()
    s = _span(src, first) if src is not None else None
    if s is None:
        return None
    return Fact.of("expected_behaviour", f"The product docs describe this as expected behaviour ({p.known_issue}): "
                   f"{_clean(p.title)}", [s])


def _clean(text: str) -> str:
    return re.sub(r"\*\*|`", "", text).strip()


def _relevant_docs(ev: Evidence, index: DocIndex, customer: list[Sentence]) -> list[Fact]:
    """Product-doc passages that best match what the customer wrote (SQLite FTS5, bm25)."""
    text = " ".join(s.text for s in customer[:8])
    out: list[Fact] = []
    for passage, _ in index.search(text, limit=2):
        src = ev.by_ref.get(passage.ref)
        first = passage.text.splitlines()[0].strip()
        s = _span(src, first) if src is not None else None
        if s is not None:
            label = passage.known_issue or passage.heading
            out.append(Fact.of("doc", f"Relevant documentation: {passage.doc} — {label}", [s]))
    return out


def _dedupe(sentences: list[Sentence]) -> list[Sentence]:
    return list(dict.fromkeys(sentences))


def _brief(text: str, limit: int = 160) -> str:
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)] + " …"


# ---------------------------------------------------------------- product area

def _product_area(ev: Evidence, pack: Pack, known: list[Passage]) -> tuple[str, Fact, dict[str, float]]:
    """Score each area by the evidence that names it; unclear → 'unknown' (routed to triage)."""
    routing = pack.routing
    case = ev.case
    scores: dict[str, float] = {a.key: 0.0 for a in routing.areas}
    support: dict[str, list[Sentence]] = {a.key: [] for a in routing.areas}
    kw = {a.key: _compiled("|".join(f"(?:{k})" for k in a.keywords), re.I) if a.keywords else None
          for a in routing.areas}
    logc = {a.key: _compiled("|".join(f"(?:{k})" for k in a.log_components), 0) if a.log_components else None
            for a in routing.areas}
    team_re = {a.key: re.compile(rf"\b{re.escape(a.team)}\b") for a in routing.areas}
    neg = re.compile(pack.vocabulary.negation_window, re.I)

    field = case.ticket.product_area
    if field and field in scores:
        s = _field_sentence(ev, f'"product_area": "{field}"')
        scores[field] += 3
        if s:
            support[field].append(s)
    eng_owner = case.ticket.engineering_owner or ""
    for a in routing.areas:
        if eng_owner and team_re[a.key].search(eng_owner):
            scores[a.key] += 6  # the latest routing decision on the ticket
            s = _field_sentence(ev, eng_owner)
            if s:
                support[a.key].append(s)
        for tag in case.ticket.tags:
            if kw[a.key] and kw[a.key].fullmatch(tag):  # type: ignore[union-attr]
                scores[a.key] += 1
    for p in known:
        for a in routing.areas:
            if a.doc == p.doc:
                scores[a.key] += 3
    for src in ev.case_sources():
        if src.kind not in ("ticket_event", "attachment", "subject") or src.role == "system":
            continue
        weight = 1.0 if src.role == "customer" else 1.5
        for a in routing.areas:
            hit: Sentence | None = None
            lrx = logc[a.key]
            if src.kind == "attachment" and lrx is not None:
                for s, _, _ in sentence_hits(lrx, src.sentences)[:1]:
                    hit = s
            rx = kw[a.key] if src.attachment_kind != "log" else None  # logs speak through their components
            distinct: set[str] = set()
            if rx is not None:
                for start, end in src.spans(rx):
                    s = src.sentence_at(start)
                    if s is None:
                        continue
                    before = src.text[max(s.start, start - 25):start]
                    if neg.search(before) and src.role in STAFF_ROLES:
                        scores[a.key] -= 2.5
                        continue
                    distinct.add(src.text[start:end].lower())
                    hit = hit or s
            if hit is not None:
                bonus = min(3.0, 1.0 + 0.5 * max(0, len(distinct) - 1))
                scores[a.key] += weight * bonus if src.kind in ("ticket_event", "subject") else 2.0
                support[a.key].append(hit)
            if src.role == "engineer" and src.visibility == "internal" and \
                    re.search(rf"\b{re.escape(a.team)}\b(?: \w+)? (?:owns|here)", src.text):
                scores[a.key] += 4
                s2 = _quote_in(src, a.team)
                if s2:
                    support[a.key].append(s2)
    # the last hand-off between teams ("Handing to Data Platform", "Sent to Web App") counts most
    handoff: tuple[str, Sentence] | None = None
    for src in ev.events():
        if src.visibility != "internal" or src.role not in STAFF_ROLES:
            continue
        for a in routing.areas:
            m = re.search(rf"\b(?:hand(?:ing|ed)? (?:it |this )?(?:over )?to|sent to|routed to|escalated to|"
                          rf"passed (?:it |this )?to)\s+{re.escape(a.team)}\b", src.text, re.I)
            if m:
                s = src.sentence_at(m.start())
                if s is not None:
                    handoff = (a.key, s)
    if handoff is not None:
        scores[handoff[0]] += 3
        support[handoff[0]].append(handoff[1])
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))
    best, best_score = ranked[0]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    if field in scores and best_score >= routing.min_area_score and ranked[0][0] != field \
            and len(ranked) > 1 and ranked[1][0] == field and second / best_score > routing.ambiguity_ratio:
        best, best_score = field, second  # evidence is split between the field and one other area: trust the field
    elif best_score < routing.min_area_score or (best_score > 0 and second / best_score > routing.ambiguity_ratio):
        quotes = [s for k, _ in ranked[:3] for s in support[k][:1]] or ev.sentences(roles=("customer",))[:1]
        fact = Fact.of("product_area", "The product area cannot be determined from the evidence "
                       f"(candidates: {', '.join(k for k, v in ranked[:3] if v > 0) or 'none'}).",
                       quotes or [Sentence(ev.by_ref["ticket"], 0, 3)], value="unknown")
        return "unknown", fact, scores
    area = routing.area(best)
    assert area is not None
    quotes = support[best][:3] or [Sentence(ev.by_ref["ticket"], 0, 3)]
    return best, Fact.of("product_area", f"Product area: {area.key} ({area.name}).", quotes, value=best), scores


# ---------------------------------------------------------------- error messages

_QUOTED_ERR = re.compile(r"[\"“']([^\"”'\n]{6,160})[\"”']")
_ERR_WORDS = re.compile(r"error|fail|invalid|rejected|denied|timeout|mismatch|unavailable|stopping|bad request|"
                        r"disabled|not found|exception|\b[45]\d\d\b|E\d{3}|[A-Z]{2,}-\d{2,}", re.I)
_ERR_LINE = re.compile(r"^(?:[A-Z][\w ]{2,40}:\s.*(?:error|fail|\bE\d{3}\b).*|HTTP [45]\d\d.*"
                       r"|.*\([A-Z]-?[A-Z]*-?\d{3,}\).*"
                       r"|\{\"error\".*)$", re.I)


def _core_error(text: str) -> str:
    m = _QUOTED_ERR.search(text)
    return m.group(1) if m else text


def _error_messages(sentences: list[Sentence]) -> list[Fact]:
    """Exact error texts the customer (or a log) shows: quoted strings and error lines."""
    out: list[Fact] = []
    seen: set[str] = set()
    for s in sentences:
        cands: list[str] = []
        for m in _QUOTED_ERR.finditer(s.text):
            if _ERR_WORDS.search(m.group(1)):
                cands.append(m.group(1))
        if not cands and s.source.kind == "ticket_event" and s.role == "customer" and _ERR_LINE.match(s.text.strip()):
            cands.append(s.text.strip())
        for c in cands:
            key = c.lower()
            if key in seen:
                continue
            seen.add(key)
            start = s.source.text.find(c, s.start)
            sent = Sentence(s.source, start, start + len(c)) if start >= 0 else s
            out.append(Fact.of("error_message", f"Error shown: {c}", [sent], value=c))
    return out[:6]


# ---------------------------------------------------------------- confirmations

def _confirmed(positive: Concept, negative: Concept, staff: list[Sentence]) -> list[Sentence]:
    """Staff statements confirming a concept, unless a later staff statement denies it."""
    signals: list[tuple[int, bool, Sentence]] = []
    for s in staff:
        if negative.regex.search(s.text):
            signals.append((s.source.order, False, s))
        elif positive.regex.search(s.text) and (not hedged(s) or re.search(r"\bconfirm", s.text, re.I)):
            signals.append((s.source.order, True, s))
    if not signals:
        return []
    signals.sort(key=lambda t: t[0])
    if not signals[-1][1]:
        return []
    return [s for _, pol, s in signals if pol]


# ---------------------------------------------------------------- workaround

def _workaround(ev: Evidence, pack: Pack, known: list[Passage], customer: list[Sentence],
                staff: list[Sentence]) -> tuple[Fact | None, Fact | None]:
    """Does a way to complete the task exist that the customer has not reported failing (§2.8)?

    Statements are read in thread order; the last one decides. Documented workarounds of a
    known issue the case matches come first; offers, confirmations, failure reports and
    "no workaround" statements follow as written.
    """
    C = pack.vocabulary.concept
    signals: list[Signal] = []
    public_text: Fact | None = None
    docs = ev.by_ref
    for p in known:
        if p.workaround and not re.match(r"none\b", p.workaround, re.I) and not p.expected:
            src = docs.get(p.ref)
            s = _span(src, p.workaround_raw or p.workaround) if src else None
            if s is not None:
                signals.append(Signal(True, s, -1.0))
                public_text = public_text or Fact.of("workaround_text", p.workaround, [s])
        elif p.expected and p.workaround is None:
            src = docs.get(p.ref)
            s = _span(src, p.text) if src else None
            if src is not None and s is not None and re.search(r";\s*\w+", p.text):
                # an expected-behaviour note that says what to do instead ("convert in the destination tool")
                tail = re.split(r"expected behaviou?r[.;]?\s*", p.text, flags=re.I)[-1].strip()
                if tail:
                    s2 = _span(src, tail) or s
                    signals.append(Signal(True, s2, -1.0))
                    public_text = public_text or Fact.of("workaround_text", tail, [s2])
    offered = False
    negative_seen = False
    for s in sorted(customer + staff, key=lambda x: (x.source.order, x.start)):
        order = float(s.source.order) + s.start / 1e6
        if s.role in STAFF_ROLES:
            if matches(C("no_workaround"), [s]) or matches(C("workaround_fails"), [s]):
                signals.append(Signal(False, s, order))
                negative_seen = True
            elif matches(C("workaround_offer"), [s]):
                # After a reported failure only an explicit workaround counts again: a passing
                # "you can …" in a multi-topic reply is not a new way to do the task.
                if negative_seen and not _STRONG_OFFER.search(s.text):
                    continue
                offered = True
                signals.append(Signal(True, s, order))
                if s.source.visibility == "public":
                    public_text = Fact.of("workaround_text", s.text, [s])
            elif matches(C("workaround_works"), [s]) and not hedged(s) and not _ACK.search(s.text):
                signals.append(Signal(True, s, order))
        else:
            tried = offered or bool(_TRIED.search(s.text))
            if (matches(C("workaround_fails"), [s]) or matches(C("no_workaround"), [s])) and tried:
                signals.append(Signal(False, s, order))
                negative_seen = True
            elif matches(C("workaround_works"), [s]) and (offered or signals or _ALTERNATIVE.search(s.text)):
                signals.append(Signal(True, s, order))
                if public_text is None:
                    public_text = Fact.of("workaround_text", s.text, [s])
    if not signals:
        return None, None
    signals.sort(key=lambda x: x.order)
    last = signals[-1]
    deciding = [x.sentence for x in signals if x.polarity == last.polarity][-3:]
    if last.polarity:
        fact = Fact.of("workaround", "A workaround exists: " + _brief(last.sentence.text), deciding, value=True)
        return fact, public_text
    offered_before = [x.sentence for x in signals if x.polarity]
    statement = "No working workaround: " + _brief(last.sentence.text)
    if offered_before:
        statement += " (offered before: " + _brief(offered_before[-1].text, 120) + ")"
    fact = Fact.of("workaround", statement, deciding + offered_before[-1:], value=False, limit=4)
    return fact, None


_STRONG_OFFER = re.compile(r"workaround|in the meantime|until (?:it is|this is|then)|keep using|continue to use", re.I)
_ACK = re.compile(r"\b(?:glad|good to hear|great to hear|thanks for|thank you for)\b", re.I)
_TRIED = re.compile(r"\b(?:tried|try|trying|workaround|instead|the button|as you said|like you said)\b", re.I)
_ALTERNATIVE = re.compile(r"for the moment|in the meantime|for now|instead|by hand|manually", re.I)


_TOTAL = re.compile(r"(?:\btotals?(?: of| is)?|\bcomes? to|\bamount due(?: of| is)?|\bgrand total(?: of)?|"
                    r"\binvoice (?:is|amount(?: of)?))\s*$", re.I)
_CORRECT_AFTER = re.compile(r"^[^.;]{0,20}\b(?:is|are|was) (?:correct|right|fine)\b", re.I)


# ---------------------------------------------------------------- billing

def _billing(pack: Pack, sentences: list[Sentence], area: str) -> tuple[float | None, Fact | None]:
    routing = pack.routing
    if routing.billing_area is None or area != routing.billing_area:
        return None, None
    money = re.compile(pack.vocabulary.money, re.I)
    billing = matches(pack.vocabulary.concept("billing_error"), sentences)
    disputed = matches(pack.vocabulary.concept("billing_disputed"), billing)
    def amounts(group: list[Sentence]) -> tuple[float, Sentence] | None:
        best: tuple[float, Sentence] | None = None
        for s in group:
            for m in money.finditer(s.text):
                if _TOTAL.search(s.text[max(0, m.start() - 30):m.start()]) or _CORRECT_AFTER.search(s.text[m.end():]):
                    continue  # an invoice total, or an amount the customer says is right, is not the error
                try:
                    raw = m.groupdict().get("amount") or m.groupdict().get("amount_post") or ""
                    amount = float(raw.replace(",", ""))
                except ValueError:
                    continue
                if best is None or amount > best[0]:
                    best = (amount, s)
        return best

    best = amounts(disputed) or amounts(billing)  # the amount in dispute first
    if best is None:
        return None, None
    return best[0], Fact.of("billing_amount", f"The invoice or charge error is {best[0]:,.2f} USD.", [best[1]],
                            value=best[0])


# ---------------------------------------------------------------- related tickets

def _accounts_affected(ev: Evidence, pack: Pack, errors: list[Fact], sigs: list[LogSignature]
                       ) -> tuple[int, Fact | None]:
    """Distinct accounts (this one included) reporting the same error signature recently."""
    trig = pack.triggers.get("repeated_ticket")
    days = float((trig.params if trig else {}).get("signature_window_days", 7))
    case = ev.case
    if not any(r.error_signature for r in case.related_tickets):
        return 1, None
    text = " ".join(s.text for s in ev.sources if s.kind in ("ticket_event", "attachment"))
    case_tokens = signature_tokens(text)
    others: dict[str, Sentence] = {}
    for r in case.related_tickets:
        if not r.error_signature or r.account_id == case.account.id or r.id == case.ticket.id:
            continue
        if not (timedelta(0) <= case.as_of - r.created_at <= timedelta(days=days)):
            continue
        toks = signature_tokens(r.error_signature)
        if toks and len(toks & case_tokens) / len(toks) >= 0.75:
            src = ev.by_ref[f"related:{r.id}"]
            s = _span(src, r.error_signature)
            if s is not None:
                others.setdefault(r.account_id, s)
    if not others:
        return 1, None
    n = 1 + len(others)
    return n, Fact.of("accounts_affected", f"{len(others)} other account(s) reported the same error signature "
                      f"within {days:g} days ({n} accounts in all).", list(others.values()), value=n, limit=5)


# ---------------------------------------------------------------- reproduction

_STEP = re.compile(r"^\s*(?:\d+[.)]|step \d+:?)\s+\S", re.I | re.M)


def _repro_steps(ev: Evidence, customer: list[Sentence], staff: list[Sentence], reproduced: list[Sentence],
                 failure: list[Sentence]) -> list[Fact]:
    """Numbered steps (repro notes, customer 'Steps:'), else the staff reproduction statement."""
    steps: list[Fact] = []
    for src in ev.case_sources():
        if src.kind == "attachment" and src.attachment_kind == "repro_notes" or \
                (src.kind == "ticket_event" and src.role != "system"):
            for line_m in re.finditer(r"(?m)^[ \t]*(?:\d+[.)]|-\s*\d+[.)])[ \t]+(.+)$", src.text):
                s = Sentence(src, line_m.start(1), line_m.end(1))
                steps.append(Fact.of("repro_step", s.text.strip(), [s]))
            inline = re.findall(r"(?:^|\s)(\d)\)\s+([^0-9][^)]*?)(?=\s+\d\)\s|\.\s|$)", src.text)
            if len(inline) >= 2 and not steps:
                for _, step in inline:
                    found = _span(src, step.strip())
                    if found is not None:
                        steps.append(Fact.of("repro_step", step.strip(), [found]))
        if len(steps) >= 2:
            break
        steps = []
    if steps:
        return steps[:8]
    out = [Fact.of("repro_step", _brief(s.text, 300), [s]) for s in reproduced[:2]]
    if not out:
        cmds = [s for s in customer if re.search(r"^(?:curl|repro:|steps?:)", s.text, re.I)]
        out = [Fact.of("repro_step", _brief(s.text, 300), [s]) for s in cmds[:2]]
    if not out and failure:
        # nothing reproduced yet: say so, and give the customer's own account of what fails
        out = [Fact.of("repro_step", "Not reproduced yet; the customer reports: " + _brief(s.text, 260), [s])
               for s in failure[:2]]
    return out


# ---------------------------------------------------------------- handoff

def _open_question(ev: Evidence, pack: Pack) -> tuple[Fact | None, datetime | None]:
    """The last internal question to engineering, when no engineer has written since."""
    C = pack.vocabulary.concept("question_to_engineering")
    last_q: tuple[Sentence, datetime] | None = None
    for src in ev.events():
        if src.visibility != "internal" or src.role not in ("agent", "csm") or "?" not in src.text:
            continue
        hits = [s for s in src.sentences if C.regex.search(s.text)]
        if hits and src.at is not None:
            q = next((s for s in src.sentences if "?" in s.text), hits[0])
            last_q = (q, src.at)
    if last_q is None:
        return None, None
    q, at = last_q
    answered = any(src.role == "engineer" and src.at is not None and src.at > at for src in ev.events())
    if answered:
        return None, None
    return Fact.of("open_question", "Internal question to engineering not answered yet: " + _brief(q.text),
                   [q]), at


# ---------------------------------------------------------------- recorded severity

def _recorded_severity(ev: Evidence, pack: Pack) -> tuple[str | None, Fact | None]:
    case = ev.case
    last: tuple[str, Sentence] | None = None
    for src in ev.events():
        ch = (case.event(src.ref.split(":", 1)[1]) or None)
        if ch is not None and ch.changes and "severity" in ch.changes:
            new = ch.changes["severity"][1]
            if isinstance(new, str):
                s = _span(src, f'"{new}"') or _span(src, new)
                if s is not None:
                    last = (new, s)
    if case.ticket.severity:
        s = _field_sentence(ev, f'"severity": "{case.ticket.severity}"')
        if last is None or last[0] != case.ticket.severity:
            if s is not None:
                last = (case.ticket.severity, s)
    if last is None:
        return None, None
    return last[0], Fact.of("recorded_severity", f"Severity recorded on the ticket: {last[0]}.", [last[1]],
                            value=last[0])


# ---------------------------------------------------------------- required information

def _provided_info(ev: Evidence, pack: Pack) -> dict[str, Fact]:
    """Which required-information items the evidence already provides, with the quote."""
    out: dict[str, Fact] = {}
    items = list(pack.required_info.items)
    for item in items:
        if not item.patterns:
            continue
        rx = _compiled("|".join(f"(?:{p})" for p in item.patterns), re.I | re.M)
        cue = _compiled(item.cue, re.I) if item.cue else None
        excl = _compiled(item.exclude, re.I) if item.exclude else None
        for src in ev.case_sources():
            role = _src_role(src)
            if role not in item.sources:
                continue
            for a, b in src.spans(rx):
                s = src.sentence_at(a)
                if s is None or b > s.end:
                    continue
                if src.kind == "ticket_event" and re.match(r"^(Date|From|To|Sent|Subject):", s.text):
                    continue
                if excl is not None and excl.search(s.text):
                    continue
                if cue is not None and not cue.search(s.text):
                    continue
                value = re.sub(r"\s+", " ", src.text[a:b]).strip()[:80]
                out[item.key] = Fact.of(f"provided:{item.key}", f"{item.key} is given: {value}", [s], value=value)
                break
            if item.key in out:
                break
    return out


def _compiled(pattern: str, flags: int) -> Matcher:
    return compile_pattern(pattern, ignore_case=bool(flags & re.I), multiline=bool(flags & re.M))


def _src_role(src: Source) -> str:
    if src.kind == "attachment":
        return "log" if src.attachment_kind == "log" else "attachment"
    if src.kind == "account":
        return "account"
    return src.role


# ---------------------------------------------------------------- impact and tone

def _impact(ev: Evidence, pack: Pack, sentences: list[Sentence]) -> list[Fact]:
    """Who and how many are affected, in the words of the thread (numbers of users, records)."""
    rx = re.compile(r"\b(?:all|every|nobody|none|\d[\d,.]*\s*(?:k|m|million)?|one|two|three|four|five|six|seven|"
                    r"eight|nine|ten)\b[^.]{0,40}\b(?:users?|people|analysts|managers|members|recipients|"
                    r"accounts|workspaces?|rows|records|customers|dispatchers)\b", re.I)
    out = []
    ratio = re.compile(r"\b(\d+|one|two|three|four|five|six|seven|eight|nine|ten)\s+of\s+(?:our|the)\s+(\d+)"
                       r"\s+((?:\w+\s+){0,2}?(?:users|people|analysts|managers|members|recipients|runs|rows|records|"
                       r"calls|accounts|workspaces))", re.I)
    for s in sentences:
        m = ratio.search(s.text)
        if m:
            out.append(Fact.of("impact", f"Affected: {m.group(1)} of {m.group(2)} {m.group(3)}.", [s]))
            break
    for s in sentences:
        if rx.search(s.text) and s.role == "customer":
            out.append(Fact.of("impact", "Impact: " + _brief(s.text, 220), [s]))
        if len(out) >= 4:
            break
    return out


def _tone(ev: Evidence, pack: Pack, customer: list[Sentence], staff: list[Sentence]) -> ToneFacts:
    C = pack.vocabulary.concept
    tone = ToneFacts()
    for name, label in (("anger", "The customer is angry"), ("urgency", "The customer presses for urgency")):
        hits = matches(C(name), customer)
        if hits:
            tone.facts.append(Fact.of(f"tone:{name}", label + ".", hits[:2]))
    caps = [s for s in customer if _shouting(s.text)]
    if caps:
        tone.facts.append(Fact.of("tone:capitals", "The customer writes in capitals.", caps[:2]))
    threats: list[Sentence] = []
    for name, label in (("threat_churn", "threatens to cancel or leave"), ("threat_legal", "threatens legal action"),
                        ("executive_complaint", "escalates to an executive")):
        hits = matches(C(name), customer + [s for s in staff if s.source.visibility == "internal"])
        if hits:
            tone.facts.append(Fact.of(f"tone:{name}", f"The customer {label}.", hits[:2]))
            threats.extend(hits[:1])
    if threats:
        tone.threat = Fact.of("threat", "Churn, legal or executive escalation (§6.2: no severity effect).", threats)
    return tone


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 12 and sum(c.isupper() for c in letters) / len(letters) > 0.6
