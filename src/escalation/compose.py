"""Composition: the internal summary, the customer-safe update and the claims behind both.

The customer update is composed from a *public view*: facts whose every source the
customer has seen or may see (public replies, product docs), the pack's approved phrases
and the clock. Internal notes, logs and the severity never enter that view; the leak
checks in `verify` are a second, independent wall.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from .assessment import Assessment
from .customer_safe import check_update, context_for_case
from .evidence import Evidence
from .facts import Fact, Facts, Quote
from .pack import Pack
from .packet import Claim, SourceRef
from .sla import add_business_time

# ---------------------------------------------------------------- policy quotes

def handbook_quote(pack: Pack, section: str, *needles: str) -> Quote:
    """A verbatim line of the handbook section that encodes a decision.

    '§2.3a' → the line starting 'a.' in §2.3; with needles, the first line containing all of
    them (a table row, say); else the section's first line.
    """
    m = re.match(r"§?(\d+(?:\.\d+)?)([a-z])?", section.strip())
    base = f"§{m.group(1)}" if m else section
    letter = m.group(2) if m else None
    doc = pack.sections.get(base)
    if doc is None and m and "." in m.group(1):
        doc = pack.sections.get("§" + m.group(1).split(".")[0])
    if doc is None:
        doc = next(iter(pack.sections.values()))
    lines = [ln.strip() for ln in doc.text.splitlines() if ln.strip()]
    if needles:
        for ln in lines:
            if all(n.lower() in ln.lower() for n in needles):
                return Quote(ref=doc.ref, quote=ln)
    if letter:
        for ln in lines:
            if ln.startswith(f"{letter}. "):
                return Quote(ref=doc.ref, quote=ln)
    return Quote(ref=doc.ref, quote=lines[0])


def policy_quote_containing(pack: Pack, text: str) -> Quote:
    """The handbook line that contains `text` (an approved phrase, say)."""
    cache: dict[str, Quote] = pack.__dict__.setdefault("_quote_cache", {})
    if text not in cache:
        cache[text] = _policy_quote_containing(pack, text)
    return cache[text]


def _policy_quote_containing(pack: Pack, text: str) -> Quote:
    for doc in pack.sections.values():
        for ln in doc.text.splitlines():
            if text.lower() in ln.lower():
                return Quote(ref=doc.ref, quote=ln.strip())
    return handbook_quote(pack, pack.language.section)


def _refs(quotes: list[Quote] | tuple[Quote, ...]) -> list[SourceRef]:
    seen: list[SourceRef] = []
    for q in quotes:
        r = SourceRef(ref=q.ref, quote=q.quote)
        if r not in seen:
            seen.append(r)
    return seen


def _fact_quotes(facts: Sequence[Fact | None]) -> list[Quote]:
    out: list[Quote] = []
    for f in facts:
        if f is None:
            continue
        for q in f.sources:
            if q not in out:
                out.append(q)
    return out


# ---------------------------------------------------------------- composition

@dataclass
class Composition:
    summary: str
    customer_update: str
    claims: list[Claim]
    reproduction_steps: list[str]
    workaround_text: str | None
    dropped: list[str]


def _fmt_time(dt: datetime, tz: str) -> str:
    local = dt.astimezone(ZoneInfo(tz))
    name = local.tzname() or tz
    return f"{local:%A %d %B %Y}, {local:%H:%M} {name}".replace(" 0", " ")


def _clean_markdown(text: str) -> str:
    return re.sub(r"\*\*|`", "", text).strip()


def next_update_time(pack: Pack, assessment: Assessment, facts: Facts, as_of: datetime) -> datetime | None:
    """When the customer hears from us next, if this update is sent at as_of (§8.1)."""
    target = pack.sla.target(facts.tier, assessment.severity.level)
    if target is None or target.update_duration is None:
        return None
    dur = target.update_duration
    tz = ZoneInfo(assessment.timezone)
    hours = pack.sla.window_hours(dur)
    if pack.sla.is_business(assessment.severity.level):
        due = add_business_time(as_of, hours, tz, pack.sla.business_hours)
    else:
        due = as_of + timedelta(hours=hours)
    return due


def compose(ev: Evidence, facts: Facts, assessment: Assessment, pack: Pack) -> Composition:
    case = ev.case
    sev = assessment.severity
    claims: list[Claim] = []

    def claim(text: str, quotes: list[Quote], part: str) -> None:
        if not quotes:
            return
        public = all(not (q.ref.startswith("ticket") or q.ref.startswith("attachment") or q.ref in
                          ("account", "incident") or q.ref.startswith("related")) or _is_public(ev, q.ref)
                     for q in quotes)
        claims.append(Claim(text=text, sources=_refs(quotes), visibility="public" if public else "internal",
                            part=part))

    # -- internal summary claims
    for f in facts.symptoms:
        claim(f.statement, list(f.sources), "summary.symptoms")
    for f in facts.error_messages[:3]:
        claim(f.statement, list(f.sources), "summary.symptoms")
    for sig in facts.signatures[:2]:
        src = ev.by_ref.get(sig.ref)
        if src is not None and sig.line in src.text:
            claim(f"Log error signature ({sig.count}×): {sig.template}", [Quote(ref=sig.ref, quote=sig.line)],
                  "summary.symptoms")
    for f in facts.impact:
        claim(f.statement, list(f.sources), "summary.impact")
    for f in facts.provided.values():
        claim(f.statement, list(f.sources), "summary.details")
    for f in facts.docs:
        claim(f.statement, list(f.sources), "summary.docs")
    if case.incident is not None:
        inc = case.incident
        src = ev.by_ref["incident"]
        claim(f"Linked incident {inc.id}: {inc.title} ({inc.status}"
              f"{', public on the status page' if inc.public else ''}).",
              [Quote(ref="incident", quote=inc.title if inc.title in src.text else inc.id)], "summary.incident")
    for maybe in (facts.unavailable, facts.intermittent, facts.partial_scope, facts.all_users, facts.accounts_fact,
                  facts.data_corruption, facts.security, facts.question, facts.billing_fact):
        if maybe is not None:
            claim(maybe.statement, list(maybe.sources), "summary.impact")
    for f in facts.root_causes:
        claim(f.statement, list(f.sources), "summary.root_cause")
    for p in facts.known_issues:
        q = Quote(ref=p.ref, quote=p.text.splitlines()[0].strip())
        claim(f"Matches documented known issue {p.known_issue}: {_clean_markdown(p.title or '')}", [q],
              "summary.known_issue")
    if facts.workaround is not None:
        claim(facts.workaround.statement, list(facts.workaround.sources), "workaround")
    claim(facts.area.statement, list(facts.area.sources), "product_area")

    rule_quote = handbook_quote(pack, sev.rule.section)
    sev_text = f"{sev.level} by {sev.rule.section}: {sev.rule.reason}"
    claim(sev_text, [rule_quote] + _fact_quotes(sev.deciding)[:4], "severity")
    if facts.recorded_severity_fact is not None:
        claim(facts.recorded_severity_fact.statement, list(facts.recorded_severity_fact.sources), "severity")
    for t in assessment.triggers:
        q = handbook_quote(pack, t.section, f"`{t.key}`")
        claim(f"Trigger {t.key}: {t.reason}", [q] + _fact_quotes(t.facts)[:3], "triggers")
    owner = assessment.owner
    oq = handbook_quote(pack, owner.section, owner.team)
    claim(f"Owner: {owner.team}" + (f" ({owner.alias})" if owner.alias else "") + f". {owner.reason}",
          [oq] + _fact_quotes(owner.facts)[:2], "owner")
    sla = assessment.sla
    if sla is not None:
        q = handbook_quote(pack, pack.sla.section, f"| {facts.tier} |", f"| {sev.level} |")
        state = "breached" if sla.breached else ("at risk" if sla.at_risk else "on track")
        claim(f"SLA {sla.kind.replace('_', ' ')} ({sla.target_text}) due {sla.due_at:%Y-%m-%d %H:%M}Z: {state}.",
              [q, facts.tier_fact.sources[0]], "sla")
    for a in assessment.actions:
        q = handbook_quote(pack, a.section, f"| {sev.level} |") if a.section.startswith("§6") and \
            a.section.strip() == "§6" else handbook_quote(pack, a.section)
        claim(f"Next: {a.actor} — {a.action} (by {a.due:%Y-%m-%d %H:%M}Z).", [q], "next_actions")
    for m in assessment.missing:
        q = handbook_quote(pack, m.section, f"`{m.key}`")
        claim(f"Missing {m.key}: {m.question}", [q], "missing_info")
    steps = [f.statement for f in facts.repro_steps]
    for f in facts.repro_steps:
        claim(f"Reproduction step: {f.statement}", list(f.sources), "reproduction_steps")

    summary = pack.jinja.get_template("summary.j2").render(
        case=case, facts=facts, a=assessment, sev=sev, owner=owner, sla=sla, steps=steps,
        threat=facts.tone.threat, area=pack.routing.area(facts.product_area),
    )
    summary = re.sub(r"[ \t]+\n", "\n", summary)
    summary = re.sub(r"\n{2,}", "\n", summary).strip()

    # -- the customer update, from public material only
    update, update_claims, dropped, wa_text = _customer_update(ev, facts, assessment, pack)
    claims.extend(update_claims)
    return Composition(summary=summary, customer_update=update, claims=claims, reproduction_steps=steps,
                       workaround_text=wa_text, dropped=dropped)


def _is_public(ev: Evidence, ref: str) -> bool:
    src = ev.by_ref.get(ref)
    return src is not None and src.visibility == "public"


def _customer_update(ev: Evidence, facts: Facts, a: Assessment, pack: Pack
                     ) -> tuple[str, list[Claim], list[str], str | None]:
    case = ev.case
    approved = pack.language.approved_phrases
    area = pack.routing.area(facts.product_area)
    ctx = context_for_case(case, other_customers=[x.name for x in pack.accounts if x.id != case.account.id])
    dropped: list[str] = []

    wa_text: str | None = None
    wa_fact = facts.workaround_customer_text
    if facts.workaround is not None and facts.workaround.value and wa_fact is not None \
            and wa_fact.visibility == "public":
        text = _clean_markdown(wa_fact.statement)
        source = wa_fact.sources[0].ref
        lowered = text[0].lower() + text[1:]
        if source.startswith("doc:"):  # a documented workaround is an instruction: phrase it as advice
            text = "In the meantime, you can " + lowered
        elif ev.by_ref[source].role == "customer" and not re.match(r"(?i)in the meantime|until|you can", text):
            text = "As you mentioned, " + lowered  # the customer's own way round, echoed back
        if check_update(text, pack.language, ctx):
            dropped.append("workaround")
        else:
            wa_text = text

    echo, echo_fact = _customer_words(ev, facts, pack)
    if echo is not None and check_update(echo, pack.language, ctx):
        dropped.append("customer_words")
        echo, echo_fact = None, None
    expected_note: str | None = None
    expected_fact: Fact | None = None
    if facts.expected is not None:
        for p in facts.known_issues:
            if p.expected and p.title:
                expected_note = _clean_markdown(p.title).rstrip(".") + "."
                src = ev.by_ref.get(p.ref)
                found = src.text.find(p.text.splitlines()[0].strip()) if src else -1
                if src is not None and found >= 0:
                    expected_fact = Fact(key="expected_text", statement=expected_note,
                                         sources=(Quote(ref=p.ref, quote=p.text.splitlines()[0].strip()),),
                                         visibility="public")
                break
    amount_note = None
    if facts.billing_fact is not None and facts.billing_fact.visibility == "public" and facts.billing_amount:
        amount_note = f"{facts.billing_amount:,.2f} USD"

    nxt = next_update_time(pack, a, facts, case.as_of)
    if nxt is not None and case.incident is not None and case.incident.next_update_due is not None \
            and case.as_of < case.incident.next_update_due < nxt:
        nxt = case.incident.next_update_due  # the incident's own public update comes first
    questions = a.missing
    first_name = (case.ticket.requester.name or "").split(" ")[0] or "there"
    variables = dict(
        first_name=first_name,
        customer_words=echo,
        expected_note=expected_note,
        amount=amount_note,
        area_name=area.name if area else None,
        is_question=facts.question is not None,
        is_feature_request=facts.question is not None and bool(
            re.search(r"feature", " ".join(q.quote for q in facts.question.sources), re.I)),
        reproduced=facts.reproduced is not None and facts.question is None,
        incident_public=bool(case.incident and case.incident.public),
        workaround=wa_text,
        no_workaround=facts.workaround is not None and facts.workaround.value is False,
        questions=[m.question for m in questions],
        next_update=_fmt_time(nxt, a.timezone) if nxt else None,
        severe=pack.severity.rank(a.severity.level) <= 1,
        engineering_engaged=facts.handed_to_engineering is not None or facts.owner_named is not None,
        owner_team=a.owner.team if area is not None and not area.is_engineering else None,
        security=facts.security is not None,
        phrases=approved,
    )
    text = pack.jinja.get_template("customer_update.j2").render(**variables).strip()
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n\n+(?=- )", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text).strip()

    claims: list[Claim] = []
    for sentence in _sentences(text):
        quotes = _update_sources(sentence, ev, facts, a, pack, wa_fact, nxt, echo_fact, expected_fact)
        if quotes:
            claims.append(Claim(text=sentence, sources=_refs(quotes), visibility="public", part="customer_update"))
    return text, claims, dropped, wa_text


def _overlaps(sentence_low: str, statement: str) -> bool:
    words = re.findall(r"\w{4,}", statement.lower())[:6]
    return bool(words) and sum(w in sentence_low for w in words) >= max(1, len(words) // 2)


def _customer_words(ev: Evidence, facts: Facts, pack: Pack) -> tuple[str | None, Fact | None]:
    """The customer's own words for the problem (§8.1: acknowledge impact in the customer's terms).

    A public sentence the customer wrote: the first failure they report, or for a question the
    request itself. Never internal text, and dropped if it trips a language rule.
    """
    C = pack.vocabulary.concept
    customer = [s for s in ev.sentences(roles=("customer",), kinds=("ticket_event",))
                if s.source.visibility == "public" and 12 <= len(s.text) <= 240 and "\n" not in s.text.strip()]
    if facts.question is not None and facts.broken is None:
        picks = [s for s in customer if re.search(r"\b(?:would like|want|wish|need|is there a way|can i|how do)\b",
                                                  s.text, re.I)]
    else:
        from .facts import matches

        picks = matches(C("failure"), customer, allow_negated=False)
    if not picks:
        return None, None
    s = picks[0]
    text = re.sub(r"\s+", " ", s.text).strip().rstrip(":;,-– ")
    if sum(c.isupper() for c in text) > 0.5 * sum(c.isalpha() for c in text):
        text = text[0] + text[1:].lower()  # quote a shouted sentence without the shouting
        if text not in s.text:
            return None, None
    fact = Fact.of("customer_words", text, [s])
    return text, fact


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 3]


def _update_sources(sentence: str, ev: Evidence, facts: Facts, a: Assessment, pack: Pack, wa_fact: Fact | None,
                    nxt: datetime | None, echo_fact: Fact | None = None, expected_fact: Fact | None = None
                    ) -> list[Quote]:
    """Where a sentence of the update comes from: an approved phrase, a public fact, the SLA table."""
    low = sentence.lower()
    if echo_fact is not None and _overlaps(low, echo_fact.statement):
        return list(echo_fact.sources)
    if expected_fact is not None and _overlaps(low, expected_fact.statement):
        return list(expected_fact.sources)
    if facts.billing_fact is not None and facts.billing_amount and f"{facts.billing_amount:,.2f}" in sentence:
        return list(facts.billing_fact.sources)
    for phrase in pack.language.approved_phrases:
        stem = phrase.rstrip(".… ").split("…")[0].strip().lower()
        if stem and stem[:30] in low:
            return [policy_quote_containing(pack, phrase.split("…")[0].strip(' "'))]
    if wa_fact is not None and (wa_fact.statement[:40].lower() in low or "in the meantime" in low
                                or "as you mentioned" in low):
        return list(wa_fact.sources)
    if "next update" in low and nxt is not None:
        return [handbook_quote(pack, "§8.1"), handbook_quote(pack, pack.sla.section, f"| {facts.tier} |",
                                                            f"| {a.severity.level} |")]
    for m in a.missing:
        if m.question.lower()[:25] in low:
            return [handbook_quote(pack, m.section, f"`{m.key}`")]
    if low.startswith(("could you", "to help us", "please send")):
        return [handbook_quote(pack, pack.required_info.section)]
    return [handbook_quote(pack, "§8.1")]

