"""Verification: the review checklist as code, run on every packet.

Each check returns pass/fail with details a reviewer can act on. A packet that fails any
check is marked `needs_review`; `escalate run --strict` exits non-zero on it.

    claims_grounded       every claim has a source whose quote occurs verbatim in it
    update_public_only    every sentence of the customer update rests on public or policy sources
    update_customer_safe  the customer update passes the pack's language rules (no leaks)
    severity_by_rules     the severity equals the pack's rules evaluated over the evidence facts
    tone_invariant        the same case with angrier or calmer customer messages and another
                          help-desk priority gets the same severity and triggers
    someone_acts_next     owner, next action with a due time, and missing information are stated
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from .assessment import Assessment, evaluate_rules
from .customer_safe import check_for_case
from .evidence import Evidence
from .pack import Pack
from .packet import Check, Claim

CHECKS = ("claims_grounded", "update_public_only", "update_customer_safe", "severity_by_rules", "tone_invariant",
          "someone_acts_next")


@lru_cache(maxsize=4096)
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().lower()


def resolve(ev: Evidence, pack: Pack, ref: str) -> str | None:
    """The full text a ref names, as a reader would look it up."""
    if ref.startswith("handbook:"):
        return pack.handbook
    if ref.startswith("doc:"):
        return pack.docs.get(ref.split(":", 1)[1])
    src = ev.by_ref.get(ref)
    return src.text if src is not None else None


def check_claims(ev: Evidence, pack: Pack, claims: list[Claim]) -> Check:
    bad: list[str] = []
    if not claims:
        bad.append("the packet has no claims")
    normalised: dict[str, str | None] = {}
    for c in claims:
        for s in c.sources:
            if s.ref not in normalised:
                raw = resolve(ev, pack, s.ref)
                normalised[s.ref] = None if raw is None else _norm(raw)
            text = normalised[s.ref]
            if text is None or len(_norm(s.quote)) < 3 or _norm(s.quote) not in text:
                bad.append(f"{s.ref}: quote not found: {s.quote[:80]!r}")
    return Check(key="claims_grounded", passed=not bad, details=bad[:10])


def check_public_only(ev: Evidence, claims: list[Claim]) -> Check:
    bad: list[str] = []
    for c in claims:
        if c.part != "customer_update":
            continue
        for s in c.sources:
            if s.ref.startswith(("handbook:", "doc:")):
                continue
            src = ev.by_ref.get(s.ref)
            if src is None or src.visibility != "public":
                bad.append(f"{c.text[:60]!r} rests on internal source {s.ref}")
    return Check(key="update_public_only", passed=not bad, details=bad)


def check_customer_safe(ev: Evidence, pack: Pack, update: str) -> Check:
    findings = check_for_case(update, pack.language, ev.case, pack.accounts)
    return Check(key="update_customer_safe", passed=not findings,
                 details=[f"{f.rule} ({f.section}): {f.words!r} — {f.message}" for f in findings])


def check_severity(pack: Pack, a: Assessment) -> Check:
    rule = evaluate_rules(pack, a.severity.context)
    ok = rule.level == a.severity.level
    return Check(key="severity_by_rules", passed=ok,
                 details=[] if ok else [f"rules give {rule.level} by {rule.id}, packet says {a.severity.level}"])


def check_tone(level: str, triggers: list[str], variants: list[tuple[str, str, list[str]]]) -> Check:
    bad = [f"{name}: {v_level} {v_trig} vs {level} {triggers}" for name, v_level, v_trig in variants
           if v_level != level or v_trig != triggers]
    return Check(key="tone_invariant", passed=not bad, details=bad)


def check_acts_next(a: Assessment) -> Check:
    bad = []
    if not a.owner.team:
        bad.append("no owner team")
    if not a.actions:
        bad.append("no next action")
    if any(x.due is None for x in a.actions):
        bad.append("a next action has no due time")
    return Check(key="someone_acts_next", passed=not bad, details=bad)


def run_checks(ev: Evidence, pack: Pack, a: Assessment, claims: list[Claim], update: str,
               tone_variants: Callable[[], list[tuple[str, str, list[str]]]] | None) -> list[Check]:
    checks = [
        check_claims(ev, pack, claims),
        check_public_only(ev, claims),
        check_customer_safe(ev, pack, update),
        check_severity(pack, a),
    ]
    if tone_variants is not None:
        checks.append(check_tone(a.severity.level, [t.key for t in a.triggers], tone_variants()))
    checks.append(check_acts_next(a))
    return checks
