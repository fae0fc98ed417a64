"""Permissions: derived from the pack's role flags; only the owner changes the pack."""

from __future__ import annotations

from pathlib import Path

import pytest

from escalation import permissions
from escalation.errors import EscalationError
from escalation.pack import Pack, Role, load_pack
from escalation.permissions import ACTIONS, INTEGRATION, Decision, PermissionsError, allowed, matrix, who_may

PACKS = Path(permissions.__file__).parent / "packs"


def _with_roles(pack: Pack, roles: list[Role]) -> Pack:
    return pack.model_copy(update={"skill": pack.skill.model_copy(update={"roles": roles})})


def _grid(text: str) -> dict[str, dict[str, bool]]:
    """Parse an expected table: a header of roles, then one row per action of Y / - cells."""
    lines = [ln.split() for ln in text.strip().splitlines()]
    header, rows = lines[0], lines[1:]
    assert [r[0] for r in rows] == list(ACTIONS)
    out: dict[str, dict[str, bool]] = {role: {} for role in header}
    for action, *cells in rows:
        assert len(cells) == len(header) and set(cells) <= {"Y", "-"}, action
        for role, cell in zip(header, cells, strict=True):
            out[role][action] = cell == "Y"
    return out


# Every Lumen role × every action, for an account the user owns. Y = allowed, - = denied.
LUMEN_EXPECTED = _grid("""
              owner  support  success  engineering_triage  account_owner  integration
ingest        Y      Y        Y        Y                   -              Y
list          Y      Y        Y        Y                   Y              -
read          Y      Y        Y        Y                   Y              -
read_internal Y      Y        Y        Y                   Y              -
edit          Y      Y        Y        -                   Y              -
approve       Y      Y        Y        -                   Y              -
reject        Y      Y        Y        -                   Y              -
override      Y      Y        Y        -                   Y              -
send          Y      Y        Y        -                   Y              -
signals       Y      Y        Y        -                   -              -
audit_read    Y      Y        Y        -                   -              -
pack_read     Y      Y        Y        Y                   Y              -
pack_change   Y      -        -        -                   -              -
users_manage  Y      -        -        -                   -              -
""")


def test_lumen_matrix_is_exactly_the_expected_table(lumen: Pack) -> None:
    got = matrix(lumen)
    assert list(got) == list(LUMEN_EXPECTED)  # pack roles in order, then the machine principal
    for role, row in LUMEN_EXPECTED.items():
        assert list(got[role]) == list(ACTIONS)
        for action, expected in row.items():
            assert got[role][action] is expected, (role, action)


@pytest.mark.parametrize("role", list(LUMEN_EXPECTED))
@pytest.mark.parametrize("action", ACTIONS)
def test_every_decision_matches_the_table_and_says_why(lumen: Pack, role: str, action: str) -> None:
    d = allowed(lumen, role, action, account_id="acc-1018", user_accounts={"acc-1018"})
    assert isinstance(d, Decision)
    assert d.allowed is LUMEN_EXPECTED[role][action]
    assert d.reason.strip()


@pytest.mark.parametrize(("role", "action", "words"), [
    ("engineering_triage", "approve", "can_approve_customer_update"),
    ("engineering_triage", "edit", "can_approve_customer_update"),
    ("engineering_triage", "send", "can_approve_customer_update"),
    ("engineering_triage", "override", "can_approve_customer_update"),
    ("engineering_triage", "signals", "can_approve_customer_update"),
    ("support", "pack_change", "owner"),
    ("success", "users_manage", "owner"),
    ("account_owner", "ingest", "own_accounts_only"),
    ("account_owner", "audit_read", "own_accounts_only"),
    ("integration", "read", "may only ingest"),
])
def test_denial_reason_names_the_flag_or_rule(lumen: Pack, role: str, action: str, words: str) -> None:
    d = allowed(lumen, role, action, account_id="acc-1018", user_accounts={"acc-1018"})
    assert not d.allowed
    assert words in d.reason


# ---------------------------------------------------------------- account restriction

@pytest.mark.parametrize("action", sorted(permissions.ACCOUNT_ACTIONS))
def test_account_owner_acts_only_on_their_accounts(lumen: Pack, action: str) -> None:
    mine = {"acc-1018", "acc-1014"}
    own = allowed(lumen, "account_owner", action, account_id="acc-1018", user_accounts=mine)
    other = allowed(lumen, "account_owner", action, account_id="acc-1019", user_accounts=mine)
    nobody = allowed(lumen, "account_owner", action, account_id="acc-1018")
    assert own.allowed and not own.restricted
    assert not other.allowed and "acc-1019" in other.reason and "own_accounts_only" in other.reason
    assert not nobody.allowed


def test_account_owner_without_account_is_allowed_but_restricted(lumen: Pack) -> None:
    d = allowed(lumen, "account_owner", "list")
    assert d.allowed and d.restricted and "own accounts" in d.reason
    assert permissions.restricted(lumen, "account_owner")


@pytest.mark.parametrize("role", ["owner", "support", "success", "engineering_triage"])
def test_other_roles_see_every_account(lumen: Pack, role: str) -> None:
    assert not permissions.restricted(lumen, role)
    for account in ("acc-1001", "acc-1018", "acc-1019"):
        d = allowed(lumen, role, "read", account_id=account, user_accounts=())
        assert d.allowed and not d.restricted
        assert allowed(lumen, role, "read_internal", account_id=account).allowed


def test_integration_may_only_ingest(lumen: Pack) -> None:
    assert not permissions.restricted(lumen, INTEGRATION)
    assert [a for a in ACTIONS if allowed(lumen, INTEGRATION, a, account_id="acc-1018").allowed] == ["ingest"]


# ---------------------------------------------------------------- errors

def test_unknown_role_is_a_clear_error(lumen: Pack) -> None:
    with pytest.raises(PermissionsError) as e:
        allowed(lumen, "janitor", "read")
    assert "unknown role 'janitor'" in str(e.value) and "engineering_triage" in str(e.value)
    assert e.value.status == 403
    assert isinstance(e.value, EscalationError)
    with pytest.raises(PermissionsError):
        permissions.restricted(lumen, "janitor")


def test_unknown_action_is_a_clear_error(lumen: Pack) -> None:
    with pytest.raises(PermissionsError) as e:
        allowed(lumen, "owner", "delete_everything")
    assert "unknown action 'delete_everything'" in str(e.value) and "pack_change" in str(e.value)
    assert e.value.status == 400
    with pytest.raises(PermissionsError):
        who_may(lumen, "delete_everything")


def test_a_pack_role_named_integration_is_refused(lumen: Pack) -> None:
    pack = _with_roles(lumen, [*lumen.skill.roles, Role(key="integration", description="clash")])
    with pytest.raises(PermissionsError, match="reserved"):
        allowed(pack, "integration", "ingest")


# ---------------------------------------------------------------- derived from flags, not keys

def test_permissions_follow_flags_not_role_keys(lumen: Pack) -> None:
    pack = _with_roles(lumen, [
        Role(key="owner", description="lead", can_approve_customer_update=True),
        Role(key="agents", description="like support", can_approve_customer_update=True),
        Role(key="readers", description="no internal, no approval", can_view_internal=False),
        Role(key="engineering_triage", description="now may approve", can_approve_customer_update=True),
    ])
    m = matrix(pack)
    assert m["agents"] == LUMEN_EXPECTED["support"]
    assert m["engineering_triage"] == LUMEN_EXPECTED["support"]
    assert {a for a, ok in m["readers"].items() if ok} == {"ingest", "list", "read", "pack_read"}
    assert "can_view_internal" in allowed(pack, "readers", "read_internal").reason


def test_owner_without_approval_flag_still_rejects_overrides_and_changes_the_pack(lumen: Pack) -> None:
    pack = _with_roles(lumen, [Role(key="owner", description="lead", can_view_internal=False)])
    row = matrix(pack)["owner"]
    assert {a for a, ok in row.items() if not ok} == {"read_internal", "edit", "approve", "send"}


# ---------------------------------------------------------------- the other bundled packs

@pytest.mark.parametrize(("name", "approvers", "non_approver"), [
    ("gitlab", ["owner", "support", "support_manager"], "engineering_triage"),
    ("pagerduty", ["owner", "customer_liaison", "incident_commander"], "service_team"),
])
def test_other_bundled_packs_have_an_owner_who_can_change_the_pack(name: str, approvers: list[str],
                                                                   non_approver: str) -> None:
    pack = load_pack(PACKS / name)
    m = matrix(pack)
    assert list(m) == [*approvers, non_approver, INTEGRATION]
    assert who_may(pack, "pack_change") == ["owner"]
    assert who_may(pack, "users_manage") == ["owner"]
    assert who_may(pack, "approve") == approvers
    assert who_may(pack, "override") == approvers
    assert who_may(pack, "ingest") == [*approvers, non_approver, INTEGRATION]
    assert m[non_approver] == LUMEN_EXPECTED["engineering_triage"]
    for role in approvers[1:]:
        assert m[role] == LUMEN_EXPECTED["support"]
    assert m["owner"] == LUMEN_EXPECTED["owner"]


def test_a_pack_without_owner_role_works_and_no_one_changes_the_pack(lumen: Pack) -> None:
    pack = _with_roles(lumen, [r for r in lumen.skill.roles if r.key != "owner"])
    m = matrix(pack)
    assert "owner" not in m
    assert who_may(pack, "pack_change") == []
    assert who_may(pack, "users_manage") == []
    assert not any(row["pack_change"] or row["users_manage"] for row in m.values())
    assert m["support"] == LUMEN_EXPECTED["support"]
    assert who_may(pack, "signals") == ["support", "success"]
