"""The review state machine: transitions, guards, signals, and the drafted-vs-sent comparison."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from escalation import review, store
from escalation.case import Case, load_case
from escalation.customer_safe import context_for_case
from escalation.engine import run
from escalation.errors import EscalationError
from escalation.pack import Pack
from escalation.packet import Packet
from escalation.review import ACTIONS, STATES, Actor, Outcome, ReviewContext, ReviewError, apply, diff, edit_distance

SRC = Path(review.__file__).parent
LEAK_HOST = "db-3.internal.lumen.io"
CLEAN = "Thank you for your patience. Our engineers are investigating and we will update you within the hour."

SUPPORT = Actor(name="ann", role="support")
TRIAGE = Actor(name="eng", role="engineering_triage")
OWNER_OF_CASE = Actor(name="olga", role="account_owner", accounts=frozenset({"acc-1018"}))
OWNER_OF_OTHER = Actor(name="otto", role="account_owner", accounts=frozenset({"acc-1019"}))


@pytest.fixture(scope="module")
def case() -> Case:
    return load_case(SRC / "demo" / "01-nakatomi-api-503-incident.case.json")


@pytest.fixture(scope="module")
def packet(case: Case, lumen: Pack) -> Packet:
    p = run(case, lumen)
    assert p.severity.level == "Sev1" and all(c.passed for c in p.checks)
    return p


def ctx_in(packet: Packet, state: str, **kw: object) -> ReviewContext:
    base = ReviewContext.from_packet(packet, account_id="acc-1018", state=state)
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


def act(ctx: ReviewContext, action: str, pack: Pack, case: Case, *, by: Actor = SUPPORT, text: str | None = None,
        level: str | None = None, reason: str | None = None) -> Outcome:
    return apply(ctx, action, by, pack, case=case, text=text, level=level, reason=reason)


def act_valid(ctx: ReviewContext, action: str, pack: Pack, case: Case, *, by: Actor = SUPPORT) -> Outcome:
    """The action with valid input (VALID_INPUT): only the state or the role can refuse it."""
    inp = VALID_INPUT[action]
    return act(ctx, action, pack, case, by=by, text=inp.get("text"), level=inp.get("level"),
               reason=inp.get("reason"))


# ---------------------------------------------------------------- every (state, action) pair

VALID_INPUT: dict[str, dict[str, str]] = {
    "start": {}, "edit": {"text": CLEAN}, "approve": {}, "reject": {"reason": "duplicate of ticket 4410"},
    "override": {"level": "Sev2", "reason": "only one region affected"}, "send": {},
}

# state → action → the state it leads to, or 409 (state conflict). Inputs are valid (VALID_INPUT).
TRANSITION_TABLE: dict[str, dict[str, str | int]] = {
    "draft":     {"start": "in_review", "edit": "in_review", "approve": "approved", "reject": "rejected",
                  "override": "in_review", "send": 409},
    "in_review": {"start": 409, "edit": "in_review", "approve": "approved", "reject": "rejected",
                  "override": "in_review", "send": 409},
    "approved":  {"start": 409, "edit": 409, "approve": 409, "reject": "rejected", "override": "in_review",
                  "send": "sent"},
    "sent":      {"start": 409, "edit": 409, "approve": 409, "reject": 409, "override": 409, "send": 409},
    "rejected":  {"start": 409, "edit": 409, "approve": 409, "reject": 409, "override": 409, "send": 409},
}


def test_transition_table_covers_every_pair() -> None:
    assert list(TRANSITION_TABLE) == list(STATES)
    assert all(list(row) == list(ACTIONS) for row in TRANSITION_TABLE.values())


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", ACTIONS)
def test_every_state_action_pair(packet: Packet, lumen: Pack, case: Case, state: str, action: str) -> None:
    expected = TRANSITION_TABLE[state][action]
    ctx = ctx_in(packet, state)
    if isinstance(expected, int):
        with pytest.raises(ReviewError) as e:
            act_valid(ctx, action, lumen, case)
        assert e.value.status == expected
        msg = str(e.value)
        assert f"cannot {action}" in msg and repr(state) in msg
        if state in ("sent", "rejected"):
            assert "re-runs the skill" in msg  # what would make it possible
        else:
            assert "possible now:" in msg
        return
    out = act_valid(ctx, action, lumen, case)
    assert (out.state_before, out.state) == (state, expected)
    assert out.changes["state"] == expected
    assert out.audit_detail["from"] == state and out.audit_detail["to"] == expected
    assert set(out.changes) | set(out.stamp) <= store.REVIEW_FIELDS
    json.dumps(out.audit_detail)
    json.dumps(out.summary())


def test_state_conflict_messages_say_what_to_do(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError, match="approve the update first"):
        act(ctx_in(packet, "in_review"), "send", lumen, case)
    with pytest.raises(ReviewError, match="already in review"):
        act(ctx_in(packet, "in_review"), "start", lumen, case)
    with pytest.raises(ReviewError, match="override severity .withdraws the approval. or reject"):
        act(ctx_in(packet, "approved"), "edit", lumen, case, text=CLEAN)


def test_unknown_action_and_state(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError) as e:
        act(ctx_in(packet, "draft"), "publish", lumen, case)
    assert e.value.status == 422 and "start, edit, approve" in str(e.value)
    with pytest.raises(ValueError, match="unknown review state"):
        ctx_in(packet, "archived")


def test_review_error_is_an_escalation_error() -> None:
    assert issubclass(ReviewError, EscalationError)
    assert ReviewError("x", 409).status == 409


# ---------------------------------------------------------------- approve guards

def test_failing_packet_checks_block_approve(packet: Packet, lumen: Pack, case: Case) -> None:
    ctx = ctx_in(packet, "in_review", failing_checks=("claims_grounded", "severity_by_rules"))
    assert not ctx.packet_checks_passed
    with pytest.raises(ReviewError) as e:
        act(ctx, "approve", lumen, case)
    assert e.value.status == 422
    assert "claims_grounded, severity_by_rules" in str(e.value) and "re-run" in str(e.value)


@pytest.mark.parametrize("leak", [LEAK_HOST, "10.20.30.40"])
def test_leaking_edit_is_saved_but_blocks_approve_until_fixed(packet: Packet, lumen: Pack, case: Case,
                                                              leak: str) -> None:
    leaking = f"We restarted {leak} and the API should recover shortly."
    edited = act(ctx_in(packet, "draft"), "edit", lumen, case, text=leaking)
    assert edited.state == "in_review"
    assert edited.changes["final_update"] == leaking  # saved, so the reviewer can keep working
    assert edited.update_passes is False
    assert [f.words for f in edited.findings] == [leak]
    assert edited.audit_detail["findings"][0]["words"] == leak
    assert edited.audit_detail["findings"][0]["rule"] in ("hostname", "ip_address")
    assert "cannot be approved" in edited.summary()["note"]

    ctx = ctx_in(packet, "in_review", final_update=edited.changes["final_update"])
    with pytest.raises(ReviewError) as e:
        act(ctx, "approve", lumen, case)
    assert e.value.status == 422
    assert leak in str(e.value) and "customer-safe" in str(e.value) and "edit the update" in str(e.value)
    assert [f.words for f in e.value.findings] == [leak]

    fixed = act(ctx, "edit", lumen, case, text=CLEAN)
    assert fixed.update_passes is True and fixed.findings == ()
    approved = act(ctx_in(packet, "in_review", final_update=fixed.changes["final_update"]), "approve", lumen, case)
    assert approved.state == "approved"
    assert approved.changes["final_update"] == CLEAN
    assert approved.stamp == ("approved_at",)
    assert approved.audit_detail["update_edited"] is True
    assert approved.edit_distance == edit_distance(packet.customer_update, CLEAN) > 0


def test_edit_check_uses_the_case_context(packet: Packet, lumen: Pack, case: Case) -> None:
    """With the case, names seen only in internal notes are caught too; without it only the patterns run."""
    internal_only = sorted(context_for_case(case, other_customers=[
        a.name for a in lumen.accounts if a.id != case.account.id]).blocked_names)
    name = next(n for n in internal_only if len(n.split()) >= 2)
    text = f"{name} is looking into this for you."
    with_case = act(ctx_in(packet, "draft"), "edit", lumen, case, text=text)
    without_case = apply(ctx_in(packet, "draft"), "edit", SUPPORT, lumen, text=text)
    assert with_case.update_passes is False and without_case.update_passes is True


def test_approving_the_untouched_draft_records_it_as_final(packet: Packet, lumen: Pack, case: Case) -> None:
    out = act(ctx_in(packet, "draft"), "approve", lumen, case)
    assert out.changes["final_update"] == packet.customer_update
    assert out.edit_distance == 0 and out.audit_detail["update_edited"] is False
    now = datetime(2026, 8, 12, 17, 30, tzinfo=UTC)
    assert out.changes_at(now) == {"state": "approved", "final_update": packet.customer_update, "approved_at": now}


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_edit_needs_text(packet: Packet, lumen: Pack, case: Case, text: str | None) -> None:
    with pytest.raises(ReviewError, match="edit needs a text") as e:
        act(ctx_in(packet, "in_review"), "edit", lumen, case, text=text)
    assert e.value.status == 422


# ---------------------------------------------------------------- roles and accounts

@pytest.mark.parametrize("action", ["start", "edit", "approve", "send"])
def test_engineering_triage_cannot_touch_the_customer_update(packet: Packet, lumen: Pack, case: Case,
                                                             action: str) -> None:
    state = "approved" if action == "send" else "in_review"
    with pytest.raises(ReviewError) as e:
        act_valid(ctx_in(packet, state), action, lumen, case, by=TRIAGE)
    assert e.value.status == 403 and "can_approve_customer_update" in str(e.value)


def test_account_owner_may_approve_only_their_accounts(packet: Packet, lumen: Pack, case: Case) -> None:
    ctx = ctx_in(packet, "in_review")
    assert act(ctx, "approve", lumen, case, by=OWNER_OF_CASE).state == "approved"
    with pytest.raises(ReviewError) as e:
        act(ctx, "approve", lumen, case, by=OWNER_OF_OTHER)
    assert e.value.status == 403 and "acc-1018" in str(e.value) and "own_accounts_only" in str(e.value)
    with pytest.raises(ReviewError) as e:
        act(dataclasses.replace(ctx, account_id=None), "approve", lumen, case, by=OWNER_OF_CASE)
    assert e.value.status == 403 and "account is unknown" in str(e.value)


def test_unknown_role_is_forbidden(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError) as e:
        act(ctx_in(packet, "in_review"), "approve", lumen, case, by=Actor(name="x", role="janitor"))
    assert e.value.status == 403 and "unknown role 'janitor'" in str(e.value)


def test_role_is_checked_before_state(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError) as e:
        act(ctx_in(packet, "sent"), "approve", lumen, case, by=TRIAGE)
    assert e.value.status == 403


# ---------------------------------------------------------------- reject and override

@pytest.mark.parametrize("reason", [None, "", "  "])
def test_reject_and_override_need_a_reason(packet: Packet, lumen: Pack, case: Case, reason: str | None) -> None:
    with pytest.raises(ReviewError, match="reject needs a reason") as e:
        act(ctx_in(packet, "in_review"), "reject", lumen, case, reason=reason)
    assert e.value.status == 422
    with pytest.raises(ReviewError, match="override needs a reason") as e:
        act(ctx_in(packet, "in_review"), "override", lumen, case, level="Sev2", reason=reason)
    assert e.value.status == 422


def test_reject_after_approval_clears_the_approval(packet: Packet, lumen: Pack, case: Case) -> None:
    out = act(ctx_in(packet, "approved"), "reject", lumen, case, reason="customer withdrew the ticket")
    assert out.changes == {"state": "rejected", "approved_at": None}
    assert out.audit_detail["approval_withdrawn"] is True and out.audit_detail["reason"]


@pytest.mark.parametrize(("drafted", "override", "level", "direction"), [
    ("Sev1", None, "Sev2", "down"),
    ("Sev1", None, "Sev4", "down"),
    ("Sev3", None, "Sev1", "up"),
    ("Sev4", None, "Sev3", "up"),
    ("Sev4", "Sev2", "Sev3", "down"),   # relative to the effective (overridden) level
    ("Sev2", "Sev3", "Sev2", "up"),     # back to the drafted level
])
def test_override_direction(packet: Packet, lumen: Pack, case: Case, drafted: str, override: str | None,
                            level: str, direction: str) -> None:
    ctx = ctx_in(packet, "in_review", severity=drafted, severity_override=override)
    out = act(ctx, "override", lumen, case, level=level, reason="reviewer judgement")
    assert out.direction == direction
    assert (out.from_level, out.to_level) == (override or drafted, level)
    assert out.changes == {"state": "in_review", "severity_override": level, "override_reason": "reviewer judgement"}
    assert out.audit_detail["direction"] == direction and out.audit_detail["drafted_level"] == drafted
    assert out.summary()["direction"] == direction


def test_levels_are_ordered_most_severe_first(lumen: Pack) -> None:
    assert lumen.severity.levels == ["Sev1", "Sev2", "Sev3", "Sev4"]


def test_override_after_approval_withdraws_it(packet: Packet, lumen: Pack, case: Case) -> None:
    out = act(ctx_in(packet, "approved"), "override", lumen, case, level="Sev2", reason="one region only")
    assert out.state == "in_review"
    assert out.changes["approved_at"] is None
    assert out.audit_detail["approval_withdrawn"] is True


@pytest.mark.parametrize(("level", "words"), [
    (None, "one of Sev1, Sev2, Sev3, Sev4"),
    ("P1", "one of Sev1, Sev2, Sev3, Sev4"),
    ("Sev1", "already Sev1"),
])
def test_override_level_must_exist_and_differ(packet: Packet, lumen: Pack, case: Case, level: str | None,
                                             words: str) -> None:
    with pytest.raises(ReviewError, match=words) as e:
        act(ctx_in(packet, "in_review"), "override", lumen, case, level=level, reason="why not")
    assert e.value.status == 422


def test_engineering_triage_may_not_override(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError) as e:
        act(ctx_in(packet, "in_review"), "override", lumen, case, by=TRIAGE, level="Sev2", reason="r")
    assert e.value.status == 403


# ---------------------------------------------------------------- send

def test_send_stamps_and_reports_the_edit(packet: Packet, lumen: Pack, case: Case) -> None:
    out = act(ctx_in(packet, "approved", final_update=CLEAN), "send", lumen, case)
    assert out.state == "sent" and out.stamp == ("sent_at",)
    assert out.changes == {"state": "sent", "final_update": CLEAN}
    assert out.edit_distance == edit_distance(packet.customer_update, CLEAN)
    assert out.audit_detail["diff"] == diff(packet.customer_update, CLEAN)
    assert out.audit_detail["update_edited"] is True


def test_send_rechecks_the_update(packet: Packet, lumen: Pack, case: Case) -> None:
    with pytest.raises(ReviewError, match="cannot send: the customer update fails") as e:
        act(ctx_in(packet, "approved", final_update=f"See {LEAK_HOST}."), "send", lumen, case)
    assert e.value.status == 422


# ---------------------------------------------------------------- building the context

def test_context_of_a_stored_escalation(packet: Packet) -> None:
    esc = SimpleNamespace(state="in_review", severity="Sev1", severity_override="Sev2", draft_update="d",
                          final_update=None, account_id="acc-1018")
    body = packet.model_dump(mode="json", by_alias=True)
    body["checks"][1]["passed"] = False
    ctx = review.context_of(esc, body)
    assert ctx.failing_checks == (body["checks"][1]["key"],) and not ctx.packet_checks_passed
    assert ctx.effective_severity == "Sev2" and ctx.current_update == "d" and ctx.account_id == "acc-1018"
    assert review.context_of(esc, packet).packet_checks_passed


def test_permission_map_covers_every_action() -> None:
    assert set(review.PERMISSION) == set(ACTIONS) == set(review.TRANSITIONS)
    assert set(ACTIONS) == set(store.REVIEW_ACTIONS)
    assert set(STATES) == set(store.STATES)


# ---------------------------------------------------------------- edit distance and diff

def _levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


@pytest.mark.parametrize(("a", "b", "d"), [
    ("", "", 0), ("abc", "", 3), ("", "abc", 3), ("kitten", "sitting", 3), ("flaw", "lawn", 2),
    ("same text", "same text", 0), ("Grüße", "Grusse", 3), ("ab", "ba", 2),
])
def test_edit_distance_known_values(a: str, b: str, d: int) -> None:
    assert edit_distance(a, b) == d == edit_distance(b, a)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abc \n", max_size=60), st.text(alphabet="abcd\n", max_size=60))
def test_edit_distance_equals_levenshtein(a: str, b: str) -> None:
    assert edit_distance(a, b) == _levenshtein(a, b)


def test_edit_distance_long_texts(monkeypatch: pytest.MonkeyPatch) -> None:
    base = "\n".join(f"line {i}: the sync job finished and exported the rows" for i in range(120))
    changed = base.replace("line 60:", "row 60:").replace("line 7:", "LINE 7:")
    exact = _levenshtein(base, changed)
    assert edit_distance(base, changed) == exact
    monkeypatch.setattr(review, "EXACT_DISTANCE_LIMIT", 100)  # force the line-based path
    approx = edit_distance(base, changed)
    assert approx == exact == 8  # localised changes stay exact
    assert edit_distance(base, "x" * 50 + "\n" + base[-300:]) >= _levenshtein(base, "x" * 50 + "\n" + base[-300:])


def test_diff() -> None:
    assert diff("same\ntext", "same\ntext") == []
    assert diff("Hello,\nwe are looking.\nThanks", "Hello,\nwe fixed it.\nThanks") == [
        "--- drafted", "+++ final", "@@ -1,3 +1,3 @@", " Hello,", "-we are looking.", "+we fixed it.", " Thanks"]
