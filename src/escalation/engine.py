"""`run(case, pack) -> packet`: the one pipeline every front end calls.

sources → facts → assessment → composition → verification → packet, each stage a pure
function of the previous ones and the pack. No clock, network or randomness: the same
case and pack give the same packet, byte for byte.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Literal

from .assessment import Assessment, assess
from .case import Case
from .compose import compose
from .documents import index_for
from .evidence import collect
from .facts import Fact, Facts, ToneFacts, extract
from .pack import Pack
from .packet import (
    Check,
    MissingInfo,
    NextAction,
    Owner,
    Packet,
    PackInfo,
    RootCause,
    Severity,
    Sla,
    Trigger,
    Workaround,
)
from .verify import run_checks


def _utc(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def analyse(case: Case, pack: Pack, *, lean: bool = False) -> tuple[Facts, Assessment]:
    """Facts and assessment only: what severity and triggers rest on (lean: only those)."""
    ev = collect(case, pack)
    facts = extract(ev, pack, index_for(pack), lean=lean)
    return facts, assess(ev, facts, pack, explain=not lean)


def tone_variants(case: Case) -> list[tuple[str, Case]]:
    """The same case, louder and quieter: customer messages shouted or calmed, priority flipped."""
    out = []
    for name, change, priority in (("angrier", _shout, "urgent"), ("calmer", _calm, "low")):
        data = case.model_dump(mode="json", by_alias=True)
        for ev in data["ticket"]["events"]:
            if ev["author"]["role"] == "customer" and ev.get("body"):
                ev["body"] = change(ev["body"])
        data["ticket"]["priority"] = priority
        out.append((name, Case.model_validate(data)))
    return out


def _shout(text: str) -> str:
    return ("THIS IS URGENT!!! " + re.sub(r"\.(\s|$)", r"!!\1", text)
            + "\n\nFix this NOW or we will cancel our contract and call our lawyers!!!")


def _calm(text: str) -> str:
    text = re.sub(r"!+", ".", text)
    return re.sub(r"\b([A-Z]{3,})\b", lambda m: m.group(1).lower() if not any(c.isdigit() for c in m.group(1))
                  else m.group(1), text)


ToneCheck = Literal["facts", "text", "off"]


def _tone_fact_variants(case: Case, facts: Facts, pack: Pack) -> list[tuple[str, str, list[str]]]:
    """Severity and triggers with the tone facts removed or maxed and the priority flipped.

    Cheap (no re-extraction): proves the assessment does not read tone or priority.
    """
    out = []
    quote_from = facts.symptoms[:1] or [facts.area]
    loud = ToneFacts(facts=[Fact(key=f"tone:{k}", statement=k, sources=quote_from[0].sources)
                            for k in ("anger", "capitals", "urgency", "threat_churn", "threat_legal")],
                     threat=Fact(key="threat", statement="threat", sources=quote_from[0].sources))
    for name, tone, priority in (("tone maxed, priority urgent", loud, "urgent"),
                                 ("tone removed, priority low", ToneFacts(), "low")):
        variant = case.model_copy(update={"ticket": case.ticket.model_copy(update={"priority": priority})})
        ev = collect(variant, pack)
        va = assess(ev, replace(facts, tone=tone), pack, explain=False)
        out.append((name, va.severity.level, [t.key for t in va.triggers]))
    return out


def run(case: Case, pack: Pack, *, tone_check: ToneCheck = "facts") -> Packet:
    """The escalation packet for a case under a pack.

    tone_check: "facts" varies the tone facts and the priority and re-assesses (cheap);
    "text" also rewrites the customer's messages angrier and calmer and re-extracts
    (thorough, about three times the cost); "off" skips the check.
    """
    ev = collect(case, pack)
    facts = extract(ev, pack, index_for(pack))
    a = assess(ev, facts, pack)
    comp = compose(ev, facts, a, pack)

    def variants() -> list[tuple[str, str, list[str]]]:
        out = _tone_fact_variants(case, facts, pack)
        if tone_check == "text":
            for name, v in tone_variants(case):
                _, va = analyse(v, pack, lean=True)
                out.append((name + " messages", va.severity.level, [t.key for t in va.triggers]))
        return out

    checks: list[Check] = run_checks(ev, pack, a, comp.claims, comp.customer_update,
                                     variants if tone_check != "off" else None)
    sev = a.severity
    sla = a.sla
    wa = facts.workaround
    workaround = Workaround(
        exists=None if (facts.question is not None and facts.broken is None and wa is None)
        else bool(wa is not None and wa.value),
        description=(comp.workaround_text or (wa.statement if wa is not None and wa.value else None)),
    )
    return Packet(
        case_id=case.id,
        ticket_id=case.ticket.id,
        as_of=_utc(case.as_of),
        pack=PackInfo(name=pack.name, version=pack.version, content_hash=pack.content_hash),
        summary=comp.summary,
        product_area=facts.product_area,
        severity=Severity(level=sev.level, rule=sev.rule.id, section=sev.rule.section,
                          rationale=f"{sev.rule.section}: {sev.rule.reason}", recorded=facts.recorded_severity,
                          would_change=sev.would_change, facts=dict(sorted(sev.context.items()))),
        owner=Owner(team=a.owner.team, alias=a.owner.alias, section=a.owner.section, reason=a.owner.reason,
                    consulted=a.owner.consulted),
        triggers=[Trigger(key=t.key, section=t.section, reason=t.reason) for t in a.triggers],
        sla=None if sla is None else Sla(
            target=sla.kind, target_text=sla.target_text, started_at=_utc(sla.started_at), due_at=_utc(sla.due_at),
            remaining_fraction=round(sla.remaining_fraction, 4), breached=sla.breached, at_risk=sla.at_risk,
            business_hours=sla.business_hours, timezone=sla.timezone),
        workaround=workaround,
        root_cause=[RootCause(status=str(f.value), statement=f.statement) for f in facts.root_causes],  # type: ignore
        reproduction_steps=comp.reproduction_steps,
        customer_update=comp.customer_update,
        next_actions=[NextAction(actor=x.actor, action=x.action, due=_utc(x.due), section=x.section)
                      for x in a.actions],
        missing_info=[MissingInfo(key=m.key, question=m.question, section=m.section) for m in a.missing],
        tone=[f.statement for f in facts.tone.facts],
        claims=comp.claims,
        checks=checks,
        needs_review=not all(c.passed for c in checks),
    )
