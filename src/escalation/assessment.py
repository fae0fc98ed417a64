"""Assessment: severity, triggers, SLA clock, owner, next actions and missing information.

Severity is the pack's CEL rules evaluated over a context built from evidence facts only
(`severity_context`): tone facts and the customer-set priority are not in it, so no rule
can read them. Each decision carries the policy section that makes it and the quotes it
rests on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from .evidence import Evidence, Sentence
from .facts import Fact, Facts
from .pack import EVIDENCE_FACTS, ActionTemplate, Pack, SeverityRule
from .sla import SlaClock, add_business_time, end_of_business_day, sla_clock


@dataclass(frozen=True)
class SeverityResult:
    level: str
    rule: SeverityRule
    context: dict[str, Any]
    deciding: list[Fact]
    would_change: list[str]


@dataclass(frozen=True)
class TriggerResult:
    key: str
    section: str
    reason: str
    facts: list[Fact]


@dataclass(frozen=True)
class OwnerResult:
    team: str
    alias: str | None
    section: str
    reason: str
    facts: list[Fact]
    consulted: str | None = None


@dataclass(frozen=True)
class ActionResult:
    actor: str
    action: str
    due: datetime
    section: str


@dataclass(frozen=True)
class MissingItem:
    key: str
    question: str
    section: str


@dataclass
class Assessment:
    severity: SeverityResult
    triggers: list[TriggerResult]
    sla: SlaClock | None
    owner: OwnerResult
    actions: list[ActionResult]
    missing: list[MissingItem]
    timezone: str
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- severity

def severity_context(facts: Facts, pack: Pack) -> tuple[dict[str, Any], dict[str, list[Fact]]]:
    """The only inputs the severity rules see: evidence facts, never tone or priority."""
    area = pack.routing.area(facts.product_area)
    billing_core = (pack.routing.billing_core_threshold_usd is not None and facts.billing_amount is not None
                    and facts.billing_amount >= pack.routing.billing_core_threshold_usd)
    core = bool(area and area.core) or billing_core
    broken = facts.broken is not None and facts.question is None
    unavailable = broken and facts.unavailable is not None and not billing_core
    ctx: dict[str, Any] = {
        "core": core,
        "broken": broken,
        "unavailable": unavailable,
        "degraded": broken and not unavailable,
        "all_users": facts.all_users is not None,
        "accounts_affected": facts.accounts_affected,
        "workaround": bool(facts.workaround is not None and facts.workaround.value),
        "data_loss_confirmed": facts.data_corruption is not None,
        "security_incident": facts.security is not None,
        "question": facts.question is not None,
        "tier": facts.tier,
        "area": facts.product_area,
        "billing_amount_usd": float(facts.billing_amount or 0.0),
    }
    support: dict[str, list[Fact]] = {
        "core": [f for f in (facts.area, facts.billing_fact) if f is not None],
        "broken": [f for f in (facts.broken,) if f],
        "unavailable": [f for f in (facts.unavailable,) if f],
        "degraded": [f for f in (facts.intermittent, facts.partial_scope, facts.broken) if f][:2],
        "all_users": [f for f in (facts.all_users,) if f],
        "accounts_affected": [f for f in (facts.accounts_fact,) if f],
        "workaround": [f for f in (facts.workaround,) if f],
        "data_loss_confirmed": [f for f in (facts.data_corruption,) if f],
        "security_incident": [f for f in (facts.security,) if f],
        "question": [f for f in (facts.question,) if f],
        "tier": [facts.tier_fact],
        "area": [facts.area],
        "billing_amount_usd": [f for f in (facts.billing_fact,) if f],
    }
    assert set(ctx) == set(EVIDENCE_FACTS)
    declared = set(pack.severity.facts)
    return {k: v for k, v in ctx.items() if k in declared}, support


def evaluate_rules(pack: Pack, ctx: dict[str, Any]) -> SeverityRule:
    """The first rule (most severe first) whose CEL condition holds."""
    for rule, program in pack.compiled_rules:
        if program.execute(ctx) is True:
            return rule
    raise AssertionError("the pack's catch-all rule did not match")  # the loader guarantees it exists


def assess_severity(facts: Facts, pack: Pack, explain: bool = True) -> SeverityResult:
    ctx, support = severity_context(facts, pack)
    rule = evaluate_rules(pack, ctx)
    program = dict((r.id, p) for r, p in pack.compiled_rules)[rule.id]
    deciding: list[Fact] = []
    for var in program.variables():
        value = ctx.get(var)
        if value not in (False, 0, 0.0, None, ""):
            deciding.extend(support.get(var, []))
    if rule.when.strip() == "true":
        # the catch-all: what is absent decides, so cite what was established
        for var in ("question", "workaround", "core", "tier"):
            if var in ctx:
                deciding.extend(support.get(var, []))
    deciding = list({f.statement: f for f in deciding}.values())
    return SeverityResult(level=rule.level, rule=rule, context=ctx, deciding=deciding,
                          would_change=_would_change(pack, ctx, rule) if explain else [])


_FLIP_WORDS: dict[str, tuple[str, str]] = {  # (when the fact becomes true, when it becomes false)
    "data_loss_confirmed": ("data loss or corruption is confirmed", "the data turns out to be intact"),
    "security_incident": ("a security or privacy exposure is confirmed", "no exposure is confirmed"),
    "workaround": ("a workaround is confirmed working", "the workaround is reported failing"),
    "unavailable": ("every attempt fails", "failures turn out to be intermittent or partial"),
    "all_users": ("all users of the account are affected", "only some users turn out to be affected"),
    "core": ("a core workflow turns out to be affected", "the workflow turns out to be non-core"),
    "broken": ("a failure is confirmed", "nothing turns out to be broken"),
    "question": ("it turns out to be a question or expected behaviour", "it turns out to be a defect"),
    "degraded": ("the workflow is confirmed degraded", "the workflow turns out not to be degraded"),
}


def _would_change(pack: Pack, ctx: dict[str, Any], current: SeverityRule) -> list[str]:
    """Single-fact changes that would move severity, e.g. 'Sev1 if data loss is confirmed (§2.2b)'."""
    out: list[str] = []
    levels = pack.severity.levels
    for var in sorted(k for k, v in ctx.items() if isinstance(v, bool)):
        flipped = dict(ctx)
        flipped[var] = not ctx[var]
        rule = evaluate_rules(pack, flipped)
        if rule.level != current.level:
            on, off = _FLIP_WORDS.get(var, (f"{var} holds", f"{var} does not hold"))
            words = on if flipped[var] else off
            out.append(f"{rule.level} if {words} ({rule.section})")
    if ctx.get("accounts_affected", 1) < 3:
        flipped = dict(ctx, accounts_affected=3)
        rule = evaluate_rules(pack, flipped)
        if rule.level != current.level:
            out.append(f"{rule.level} if three or more accounts report the same failure ({rule.section})")
    out.sort(key=lambda s: (levels.index(s.split(" ", 1)[0]) if s.split(" ", 1)[0] in levels else 99, s))
    return list(dict.fromkeys(out))[:4]


# ---------------------------------------------------------------- SLA and time

def timezone_of(facts_tz: str | None, pack: Pack) -> str:
    return facts_tz or pack.sla.business_hours.default_timezone


def compute_sla(ev: Evidence, facts: Facts, pack: Pack, level: str) -> SlaClock | None:
    case = ev.case
    last = facts.last_public_reply.at if facts.last_public_reply else None
    return sla_clock(pack.sla, tier=facts.tier, severity=level, created_at=case.ticket.created_at,
                     last_public_agent_reply=last, as_of=case.as_of, timezone=case.account.timezone)


# ---------------------------------------------------------------- triggers

def assess_triggers(ev: Evidence, facts: Facts, pack: Pack, sev: SeverityResult, sla: SlaClock | None
                    ) -> list[TriggerResult]:
    case = ev.case
    out: list[TriggerResult] = []
    levels = pack.severity.levels
    defs = {t.key: t for t in pack.triggers.triggers}

    def add(key: str, reason: str, fs: list[Fact | None]) -> None:
        d = defs.get(key)
        if d is not None:
            out.append(TriggerResult(key=key, section=d.section, reason=reason, facts=[f for f in fs if f]))

    if "severity_change" in defs and facts.recorded_severity and facts.recorded_severity != sev.level:
        add("severity_change", f"Assessed {sev.level} differs from the recorded {facts.recorded_severity}.",
            [facts.recorded_severity_fact, *sev.deciding[:2]])
    if "vip_account" in defs:
        p = defs["vip_account"].params
        tiers = p.get("tiers", ["strategic"])
        lowest = p.get("min_severity", levels[-2] if len(levels) > 1 else levels[0])
        if facts.tier in tiers and levels.index(sev.level) <= levels.index(lowest):
            add("vip_account", f"{facts.tier} account and {sev.level} (at or above {lowest}).", [facts.tier_fact])
    if "sla_risk" in defs and sla is not None and sla.at_risk:
        state = "breached" if sla.breached else f"{sla.remaining_fraction:.0%} of the window left"
        reply = facts.last_public_reply
        fs: list[Fact | None] = []
        if reply is not None:
            fs.append(Fact.of("last_public_reply", f"Last public reply at {reply.at:%Y-%m-%d %H:%M}Z.",
                              [reply.sentences[0]] if reply.sentences else []))
        else:
            fs.append(Fact.of("created", "No public agent reply yet; the first-response clock runs.",
                              [Sentence(ev.by_ref["ticket"], *_find(ev.by_ref["ticket"].text, case.ticket.subject))]))
        add("sla_risk", f"{sla.kind.replace('_', ' ')} target ({sla.target_text}) due "
            f"{sla.due_at:%Y-%m-%d %H:%M}Z: {state}.", fs)
    if "repeated_ticket" in defs:
        p = defs["repeated_ticket"].params
        days = float(p.get("same_account_window_days", 30))
        need = int(p.get("same_account_min_other_tickets", 2))
        need_accounts = int(p.get("signature_min_other_accounts", 3))
        same: list[Fact | None] = []
        for r in case.related_tickets:
            if r.account_id == case.account.id and r.id != case.ticket.id and r.product_area == facts.product_area \
                    and timedelta(0) <= case.as_of - r.created_at <= timedelta(days=days):
                src = ev.by_ref[f"related:{r.id}"]
                same.append(Fact.of("related", f"Ticket {r.id} ({r.product_area}, {r.created_at:%Y-%m-%d}).",
                                    [Sentence(src, 0, min(len(src.text), len(r.id) + 1 + len(r.account_id)))]))
        if len(same) >= need:
            add("repeated_ticket", f"{len(same)} other {facts.product_area} tickets from this account within "
                f"{days:g} days.", same)
        elif facts.accounts_affected - 1 >= need_accounts and facts.accounts_fact is not None:
            add("repeated_ticket", f"{facts.accounts_affected - 1} other accounts reported the same error "
                "signature recently.", [facts.accounts_fact])
    if "unclear_handoff" in defs and facts.handed_to_engineering is not None:
        p = defs["unclear_handoff"].params
        limit = float(p.get("unanswered_business_hours", 9))
        if facts.owner_named is None:
            add("unclear_handoff", "Handed to engineering, but nobody is named as owner of the next step.",
                [facts.handed_to_engineering])
        elif facts.open_question is not None and facts.open_question_at is not None:
            from .sla import business_hours_between
            tz = ZoneInfo(timezone_of(case.account.timezone, pack))
            waited = business_hours_between(facts.open_question_at, case.as_of, tz, pack.sla.business_hours)
            if waited > limit:
                add("unclear_handoff", f"The last internal question to engineering has waited {waited:.1f} "
                    f"business hours (limit {limit:g}).", [facts.open_question])
    if "incident_update" in defs and case.incident is not None:
        inc = case.incident
        p = defs["incident_update"].params
        closed = [s.lower() for s in p.get("closed_statuses", ["resolved", "closed", "postmortem"])]
        src = ev.by_ref["incident"]
        fact = Fact.of("incident", f"Linked incident {inc.id}: {inc.title} ({inc.status}).",
                       [Sentence(src, *_find(src.text, inc.title))])
        if inc.status.lower() not in closed and inc.public:
            add("incident_update", "Linked to an open public incident.", [fact])
        elif inc.next_update_due is not None and inc.next_update_due <= case.as_of:
            add("incident_update", "A customer-facing incident update is due.", [fact])
    order = [t.key for t in pack.triggers.triggers]
    out.sort(key=lambda t: order.index(t.key))
    return out


def _find(text: str, needle: str) -> tuple[int, int]:
    i = text.find(needle)
    return (i, i + len(needle)) if i >= 0 else (0, min(len(text), 3))


# ---------------------------------------------------------------- owner

def assess_owner(facts: Facts, pack: Pack) -> OwnerResult:
    r = pack.routing
    if facts.security is not None:
        area = r.area(facts.product_area)
        return OwnerResult(team=r.security_team, alias=r.security_alias, section=r.security_section,
                           reason="Security or privacy incident: Security owns it regardless of product area.",
                           facts=[facts.security], consulted=area.team if area else None)
    area = r.area(facts.product_area)
    if area is None:
        return OwnerResult(team=r.triage_team, alias=None, section=r.triage_section,
                           reason="The product area is unclear; Support Triage owns it until it is known.",
                           facts=[facts.area])
    return OwnerResult(team=area.team, alias=area.alias, section=r.section,
                       reason=f"Product area {area.key} is owned by {area.team}.", facts=[facts.area])


# ---------------------------------------------------------------- next actions

def _due(spec: str, case_as_of: datetime, tz: ZoneInfo, pack: Pack, sla: SlaClock | None) -> datetime:
    bh = pack.sla.business_hours
    if spec == "now":
        return case_as_of
    if spec in ("first_response", "update_cadence", "sla"):
        if sla is not None:
            return max(sla.due_at, case_as_of) if not sla.breached else case_as_of
        return end_of_business_day(case_as_of, tz, bh)
    if spec == "end_of_business_day":
        return end_of_business_day(case_as_of, tz, bh)
    m = re.fullmatch(r"business_days:(\d+(?:\.\d+)?)", spec)
    if m:
        return add_business_time(case_as_of, float(m.group(1)) * pack.sla.business_day_hours, tz, bh)
    m = re.fullmatch(r"hours:(\d+(?:\.\d+)?)", spec)
    if m:
        return case_as_of + timedelta(hours=float(m.group(1)))
    raise ValueError(f"unknown due spec {spec!r}")


def _actor(kind: str, ev: Evidence, facts: Facts, pack: Pack, owner: OwnerResult) -> str:
    case = ev.case
    csm = case.account.owner.name if case.account.owner else None
    agent = case.ticket.assignee.name if case.ticket.assignee else None
    if agent is None:
        replies = [s for s in ev.events() if s.role == "agent" and s.author]
        agent = replies[-1].author if replies else None
    support = f"support agent ({agent})" if agent else "support agent"
    if kind == "owner_team":
        return owner.team
    if kind == "owner_alias":
        return f"{owner.team} ({owner.alias})" if owner.alias else owner.team
    if kind == "csm":
        return f"CSM {csm}" if csm else support
    if kind == "support_agent":
        return support
    if kind == "comms_owner":
        if facts.tier in pack.actions.comms_owner_csm_tiers and csm:
            return f"CSM {csm}"
        return support
    return kind


def assess_actions(ev: Evidence, facts: Facts, pack: Pack, sev: SeverityResult, owner: OwnerResult,
                   sla: SlaClock | None, triggers: list[TriggerResult], missing: list[MissingItem]
                   ) -> list[ActionResult]:
    case = ev.case
    tz = ZoneInfo(timezone_of(case.account.timezone, pack))
    out: list[ActionResult] = []

    def add(t: ActionTemplate, **fmt: str) -> None:
        actor = _actor(t.actor, ev, facts, pack, owner)
        text = t.action.format(team=owner.team, alias=owner.alias or owner.team, level=sev.level, **fmt)
        out.append(ActionResult(actor=actor, action=text, due=_due(t.due, case.as_of, tz, pack, sla),
                                section=t.section))

    for t in pack.actions.by_severity.get(sev.level, []):
        add(t)
    keys = {t.key for t in triggers}
    if "unclear_handoff" in keys:
        if facts.owner_named is None:
            add(pack.actions.handoff_action)
        else:
            add(pack.actions.open_question_action)
    if facts.tone.threat is not None:
        add(pack.actions.threat_action)
    if missing:
        add(pack.actions.missing_info_action, keys=", ".join(m.key for m in missing))
    seen: set[tuple[str, str]] = set()
    unique = []
    for a in out:
        if (a.actor, a.action) not in seen:
            seen.add((a.actor, a.action))
            unique.append(a)
    return unique


# ---------------------------------------------------------------- missing information

def assess_missing(facts: Facts, pack: Pack) -> list[MissingItem]:
    ri = pack.required_info
    area = facts.product_area
    is_question = facts.question is not None
    out: list[MissingItem] = []
    for item in ri.items:
        if item.needed_for == "all":
            applies = area not in item.except_areas
        else:
            applies = area in item.needed_for
        if not applies:
            continue
        if is_question and item.defect_only:
            continue
        if item.shown_error_only and (facts.broken is None or facts.data_corruption is not None
                                      or facts.security is not None or not facts.error_shown):
            continue  # §7: only when the customer is shown an error
        if item.key in facts.provided:
            continue
        if facts.security is not None and item.defect_only and item.key not in ("workspace_id", "first_seen"):
            continue
        out.append(MissingItem(key=item.key, question=item.question, section=ri.section))
    if area == "unknown":
        it = ri.product_area_item
        out.append(MissingItem(key=it.key, question=it.question, section=ri.section))
    return out


# ---------------------------------------------------------------- all of it

def assess(ev: Evidence, facts: Facts, pack: Pack, *, explain: bool = True) -> Assessment:
    """explain=False skips the 'what would change it' search (used by the re-assessing checks)."""
    sev = assess_severity(facts, pack, explain)
    sla = compute_sla(ev, facts, pack, sev.level)
    triggers = assess_triggers(ev, facts, pack, sev, sla)
    owner = assess_owner(facts, pack)
    missing = assess_missing(facts, pack)
    actions = assess_actions(ev, facts, pack, sev, owner, sla, triggers, missing)
    return Assessment(severity=sev, triggers=triggers, sla=sla, owner=owner, actions=actions, missing=missing,
                      timezone=timezone_of(ev.case.account.timezone, pack))
