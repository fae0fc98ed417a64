"""The review workflow: a pure state machine over one escalation (no database, no I/O).

States and actions (``apply`` raises ReviewError for anything not in this table)::

    action    from                          to          guards (in the order checked, after the role)
    start     draft                         in_review   -
    edit      draft, in_review              in_review   text given, non-blank; the new update is
                                                        re-checked and saved even when it fails
    approve   draft, in_review              approved    every packet check passed; the current update
                                                        (drafted or edited) passes check_update
    reject    draft, in_review, approved    rejected    reason given, non-blank
    override  draft, in_review, approved    in_review   level is one of pack.severity.levels and not
                                                        the current effective level; reason given.
                                                        After approval it withdraws the approval.
    send      approved                      sent        the approved update still passes check_update

Every action first needs the actor's permission (`permissions.allowed` for
``PERMISSION[action]`` on the escalation's account): a role that cannot approve customer
updates cannot start, edit, approve or send; an own_accounts_only role acts only on its
users' accounts. Sent and rejected are final here: a new ticket update re-runs the skill
and the store puts the escalation back to draft.

The caller (the service) builds a ReviewContext from its stored escalation (`context_of`),
calls `apply`, persists `Outcome.changes_at(now)` and writes `Outcome.audit_detail` to the
audit trail. ReviewError carries `status`, an HTTP-like hint: 409 state conflict, 422 a
missing reason/text or a failing check, 403 the role or account.

`diff` and `edit_distance` compare the drafted and the sent customer update (the
``update_edit_distance`` signal).
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from .case import Case
from .customer_safe import Finding, check_for_case
from .errors import EscalationError
from .pack import Pack
from .packet import Packet
from .permissions import PermissionsError
from .permissions import allowed as permission_allowed
from .permissions import restricted as permission_restricted

State = Literal["draft", "in_review", "approved", "sent", "rejected"]
STATES: tuple[str, ...] = ("draft", "in_review", "approved", "sent", "rejected")
ACTIONS: tuple[str, ...] = ("start", "edit", "approve", "reject", "override", "send")

TRANSITIONS: Mapping[str, tuple[frozenset[str], str]] = {
    "start": (frozenset({"draft"}), "in_review"),
    "edit": (frozenset({"draft", "in_review"}), "in_review"),
    "approve": (frozenset({"draft", "in_review"}), "approved"),
    "reject": (frozenset({"draft", "in_review", "approved"}), "rejected"),
    "override": (frozenset({"draft", "in_review", "approved"}), "in_review"),
    "send": (frozenset({"approved"}), "sent"),
}
"""action → (states it may start from, state it leads to)."""

PERMISSION: Mapping[str, str] = {
    "start": "edit", "edit": "edit", "approve": "approve", "reject": "reject", "override": "override",
    "send": "send",
}
"""The `permissions` action each review action needs."""

Direction = Literal["up", "down"]

EXACT_DISTANCE_LIMIT = 20_000
"""`edit_distance` is exact when, after removing the common prefix and suffix, the shorter
differing part is at most this many characters; longer texts get a line-based upper bound."""


class ReviewError(EscalationError):
    """A review action that is not possible now: the message says why and what would make it possible.

    `status` is an HTTP-like hint: 409 state conflict, 422 missing input or failing check,
    403 role or account. `findings` holds the customer-safe findings when a check failed.
    """

    def __init__(self, message: str, status: int, findings: Sequence[Finding] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.findings = tuple(findings)


@dataclass(frozen=True)
class Actor:
    """Who acts: a user name, their pack role and (for own_accounts_only roles) their accounts."""

    name: str
    role: str
    accounts: Collection[str] = frozenset()


@dataclass(frozen=True)
class ReviewContext:
    """What the review rules need to know about one escalation."""

    state: str
    severity: str
    """The severity the engine drafted (the packet's)."""
    severity_override: str | None = None
    failing_checks: tuple[str, ...] = ()
    """Keys of the packet's checks that failed; empty means the checklist passed."""
    draft_update: str = ""
    final_update: str | None = None
    """The reviewer's edited update (or the approved text); None while the draft is untouched."""
    account_id: str | None = None

    def __post_init__(self) -> None:
        if self.state not in STATES:
            raise ValueError(f"unknown review state {self.state!r}; expected one of {', '.join(STATES)}")

    @property
    def effective_severity(self) -> str:
        return self.severity_override or self.severity

    @property
    def packet_checks_passed(self) -> bool:
        return not self.failing_checks

    @property
    def current_update(self) -> str:
        """The customer update as it stands: the edited one, else the draft."""
        return self.final_update if self.final_update is not None else self.draft_update

    @classmethod
    def from_packet(cls, packet: Packet, *, account_id: str | None, state: str = "draft",
                    severity_override: str | None = None, final_update: str | None = None) -> ReviewContext:
        """A context straight from an engine packet (a new escalation unless `state` says otherwise)."""
        return cls(state=state, severity=packet.severity.level, severity_override=severity_override,
                   failing_checks=tuple(c.key for c in packet.checks if not c.passed),
                   draft_update=packet.customer_update, final_update=final_update, account_id=account_id)


class EscalationLike(Protocol):
    """The stored escalation fields `context_of` reads (e.g. store.EscalationRow)."""

    @property
    def state(self) -> str: ...
    @property
    def severity(self) -> str: ...
    @property
    def severity_override(self) -> str | None: ...
    @property
    def draft_update(self) -> str: ...
    @property
    def final_update(self) -> str | None: ...
    @property
    def account_id(self) -> str: ...


def context_of(esc: EscalationLike, packet: Packet | Mapping[str, Any]) -> ReviewContext:
    """The review context of a stored escalation and its current packet (a model or its JSON body)."""
    if isinstance(packet, Packet):
        failing = tuple(c.key for c in packet.checks if not c.passed)
    else:
        failing = tuple(str(c.get("key")) for c in packet.get("checks", []) if not c.get("passed", False))
    return ReviewContext(state=esc.state, severity=esc.severity, severity_override=esc.severity_override,
                         failing_checks=failing, draft_update=esc.draft_update, final_update=esc.final_update,
                         account_id=esc.account_id)


@dataclass(frozen=True)
class Outcome:
    """What a review action decided; the caller persists `changes_at(now)` and audits `audit_detail`."""

    action: str
    actor: str
    state_before: str
    state: str
    changes: Mapping[str, Any]
    """Escalation fields to set (store.REVIEW_FIELDS). A timestamp field set to None is cleared."""
    stamp: tuple[str, ...] = ()
    """Timestamp fields to set to the caller's clock (approved_at, sent_at)."""
    findings: tuple[Finding, ...] = ()
    """Customer-safe findings in the current update (edit: saved anyway; approve/send: none)."""
    update_passes: bool | None = None
    """edit, approve, send: whether the current update passes check_update; None otherwise."""
    direction: Direction | None = None
    """override: "up" (more severe) or "down", for the severity_overrides signal."""
    from_level: str | None = None
    to_level: str | None = None
    edit_distance: int | None = None
    """edit, approve, send: characters changed between the drafted and the current update."""
    audit_detail: dict[str, Any] = field(default_factory=dict)
    """JSON-ready detail for the audit entry and the review row (findings, direction, ...)."""

    def changes_at(self, now: datetime) -> dict[str, Any]:
        """The field changes with the stamped timestamps set to `now`."""
        out = dict(self.changes)
        out.update({k: now for k in self.stamp})
        return out

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary for the API response."""
        out: dict[str, Any] = {"action": self.action, "from": self.state_before, "to": self.state}
        if self.update_passes is not None:
            out["update_passes"] = self.update_passes
            out["findings"] = [asdict(f) for f in self.findings]
        if self.direction is not None:
            out.update(direction=self.direction, from_level=self.from_level, to_level=self.to_level)
        if self.edit_distance is not None:
            out["edit_distance"] = self.edit_distance
        if self.action == "edit" and self.update_passes is False:
            out["note"] = "saved; the escalation cannot be approved until the update passes the customer-safe check"
        return out


# ---------------------------------------------------------------- the rules

_STATE_HINT = {
    "sent": "the update was already sent; a new ticket update re-runs the skill and reopens the review",
    "rejected": "the escalation was rejected; a new ticket update re-runs the skill and reopens the review",
}


def _possible(state: str) -> list[str]:
    return [a for a, (sources, _) in TRANSITIONS.items() if state in sources]


def _state_conflict(action: str, state: str) -> ReviewError:
    sources = sorted(TRANSITIONS[action][0], key=STATES.index)
    hint = _STATE_HINT.get(state) or f"possible now: {', '.join(_possible(state))}"
    extra = ""
    if action == "send":
        extra = "; approve the update first" if state in ("draft", "in_review") else ""
    elif action in ("edit", "approve", "start") and state == "approved":
        extra = "; to change it, override severity (withdraws the approval) or reject it"
    elif action == "start" and state == "in_review":
        extra = "; it is already in review"
    return ReviewError(f"cannot {action} an escalation in state {state!r}: {action} needs state "
                       f"{' or '.join(repr(s) for s in sources)}{extra} ({hint})", 409)


def _authorise(ctx: ReviewContext, action: str, actor: Actor, pack: Pack) -> None:
    perm = PERMISSION[action]
    try:
        if ctx.account_id is None and permission_restricted(pack, actor.role):
            raise ReviewError(f"{actor.name} ({actor.role}) may not {action}: the role is own_accounts_only and "
                              "the escalation's account is unknown", 403)
        decision = permission_allowed(pack, actor.role, perm, account_id=ctx.account_id,
                                      user_accounts=actor.accounts)
    except PermissionsError as e:
        raise ReviewError(f"{actor.name} may not {action}: {e}", 403) from None
    if not decision.allowed:
        raise ReviewError(f"{actor.name} ({actor.role}) may not {action}: {decision.reason}; "
                          f"ask someone whose role may {perm}", 403)


def _required(value: str | None, what: str, action: str) -> str:
    if value is None or not value.strip():
        raise ReviewError(f"{action} needs a {what}: give a non-blank {what}", 422)
    return value


def _findings(text: str, pack: Pack, case: Case | None) -> list[Finding]:
    return check_for_case(text, pack.language, case, pack.accounts)


def describe_findings(findings: Sequence[Finding]) -> str:
    """One line per finding: rule (section) 'words' — message."""
    return "; ".join(f"{f.rule} ({f.section}) {f.words!r} — {f.message}" for f in findings)


def _update_error(action: str, findings: Sequence[Finding]) -> ReviewError:
    return ReviewError(f"cannot {action}: the customer update fails the customer-safe check "
                       f"({len(findings)} finding{'s' if len(findings) != 1 else ''}): {describe_findings(findings)}; "
                       "edit the update to remove or rephrase these words", 422, findings)


def apply(ctx: ReviewContext, action: str, actor: Actor, pack: Pack, *, text: str | None = None,
          level: str | None = None, reason: str | None = None, case: Case | None = None) -> Outcome:
    """Decide one review action; raises ReviewError when it is not possible now.

    `case` (the escalation's case) lets the customer-safe check also catch this case's
    internal names and copied internal notes; without it only the context-free rules run.
    `reason` is required for reject and override and recorded for the others when given.
    """
    if action not in TRANSITIONS:
        raise ReviewError(f"unknown review action {action!r}; use one of {', '.join(ACTIONS)}", 422)
    _authorise(ctx, action, actor, pack)
    sources, target = TRANSITIONS[action]
    if ctx.state not in sources:
        raise _state_conflict(action, ctx.state)
    base: dict[str, Any] = {"from": ctx.state, "to": target}

    def outcome(changes: dict[str, Any], **kw: Any) -> Outcome:
        detail = {**base, **kw.pop("detail", {})}
        return Outcome(action=action, actor=actor.name, state_before=ctx.state, state=target,
                       changes={"state": target, **changes}, audit_detail=detail, **kw)

    if action == "start":
        return outcome({})

    if action == "edit":
        new = _required(text, "text (the new customer update)", "edit")
        found = _findings(new, pack, case)
        dist = edit_distance(ctx.draft_update, new)
        return outcome({"final_update": new}, findings=tuple(found), update_passes=not found, edit_distance=dist,
                       detail={"findings": [asdict(f) for f in found], "update_passes": not found,
                               "edit_distance": dist})

    if action == "approve":
        if not ctx.packet_checks_passed:
            raise ReviewError(f"cannot approve: the packet fails checks {', '.join(ctx.failing_checks)}; a packet "
                              "with failing checks cannot be approved — fix the case or the pack and re-run the "
                              "skill, or reject the escalation", 422)
        current = ctx.current_update
        found = _findings(current, pack, case)
        if found:
            raise _update_error("approve", found)
        dist = edit_distance(ctx.draft_update, current)
        return outcome({"final_update": current}, stamp=("approved_at",), update_passes=True, edit_distance=dist,
                       detail={"update_edited": current != ctx.draft_update, "edit_distance": dist})

    if action == "reject":
        why = _required(reason, "reason", "reject")
        changes: dict[str, Any] = {"approved_at": None} if ctx.state == "approved" else {}
        return outcome(changes, detail={"reason": why, "approval_withdrawn": ctx.state == "approved"})

    if action == "override":
        levels = pack.severity.levels
        if level is None or level not in levels:
            raise ReviewError(f"override needs a severity level of pack {pack.skill.name}: one of "
                              f"{', '.join(levels)} (got {level!r})", 422)
        current_level = ctx.effective_severity
        if level == current_level:
            raise ReviewError(f"override to {level} changes nothing: the severity is already {level}; "
                              f"choose another of {', '.join(x for x in levels if x != level)}", 422)
        why = _required(reason, "reason", "override")
        if current_level not in levels:
            raise ReviewError(f"cannot override: the current severity {current_level!r} is not a level of pack "
                              f"{pack.skill.name}; re-run the skill under this pack first", 409)
        direction: Direction = "up" if levels.index(level) < levels.index(current_level) else "down"
        withdrawn = ctx.state == "approved"
        changes = {"severity_override": level, "override_reason": why}
        if withdrawn:
            changes["approved_at"] = None
        return outcome(changes, direction=direction, from_level=current_level, to_level=level,
                       detail={"from_level": current_level, "to_level": level, "direction": direction,
                               "drafted_level": ctx.severity, "reason": why, "approval_withdrawn": withdrawn})

    # send
    current = ctx.current_update
    found = _findings(current, pack, case)
    if found:
        raise _update_error("send", found)
    dist = edit_distance(ctx.draft_update, current)
    return outcome({"final_update": current}, stamp=("sent_at",), update_passes=True, edit_distance=dist,
                   detail={"edit_distance": dist, "update_edited": current != ctx.draft_update,
                           "diff": diff(ctx.draft_update, current)})


# ---------------------------------------------------------------- comparing drafted and sent updates

def diff(draft: str, final: str) -> list[str]:
    """A unified diff (by line) from the drafted to the final customer update; empty when equal."""
    return list(difflib.unified_diff(draft.splitlines(), final.splitlines(), fromfile="drafted",
                                     tofile="final", lineterm=""))


def edit_distance(a: str, b: str) -> int:
    """Character-level Levenshtein distance (insert, delete, substitute: cost 1 each).

    The common prefix and suffix are removed first. The rest is exact (Myers' bit-parallel
    algorithm, O(n·⌈m/w⌉)) when its shorter side is at most EXACT_DISTANCE_LIMIT characters.
    Beyond that the result is an upper bound: the texts are aligned by line with difflib
    and each changed block costs its own distance (exact when small, else the longer block's
    length). Customer updates are far below the limit, so in practice the result is exact.
    """
    a, b = _trim(a, b)
    if not a or not b:
        return len(a) + len(b)
    if min(len(a), len(b)) <= EXACT_DISTANCE_LIMIT:
        return _myers(a, b)
    return _by_lines(a, b)


def _trim(a: str, b: str) -> tuple[str, str]:
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[-1 - s] == b[-1 - s]:
        s += 1
    return a[p:len(a) - s], b[p:len(b) - s]


def _myers(a: str, b: str) -> int:
    """Exact Levenshtein distance by Myers (1999) bit vectors over the shorter string."""
    if len(a) > len(b):
        a, b = b, a
    m = len(a)
    full = (1 << m) - 1
    top = 1 << (m - 1)
    peq: dict[str, int] = {}
    for i, ch in enumerate(a):
        peq[ch] = peq.get(ch, 0) | (1 << i)
    pv, mv, score = full, 0, m
    for ch in b:
        eq = peq.get(ch, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | (~(xh | pv) & full)
        mh = pv & xh
        if ph & top:
            score += 1
        elif mh & top:
            score -= 1
        ph = ((ph << 1) | 1) & full
        mh = (mh << 1) & full
        pv = mh | (~(xv | ph) & full)
        mv = ph & xv
    return score


def _by_lines(a: str, b: str) -> int:
    """An upper bound for very long texts: align by line, then price each changed block."""
    la, lb = a.splitlines(keepends=True), b.splitlines(keepends=True)
    total = 0
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, la, lb, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        x, y = "".join(la[i1:i2]), "".join(lb[j1:j2])
        total += _myers(x, y) if x and y and min(len(x), len(y)) <= EXACT_DISTANCE_LIMIT else max(len(x), len(y))
    return total
