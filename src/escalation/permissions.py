"""Who may do what: permissions derived from the pack's roles (pure, no I/O).

A user of the service has one role of the pack's skill contract (`skill.yaml`, `roles`).
What a role may do follows from its flags, never from its key — with one exception: the
role keyed ``owner`` (the skill owner, the support operations lead) is the only one that
may change the pack or manage users. A pack without an ``owner`` role still works: then
no one may change the pack or manage users through the service (releases go through
`escalate policy release`). Besides the pack's roles there is one machine principal,
``integration`` (help-desk webhooks), which may only ingest.

Actions (``ACTIONS``) and who may do them:

==============  ===============================================  ==================================
action          allowed for                                      account-restricted roles
==============  ===============================================  ==================================
ingest          every role except own_accounts_only; integration  denied (an import spans accounts)
list            every role                                       their accounts only (caller filters)
read            every role                                       their accounts only
read_internal   can_view_internal                                their accounts only
edit            can_approve_customer_update                      their accounts only
approve         can_approve_customer_update                      their accounts only
send            can_approve_customer_update                      their accounts only
reject          can_approve_customer_update, or owner            their accounts only
override        can_approve_customer_update, or owner            their accounts only
signals         owner; can_view_internal and can_approve         denied (aggregates span accounts)
audit_read      owner; can_view_internal and can_approve         denied (the trail spans accounts)
pack_read       every role                                       allowed (the pack is not account data)
pack_change     owner only                                       denied
users_manage    owner only                                       denied
==============  ===============================================  ==================================

Decisions taken (and why):

- Engineering triage (sees internal packets, cannot approve) may not edit, approve or send
  the customer update, nor reject it or override severity: overriding severity changes the
  SLA clock and the customer's expectations, so it stays with those who answer for the
  update (roles that can approve) and the owner. Triage reads everything internal instead.
- ``signals`` and ``audit_read`` need both flags (support, CSMs, the owner): they show data
  of every account, so own_accounts_only roles are denied even if their flags would allow.
- ``integration`` may only ``ingest``; it is not a pack role and reads nothing.

Account restriction: for an own_accounts_only role, an action on an account (``account_id``
given) is allowed only if the account is in ``user_accounts``. With no ``account_id`` the
decision is "allowed on their own accounts" (``Decision.restricted`` is True): the caller
must then filter (see `restricted`). Other roles see every account.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from .errors import EscalationError
from .pack import Pack, Role

OWNER_ROLE = "owner"
"""The key of the skill owner's role: the only one that may change the pack and manage users."""
INTEGRATION = "integration"
"""The machine principal of help-desk webhooks; not a pack role, it may only ingest."""

INGEST = "ingest"
LIST = "list"
READ = "read"
READ_INTERNAL = "read_internal"
EDIT = "edit"
APPROVE = "approve"
REJECT = "reject"
OVERRIDE = "override"
SEND = "send"
SIGNALS = "signals"
AUDIT_READ = "audit_read"
PACK_READ = "pack_read"
PACK_CHANGE = "pack_change"
USERS_MANAGE = "users_manage"

ACTIONS: tuple[str, ...] = (INGEST, LIST, READ, READ_INTERNAL, EDIT, APPROVE, REJECT, OVERRIDE, SEND, SIGNALS,
                            AUDIT_READ, PACK_READ, PACK_CHANGE, USERS_MANAGE)
"""Every action the service authorises, in the order of the docs table."""

ACCOUNT_ACTIONS = frozenset({LIST, READ, READ_INTERNAL, EDIT, APPROVE, REJECT, OVERRIDE, SEND})
"""Actions on one account's escalations: own_accounts_only roles may do them on their accounts only."""
_CROSS_ACCOUNT = frozenset({INGEST, SIGNALS, AUDIT_READ, PACK_CHANGE, USERS_MANAGE})
"""Actions whose data spans accounts: never for own_accounts_only roles."""


class PermissionsError(EscalationError, ValueError):
    """An unknown role or action; `status` is an HTTP-like hint (403 role, 400 action)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Decision:
    """Whether a role may do an action, and why (the flag or rule that decides)."""

    allowed: bool
    reason: str
    restricted: bool = False
    """Allowed only on the user's own accounts (an own_accounts_only role, no account given)."""


def roles(pack: Pack) -> list[str]:
    """The principals `allowed` knows: the pack's role keys, then the integration principal."""
    return [r.key for r in pack.skill.roles] + [INTEGRATION]


def _role(pack: Pack, role_key: str) -> Role | None:
    """The pack role, or None for the integration principal; an unknown key is an error."""
    found = [r for r in pack.skill.roles if r.key == role_key]
    if role_key == INTEGRATION:
        if found:
            raise PermissionsError(f"pack {pack.skill.name}: role key {INTEGRATION!r} is reserved for the webhook "
                                   "machine principal; rename the role in skill.yaml", 403)
        return None
    if not found:
        raise PermissionsError(f"unknown role {role_key!r}; pack {pack.skill.name} has roles "
                               f"{', '.join(roles(pack))}", 403)
    return found[0]


def _check_action(action: str) -> None:
    if action not in ACTIONS:
        raise PermissionsError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}", 400)


def restricted(pack: Pack, role_key: str) -> bool:
    """True when the role sees only its users' own accounts (own_accounts_only)."""
    role = _role(pack, role_key)
    return role is not None and role.own_accounts_only


def _by_role(role: Role, action: str) -> Decision:
    """The decision from the role's flags alone (before the account check)."""
    owner = role.key == OWNER_ROLE
    approve = role.can_approve_customer_update
    internal = role.can_view_internal
    if role.own_accounts_only and action in _CROSS_ACCOUNT:
        return Decision(False, f"role {role.key!r} is own_accounts_only and {action} spans every account")
    if action in (LIST, READ, PACK_READ):
        return Decision(True, f"every role may {action}")
    if action == INGEST:
        return Decision(True, "roles that are not own_accounts_only may ingest")
    if action == READ_INTERNAL:
        return Decision(internal, "can_view_internal" if internal else f"role {role.key!r} lacks can_view_internal")
    if action in (EDIT, APPROVE, SEND):
        return Decision(approve, "can_approve_customer_update" if approve
                        else f"role {role.key!r} lacks can_approve_customer_update")
    if action in (REJECT, OVERRIDE):
        if approve:
            return Decision(True, "can_approve_customer_update")
        if owner:
            return Decision(True, f"the {OWNER_ROLE!r} role may {action}")
        return Decision(False, f"role {role.key!r} lacks can_approve_customer_update (and is not {OWNER_ROLE!r})")
    if action in (SIGNALS, AUDIT_READ):
        if owner:
            return Decision(True, f"the {OWNER_ROLE!r} role may {action}")
        if internal and approve:
            return Decision(True, "can_view_internal and can_approve_customer_update")
        missing = [f for f, v in (("can_view_internal", internal), ("can_approve_customer_update", approve)) if not v]
        return Decision(False, f"role {role.key!r} lacks {' and '.join(missing)} (and is not {OWNER_ROLE!r})")
    # PACK_CHANGE, USERS_MANAGE
    if owner:
        return Decision(True, f"only the {OWNER_ROLE!r} role may {action}")
    return Decision(False, f"only the {OWNER_ROLE!r} role (the skill owner) may {action}")


def allowed(pack: Pack, role_key: str, action: str, *, account_id: str | None = None,
            user_accounts: Collection[str] = ()) -> Decision:
    """May a user with this role do this action (on this account, given the user's accounts)?

    Raises PermissionsError for a role the pack does not declare or an unknown action.
    """
    _check_action(action)
    role = _role(pack, role_key)
    if role is None:  # the integration principal
        if action == INGEST:
            return Decision(True, f"the {INTEGRATION!r} principal may ingest")
        return Decision(False, f"the {INTEGRATION!r} principal (webhooks) may only ingest")
    decision = _by_role(role, action)
    if not decision.allowed or not role.own_accounts_only or action not in ACCOUNT_ACTIONS:
        return decision
    if account_id is None:
        return Decision(True, f"{decision.reason}; on their own accounts only (own_accounts_only)", restricted=True)
    if account_id not in user_accounts:
        return Decision(False, f"role {role.key!r} is own_accounts_only and account {account_id!r} is not one "
                               "of this user's accounts")
    return Decision(True, f"{decision.reason}; account {account_id!r} is one of this user's accounts")


def matrix(pack: Pack) -> dict[str, dict[str, bool]]:
    """role → action → allowed, for an account the user owns (docs, tests, GET /pack).

    Rows are the pack's roles in declaration order, then `integration`; columns follow ACTIONS.
    """
    out: dict[str, dict[str, bool]] = {}
    for key in roles(pack):
        out[key] = {a: allowed(pack, key, a, account_id="*", user_accounts=("*",)).allowed for a in ACTIONS}
    return out


def who_may(pack: Pack, action: str) -> list[str]:
    """The principals that may do an action (empty: no one, e.g. pack_change without an owner role)."""
    _check_action(action)
    return [role for role, row in matrix(pack).items() if row[action]]
