"""The service's endpoint × role permission matrix, on SQLite and PostgreSQL.

Every endpoint is called by every principal: the five Lumen roles (the account owner once
with the escalation's account among theirs, once without it), the `integration` webhook
principal, a request without a key and one with an unknown key. That is

    16 endpoints × 9 principals = 144 cells, each its own test id, per database

(`test_the_matrix_has_one_cell_per_endpoint_and_principal` checks and prints the size).

The expected table below is written out by hand from the table in `escalation.permissions`
(``test_the_written_table_agrees_with_the_permissions_module`` checks that the two agree),
so the suite fails if the service stops checking a permission or checks the wrong one. A
denied call answers 403 (401 without a known key) and changes nothing: the stored cases,
packets, reviews, escalations and the audit trail are the same before and after. An allowed
call answers with its success status and does what it says (the audit trail names the caller).

One app and one database serve all cells of a database (module-scoped); cells that change an
escalation each get a fresh escalation (a new ticket), so the order of the tests does not matter.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from escalation import permissions, store
from escalation.service import Settings, create_app
from escalation.store import AuditRow, CaseRow, EscalationRow, PacketRow, ReviewRow
from pg import fresh_pg_database

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "escalation" / "demo"
FIX = ROOT / "tests" / "connectors" / "fixtures"

OWN_ACCOUNT = "acc-1018"  # Nakatomi Trading: the account of demo case 01, which every fresh escalation copies
OTHER_ACCOUNT = "acc-1014"  # Massive Dynamic (demo case 02): the other account owner's only account

# ---------------------------------------------------------------- the expected matrix

PRINCIPALS = ("owner", "support", "success", "engineering_triage", "account_owner_own", "account_owner_other",
              "integration", "no_key", "unknown_key")
"""Who calls: pack roles, the account owner with and without the escalation's account, the machine
principal, and two callers without a valid key."""

# Y = allowed (the endpoint's success status), 403 = forbidden, 401 = not authenticated.
# Columns: triage = engineering_triage; ao_own = account_owner_own, who owns the escalation's account
# (acc-1018); ao_other = account_owner_other, who owns only acc-1014; integ = integration;
# bad_key = unknown_key.
# GET /escalations is allowed for both account owners, filtered to their own accounts.
EXPECTED_TABLE = """
endpoint                               owner    support  success  triage   ao_own   ao_other integ    no_key   bad_key
POST /cases                            Y        Y        Y        Y        403      403      Y        401      401
POST /webhooks/zendesk                 Y        Y        Y        Y        403      403      Y        401      401
POST /webhooks/jira                    Y        Y        Y        Y        403      403      Y        401      401
POST /webhooks/freshdesk               Y        Y        Y        Y        403      403      Y        401      401
GET /escalations                       Y        Y        Y        Y        Y        Y        403      401      401
GET /escalations/{id}                  Y        Y        Y        Y        Y        403      403      401      401
POST /escalations/{id}/review start    Y        Y        Y        403      Y        403      403      401      401
POST /escalations/{id}/review edit     Y        Y        Y        403      Y        403      403      401      401
POST /escalations/{id}/review approve  Y        Y        Y        403      Y        403      403      401      401
POST /escalations/{id}/review reject   Y        Y        Y        403      Y        403      403      401      401
POST /escalations/{id}/review override Y        Y        Y        403      Y        403      403      401      401
POST /escalations/{id}/send            Y        Y        Y        403      Y        403      403      401      401
GET /signals                           Y        Y        Y        403      403      403      403      401      401
GET /metrics                           Y        Y        Y        403      403      403      403      401      401
GET /audit                             Y        Y        Y        403      403      403      403      401      401
GET /pack                              Y        Y        Y        Y        Y        Y        403      401      401
"""


COLUMN = {"triage": "engineering_triage", "ao_own": "account_owner_own", "ao_other": "account_owner_other",
          "integ": "integration", "bad_key": "unknown_key"}


def _parse_table(table: str) -> dict[str, dict[str, str]]:
    lines = [ln.split() for ln in table.strip().splitlines()]
    header = [COLUMN.get(h, h) for h in lines[0][1:]]
    assert tuple(header) == PRINCIPALS
    out: dict[str, dict[str, str]] = {}
    for cells in lines[1:]:
        values = cells[-len(header):]
        out[" ".join(cells[:-len(header)])] = dict(zip(header, values, strict=True))
    return out


EXPECTED = _parse_table(EXPECTED_TABLE)
ENDPOINTS = tuple(EXPECTED)

ENDPOINT_ACTION = {
    "POST /cases": "ingest", "POST /webhooks/zendesk": "ingest", "POST /webhooks/jira": "ingest",
    "POST /webhooks/freshdesk": "ingest", "GET /escalations": "list", "GET /escalations/{id}": "read",
    "POST /escalations/{id}/review start": "edit", "POST /escalations/{id}/review edit": "edit",
    "POST /escalations/{id}/review approve": "approve", "POST /escalations/{id}/review reject": "reject",
    "POST /escalations/{id}/review override": "override", "POST /escalations/{id}/send": "send",
    "GET /signals": "signals", "GET /metrics": "signals", "GET /audit": "audit_read", "GET /pack": "pack_read",
}
"""The `permissions` action each endpoint checks (review actions per review.PERMISSION)."""

SUCCESS = {"POST /cases": 201, "POST /webhooks/zendesk": 201, "POST /webhooks/jira": 201,
           "POST /webhooks/freshdesk": 201}
"""The success status of an allowed call (200 unless listed)."""



# ---------------------------------------------------------------- one service per database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Like conftest's `db_url`, but one database for the whole module (the matrix has 144 cells)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('perm') / 'escalate.db'}"
        return
    with fresh_pg_database() as url:
        yield url


_tickets = itertools.count(910_000)


@dataclass
class World:
    client: TestClient
    app: Any
    keys: dict[str, str]
    names: dict[str, str]
    base_case: dict[str, Any]
    webhooks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        if who == "no_key":
            return {}
        if who == "unknown_key":
            return {"Authorization": "Bearer esk_not-a-key-anyone-holds"}
        return {"Authorization": f"Bearer {self.keys[who]}"}

    def fresh_case(self) -> dict[str, Any]:
        """Demo case 01 (account acc-1018, Sev1, incident_update) as a new ticket."""
        case = json.loads(json.dumps(self.base_case))
        n = next(_tickets)
        case["ticket"]["id"] = n
        case["id"] = f"perm-{n}"
        return case

    def fresh_escalation(self, *, approved: bool = False) -> int:
        r = self.client.post("/cases", json=self.fresh_case(), headers=self.headers("support"))
        assert r.status_code == 201 and r.json()["escalated"], r.text
        eid = int(r.json()["escalation_id"])
        if approved:
            r = self.client.post(f"/escalations/{eid}/review", json={"action": "approve"},
                                 headers=self.headers("support"))
            assert r.status_code == 200 and r.json()["escalation"]["state"] == "approved", r.text
        return eid

    def snapshot(self) -> dict[str, Any]:
        """Everything a call could change: row counts, every escalation's review fields, the audit head."""
        with self.app.state.runtime.session() as s:
            counts = {m.__tablename__: s.scalar(select(func.count()).select_from(m))
                      for m in (CaseRow, PacketRow, ReviewRow, AuditRow, EscalationRow)}
            escalations = [(e.id, e.state, e.final_update, e.severity_override, e.approved_at, e.sent_at,
                            e.current_packet_id) for e in s.scalars(select(EscalationRow).order_by(EscalationRow.id))]
            head = s.scalar(select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1))
        return {"counts": counts, "escalations": escalations, "audit_head": head}

    def last_audit(self) -> AuditRow:
        with self.app.state.runtime.session() as s:
            row = s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one()
        return row


def _fixture(path: str) -> Any:
    return json.loads((FIX / path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def world(module_db_url: str) -> Iterator[World]:
    app = create_app(Settings(database_url=module_db_url, sandbox=True))
    rt = app.state.runtime
    accounts = {"account_owner_own": [OWN_ACCOUNT], "account_owner_other": [OTHER_ACCOUNT]}
    keys, names = {}, {}
    with rt.session() as s:
        for who in PRINCIPALS[:7]:
            role = "account_owner" if who.startswith("account_owner") else who
            name = f"user-{who}"
            _, keys[who] = store.create_user(s, name, role, accounts.get(who, []))
            names[who] = name
    base = json.loads((DEMO / "01-nakatomi-api-503-incident.case.json").read_text(encoding="utf-8"))
    w = World(client=TestClient(app), app=app, keys=keys, names=names, base_case=base)
    w.webhooks = {
        "zendesk": {"ticket": _fixture("zendesk/ticket_48213.json")["ticket"],
                    "comments": _fixture("zendesk/comments_48213.json"), "users": _fixture("zendesk/users_48213.json"),
                    "organization": _fixture("zendesk/organization_6001.json")},
        "jira": {"issue": _fixture("jira/issue_v3_jsm.json"), "comments": _fixture("jira/comments_v3.json")},
        "freshdesk": {"ticket": _fixture("freshdesk/ticket_7315.json"),
                      "conversations": _fixture("freshdesk/conversations_7315.json"),
                      "agents": _fixture("freshdesk/agents.json")},
    }
    # the queue: the four demo escalations of four accounts (acc-1018, acc-1014, acc-1019, acc-1007)
    for path in sorted(DEMO.glob("*.case.json"))[:4]:
        r = w.client.post("/cases", content=path.read_bytes(), headers=w.headers("support"))
        assert r.status_code == 201 and r.json()["escalated"], r.text
    with w.client:
        yield w


# ---------------------------------------------------------------- calling one cell


@dataclass
class Call:
    method: str
    path: str
    body: Any = None
    check: Callable[[World, Any], None] | None = None
    """After an allowed call: check its effect (given the response)."""


def _review_call(w: World, action: str) -> Call:
    eid = w.fresh_escalation()
    bodies = {"start": {"action": "start"},
              "edit": {"action": "edit", "text": "Hi Aiko,\n\nWe are working on the API errors and will update "
                                                 "you within the hour."},
              "approve": {"action": "approve"},
              "reject": {"action": "reject", "reason": "duplicate of the incident ticket"},
              "override": {"action": "override", "level": "Sev2", "reason": "a workaround restores service"}}
    target = {"start": "in_review", "edit": "in_review", "approve": "approved", "reject": "rejected",
              "override": "in_review"}[action]

    def check(w: World, r: Any) -> None:
        esc = r.json()["escalation"]
        assert esc["id"] == eid and esc["state"] == target
        if action == "edit":
            assert esc["final_update"] == bodies["edit"]["text"]
        if action == "override":
            assert esc["severity"] == "Sev2" and r.json()["outcome"]["direction"] == "down"

    return Call("POST", f"/escalations/{eid}/review", bodies[action], check)


def build_call(w: World, endpoint: str, who: str) -> Call:
    if endpoint == "POST /cases":
        case = w.fresh_case()

        def check_case(w: World, r: Any) -> None:
            assert r.json()["escalated"] and not r.json()["duplicate"]

        return Call("POST", "/cases", case, check_case)
    if endpoint.startswith("POST /webhooks/"):
        vendor = endpoint.rsplit("/", 1)[1]
        body = {**w.webhooks[vendor], "update_id": f"perm-{uuid.uuid4().hex}"}

        def check_hook(w: World, r: Any) -> None:
            assert r.json()["escalated"] and not r.json()["duplicate"]

        return Call("POST", f"/webhooks/{vendor}", body, check_hook)
    if endpoint == "GET /escalations":
        def check_list(w: World, r: Any) -> None:
            accounts = {e["account_id"] for e in r.json()["escalations"]}
            if who == "account_owner_own":
                assert accounts == {OWN_ACCOUNT}
            elif who == "account_owner_other":
                assert accounts == {OTHER_ACCOUNT}
            else:
                assert {OWN_ACCOUNT, OTHER_ACCOUNT, "acc-1019", "acc-1007"} <= accounts

        return Call("GET", "/escalations", None, check_list)
    if endpoint == "GET /escalations/{id}":
        eid = w.fresh_escalation()

        def check_read(w: World, r: Any) -> None:
            assert r.json()["escalation"]["id"] == eid and r.json()["packet"] is not None

        return Call("GET", f"/escalations/{eid}", None, check_read)
    if endpoint.startswith("POST /escalations/{id}/review "):
        return _review_call(w, endpoint.rsplit(" ", 1)[1])
    if endpoint == "POST /escalations/{id}/send":
        eid = w.fresh_escalation(approved=True)

        def check_send(w: World, r: Any) -> None:
            assert r.json()["escalation"]["state"] == "sent" and r.json()["escalation"]["sent_at"]

        return Call("POST", f"/escalations/{eid}/send", None, check_send)
    if endpoint == "GET /signals":
        def check_signals(w: World, r: Any) -> None:
            assert r.json()["escalations"] >= 4 and r.json()["packets_per_trigger"]["incident_update"] >= 1

        return Call("GET", "/signals", None, check_signals)
    if endpoint == "GET /metrics":
        def check_metrics(w: World, r: Any) -> None:
            assert "escalation_packets_per_trigger" in r.text

        return Call("GET", "/metrics", None, check_metrics)
    if endpoint == "GET /audit":
        def check_audit(w: World, r: Any) -> None:
            assert r.json()["intact"] is True and r.json()["entries"]

        return Call("GET", "/audit", None, check_audit)
    if endpoint == "GET /pack":
        def check_pack(w: World, r: Any) -> None:
            assert r.json()["name"] == "lumen-support-escalation" and r.json()["status"] == "draft (sandbox)"

        return Call("GET", "/pack", None, check_pack)
    raise AssertionError(f"no call for {endpoint}")


MUTATING_AUDIT = {
    "POST /cases": "case.ingest", "POST /webhooks/zendesk": "case.ingest", "POST /webhooks/jira": "case.ingest",
    "POST /webhooks/freshdesk": "case.ingest",
    **{f"POST /escalations/{{id}}/review {a}": f"review.{a}" for a in ("start", "edit", "approve", "reject",
                                                                          "override")},
    "POST /escalations/{id}/send": "update.send",
}
"""The audit action an allowed mutating call appends (the ingest ones then add packet.run as `skill`)."""


def _cells() -> list[Any]:
    out = []
    for endpoint in ENDPOINTS:
        for who in PRINCIPALS:
            out.append(pytest.param(endpoint, who, id=f"{endpoint}|{who}"))
    return out


@pytest.mark.parametrize(("endpoint", "who"), _cells())
def test_cell(world: World, endpoint: str, who: str) -> None:
    expected = EXPECTED[endpoint][who]
    call = build_call(world, endpoint, who)
    before = world.snapshot()
    r = world.client.request(call.method, call.path, json=call.body, headers=world.headers(who))
    if expected == "Y":
        assert r.status_code == SUCCESS.get(endpoint, 200), r.text
        assert call.check is not None
        call.check(world, r)
        if endpoint in MUTATING_AUDIT:
            after = world.snapshot()
            assert after["counts"]["audit"] > before["counts"]["audit"]
            with world.app.state.runtime.session() as s:
                new = list(s.scalars(select(AuditRow).where(AuditRow.seq > before["counts"]["audit"])
                                     .order_by(AuditRow.seq)))
            assert (new[0].actor, new[0].action) == (world.names[who], MUTATING_AUDIT[endpoint])
        return
    assert r.status_code == int(expected), r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and "\n" not in detail
    if expected == "403":
        role = "account_owner" if who.startswith("account_owner") else who
        assert f"({role}) may not {ENDPOINT_ACTION[endpoint]}" in detail
    else:
        assert r.headers.get("www-authenticate") == "Bearer"
    assert world.snapshot() == before, "a refused call changed stored state or the audit trail"


# ---------------------------------------------------------------- the table itself


def test_the_matrix_has_one_cell_per_endpoint_and_principal() -> None:
    size = (len(ENDPOINTS), len(PRINCIPALS))
    print(f"\npermission matrix: {size[0]} endpoints × {size[1]} principals = {size[0] * size[1]} cells per database")
    assert size == (16, 9)
    assert set(ENDPOINT_ACTION) == set(ENDPOINTS)
    assert len(_cells()) == 144


def test_the_written_table_agrees_with_the_permissions_module(world: World) -> None:
    """The hand-written table is the module's documented matrix, cell by cell (not a copy of it)."""
    pack = world.app.state.runtime.pack
    matrix = permissions.matrix(pack)
    assert list(matrix) == ["owner", "support", "success", "engineering_triage", "account_owner", "integration"]
    for endpoint, action in ENDPOINT_ACTION.items():
        row = EXPECTED[endpoint]
        for who in ("owner", "support", "success", "engineering_triage", "integration"):
            assert (row[who] == "Y") == matrix[who][action], (endpoint, who)
        assert (row["account_owner_own"] == "Y") == matrix["account_owner"][action], endpoint
        other = permissions.allowed(pack, "account_owner", action, account_id=OWN_ACCOUNT,
                                    user_accounts=[OTHER_ACCOUNT])
        if action == "list":  # the queue is allowed, filtered to the user's own accounts
            assert row["account_owner_other"] == "Y"
        else:
            assert (row["account_owner_other"] == "Y") == other.allowed, endpoint
        assert row["no_key"] == row["unknown_key"] == "401"


def test_an_account_owner_cannot_widen_the_queue_with_filters(world: World) -> None:
    """Filters narrow the account owner's queue; they never add another account's escalations."""
    for params in ({}, {"product_area": "auth"}, {"product_area": "api"}, {"state": "draft"},
                   {"trigger": "vip_account"}):
        r = world.client.get("/escalations", params=params, headers=world.headers("account_owner_other"))
        assert r.status_code == 200
        assert {e["account_id"] for e in r.json()["escalations"]} <= {OTHER_ACCOUNT}
    r = world.client.get("/escalations", params={"product_area": "auth"}, headers=world.headers("account_owner_other"))
    assert [e["ticket_id"] for e in r.json()["escalations"]] == ["61877"]
    r = world.client.get("/escalations", params={"product_area": "api"}, headers=world.headers("account_owner_other"))
    assert r.json()["escalations"] == []
