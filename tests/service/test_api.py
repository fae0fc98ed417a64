"""Ingestion and the review workflow through the HTTP API, on SQLite and PostgreSQL (conftest's `db_url`)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

import escalation.engine
from escalation import store
from escalation.packet import Check
from escalation.service import Settings, create_app
from escalation.store import AuditRow, CaseRow, EscalationRow, PacketRow

ROOT = Path(__file__).resolve().parents[2]
DEMO = sorted((ROOT / "src" / "escalation" / "demo").glob("*.case.json"))
FIX = ROOT / "tests" / "connectors" / "fixtures"
HOSTNAME = "db-shard-17.int.lumen.example"


def _fixture(path: str) -> Any:
    return json.loads((FIX / path).read_text(encoding="utf-8"))


def webhook_body(vendor: str) -> dict[str, Any]:
    if vendor == "zendesk":
        return {"ticket": _fixture("zendesk/ticket_48213.json")["ticket"],
                "comments": _fixture("zendesk/comments_48213.json"), "users": _fixture("zendesk/users_48213.json"),
                "organization": _fixture("zendesk/organization_6001.json")}
    if vendor == "jira":
        return {"issue": _fixture("jira/issue_v3_jsm.json"), "comments": _fixture("jira/comments_v3.json")}
    return {"ticket": _fixture("freshdesk/ticket_7315.json"),
            "conversations": _fixture("freshdesk/conversations_7315.json"), "agents": _fixture("freshdesk/agents.json")}


class Api:
    """A service on a fresh database with one support user and one integration user."""

    def __init__(self, db_url: str) -> None:
        self.app = create_app(Settings(database_url=db_url, sandbox=True))
        self.rt = self.app.state.runtime
        with self.rt.session() as s:
            _, self.key = store.create_user(s, "sam", "support")
            _, self.hook_key = store.create_user(s, "zendesk-hook", "integration")
        self.client = TestClient(self.app)
        self.h = {"Authorization": f"Bearer {self.key}"}
        self.hook = {"Authorization": f"Bearer {self.hook_key}"}

    def post_case(self, path: Path | dict[str, Any], **headers: str) -> Any:
        content = path.read_bytes() if isinstance(path, Path) else json.dumps(path).encode()
        return self.client.post("/cases", content=content, headers={**self.h, **headers})

    def escalate(self, index: int = 0) -> int:
        r = self.post_case(DEMO[index])
        assert r.status_code == 201 and r.json()["escalated"], r.text
        return int(r.json()["escalation_id"])

    def review(self, eid: int, **body: Any) -> Any:
        return self.client.post(f"/escalations/{eid}/review", json=body, headers=self.h)

    def send(self, eid: int) -> Any:
        return self.client.post(f"/escalations/{eid}/send", headers=self.h)

    def get(self, eid: int) -> dict[str, Any]:
        r = self.client.get(f"/escalations/{eid}", headers=self.h)
        assert r.status_code == 200, r.text
        return r.json()

    def count(self, model: Any) -> int:
        with self.rt.session() as s:
            return int(s.scalar(select(func.count()).select_from(model)) or 0)

    def counts(self) -> dict[str, int]:
        return {m.__tablename__: self.count(m) for m in (CaseRow, PacketRow, EscalationRow, AuditRow)}


@pytest.fixture
def api(db_url: str) -> Iterator[Api]:
    service = Api(db_url)
    yield service
    service.rt.engine.dispose()


def one_line_detail(r: Any) -> str:
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail and "\n" not in detail, detail
    return detail


# ---------------------------------------------------------------- ingestion


def test_demo_cases_are_ingested_and_four_of_five_escalate(api: Api) -> None:
    results = [api.post_case(p) for p in DEMO]
    assert [r.status_code for r in results] == [201] * 5
    assert [r.json()["escalated"] for r in results] == [True, True, True, True, False]
    assert all(r.json()["duplicate"] is False and r.json()["case_version"] == 1 for r in results)
    assert results[4].json()["escalation_id"] is None and results[4].json()["packet_id"] is None
    assert api.counts() == {"cases": 5, "packets": 4, "escalations": 4, "audit": 1 + 5 + 4}  # pack.load, ingests, runs


def test_an_identical_retry_is_a_duplicate_and_a_new_key_a_new_version(api: Api) -> None:
    first = api.post_case(DEMO[0])
    assert first.status_code == 201
    before = api.counts()
    again = api.post_case(DEMO[0])
    assert again.status_code == 200
    assert again.json() == {**first.json(), "duplicate": True}
    assert api.counts() == before

    keyed = api.post_case(DEMO[0], **{"Idempotency-Key": "update-2"})
    assert keyed.status_code == 201 and keyed.json()["case_version"] == 2
    assert keyed.json()["escalation_id"] == first.json()["escalation_id"]
    assert keyed.json()["packet_id"] != first.json()["packet_id"]
    assert api.counts()["cases"] == 2 and api.counts()["packets"] == 2 and api.counts()["escalations"] == 1
    retry = api.post_case(DEMO[0], **{"Idempotency-Key": "update-2"})
    assert retry.status_code == 200 and retry.json()["duplicate"] and retry.json()["case_version"] == 2
    detail = api.get(first.json()["escalation_id"])
    assert [p["id"] for p in detail["packets"]] == [first.json()["packet_id"], keyed.json()["packet_id"]]
    assert detail["packet"]["ticket_id"] == "60412"
    assert [c["version"] for c in detail["case_versions"]] == [1, 2]
    assert detail["case_versions"][1]["update_id"] == "update-2"
    # a late retry of the first delivery still gets the first delivery's answer, not the newest packet
    late = api.post_case(DEMO[0])
    assert late.json() == {**first.json(), "duplicate": True}


def test_concurrent_identical_webhook_deliveries_store_one_case_and_one_packet(api: Api) -> None:
    body = json.dumps({**webhook_body("zendesk"), "update_id": "zd-delivery-1"}).encode()
    n = 6
    barrier = threading.Barrier(n)
    statuses: list[int] = []
    lock = threading.Lock()

    def deliver() -> None:
        client = TestClient(api.app)
        barrier.wait()
        r = client.post("/webhooks/zendesk", content=body, headers=api.hook)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=deliver) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [200] * (n - 1) + [201]
    assert api.count(CaseRow) == 1 and api.count(PacketRow) == 1 and api.count(EscalationRow) == 1
    with api.rt.session() as s:
        actions = [e.action for e in s.scalars(select(AuditRow).order_by(AuditRow.seq))]
    assert actions == ["pack.load", "case.ingest", "packet.run"]


@pytest.mark.parametrize("vendor", ["zendesk", "jira", "freshdesk"])
def test_a_webhook_of_each_vendor_makes_an_escalation_with_its_source(api: Api, vendor: str) -> None:
    r = api.client.post(f"/webhooks/{vendor}", json=webhook_body(vendor), headers=api.hook)
    assert r.status_code == 201, r.text
    assert r.json()["escalated"] is True
    esc = api.get(r.json()["escalation_id"])["escalation"]
    expected_ticket = {"zendesk": "48213", "jira": "SUP-102", "freshdesk": "7315"}[vendor]
    assert (esc["source"], esc["ticket_id"]) == (vendor, expected_ticket)
    queue = api.client.get("/escalations", headers=api.h).json()["escalations"]
    assert [(e["source"], e["ticket_id"]) for e in queue] == [(vendor, expected_ticket)]
    with api.rt.session() as s:
        row = s.scalars(select(AuditRow).where(AuditRow.action == "case.ingest")).one()
        assert (row.actor, row.subject) == ("zendesk-hook", f"{vendor}:{expected_ticket}")


def _unknown_area_case() -> dict[str, Any]:
    case = json.loads(DEMO[0].read_text(encoding="utf-8"))
    case["ticket"]["product_area"] = "teleportation"
    return case


BAD_INPUT = [
    pytest.param("/cases", b"{not json", 422, "not valid JSON", id="case-not-json"),
    pytest.param("/cases", json.dumps(_unknown_area_case()).encode(), 422, "unknown product area 'teleportation'",
                 id="case-unknown-product-area"),
    pytest.param("/cases", b'{"schema": "nope"}', 422, "$.schema", id="case-wrong-schema"),
    pytest.param("/webhooks/zendesk", b"\xff\xfe", 422, "not valid JSON", id="webhook-not-json"),
    pytest.param("/webhooks/zendesk", b"[1, 2]", 422, "expected a JSON object", id="webhook-not-an-object"),
    pytest.param("/webhooks/zendesk", json.dumps({"issue": {}}).encode(), 422, "no 'ticket'",
                 id="zendesk-without-ticket"),
    pytest.param("/webhooks/jira", json.dumps({"ticket": {}}).encode(), 422, "no 'issue'", id="jira-without-issue"),
    pytest.param("/webhooks/zendesk", json.dumps({"ticket": _fixture("jira/issue_v2.json")}).encode(), 422,
                 "looks like a Jira issue", id="zendesk-given-a-jira-issue"),
    pytest.param("/webhooks/zendesk", json.dumps({**webhook_body("zendesk"), "agents": []}).encode(), 422,
                 "takes no --agents", id="zendesk-unknown-extra"),
    pytest.param("/webhooks/servicenow", json.dumps(webhook_body("zendesk")).encode(), 404, "no webhook for "
                 "'servicenow'", id="unknown-vendor"),
]


@pytest.mark.parametrize(("path", "body", "status", "message"), BAD_INPUT)
def test_bad_input_is_refused_with_one_line_and_stores_nothing(api: Api, path: str, body: bytes, status: int,
                                                                message: str) -> None:
    before = api.counts()
    r = api.client.post(path, content=body, headers=api.h)
    assert r.status_code == status, r.text
    assert message in one_line_detail(r)
    assert api.counts() == before


# ---------------------------------------------------------------- the queue and one escalation


def test_the_queue_filters_by_state_severity_trigger_and_product_area(api: Api) -> None:
    ids = {DEMO[i].name[:2]: api.escalate(i) for i in range(4)}

    def tickets(**params: str) -> set[str]:
        r = api.client.get("/escalations", params=params, headers=api.h)
        assert r.status_code == 200, r.text
        return {e["ticket_id"] for e in r.json()["escalations"]}

    assert tickets() == {"60412", "61877", "58840", "60233"}
    assert tickets(state="draft") == {"60412", "61877", "58840", "60233"}
    assert tickets(severity="Sev1") == {"60412"}
    assert tickets(severity="Sev4") == {"58840"}
    assert tickets(trigger="severity_change") == {"61877", "58840"}
    assert tickets(trigger="vip_account") == {"61877"}
    assert tickets(trigger="no_such_trigger") == set()
    assert tickets(product_area="api") == {"60412", "58840"}
    assert tickets(product_area="api", severity="Sev4") == {"58840"}
    assert api.review(ids["01"], action="start").status_code == 200
    assert tickets(state="in_review") == {"60412"}
    assert tickets(state="draft") == {"61877", "58840", "60233"}
    # severity filters on the effective severity: an override moves the escalation
    assert api.review(ids["01"], action="override", level="Sev3", reason="workaround in place").status_code == 200
    assert tickets(severity="Sev1") == set()
    assert tickets(severity="Sev3") == {"60412", "60233"}


def test_an_escalation_shows_packet_history_reviews_and_case_versions(api: Api) -> None:
    eid = api.escalate(1)
    assert api.review(eid, action="start").status_code == 200
    assert api.post_case(DEMO[1], **{"Idempotency-Key": "second"}).status_code == 201
    d = api.get(eid)
    assert d["escalation"]["state"] == "draft"  # a new packet reopens the review
    assert d["escalation"]["triggers"] == ["severity_change", "vip_account"]
    assert d["packet"]["ticket_id"] == "61877" and d["packet"]["severity"]["level"] == "Sev2"
    assert len(d["packets"]) == 2 and all(p["pack"] == "lumen-support-escalation 3.2.0" for p in d["packets"])
    assert [(r["actor"], r["action"]) for r in d["reviews"]] == [("sam", "start")]
    assert [c["version"] for c in d["case_versions"]] == [1, 2]
    assert api.client.get("/escalations/9999", headers=api.h).status_code == 404


# ---------------------------------------------------------------- review


def test_the_review_flow_from_draft_to_sent(api: Api) -> None:
    eid = api.escalate(0)
    draft = api.get(eid)["escalation"]["draft_update"]
    r = api.review(eid, action="start")
    assert r.status_code == 200 and r.json()["outcome"] == {"action": "start", "from": "draft", "to": "in_review"}
    r = api.review(eid, action="approve")
    assert r.status_code == 200 and r.json()["escalation"]["state"] == "approved"
    assert r.json()["escalation"]["approved_at"] and r.json()["escalation"]["final_update"] == draft
    r = api.send(eid)
    assert r.status_code == 200, r.text
    esc = r.json()["escalation"]
    assert esc["state"] == "sent" and esc["sent_at"] and esc["final_update"] == draft
    assert [x["action"] for x in api.get(eid)["reviews"]] == ["start", "approve", "send"]
    r = api.send(eid)
    assert r.status_code == 409 and "already sent" in one_line_detail(r)


def test_an_edit_with_an_internal_hostname_is_saved_but_cannot_be_approved(api: Api) -> None:
    eid = api.escalate(0)
    draft = api.get(eid)["escalation"]["draft_update"]
    leaky = draft + f"\nOur engineers are restarting {HOSTNAME} now."
    r = api.review(eid, action="edit", text=leaky)
    assert r.status_code == 200, r.text
    out = r.json()["outcome"]
    assert out["update_passes"] is False and [f["rule"] for f in out["findings"]] == ["hostname"]
    assert out["findings"][0]["words"] == HOSTNAME and "cannot be approved" in out["note"]
    assert r.json()["escalation"]["final_update"] == leaky and r.json()["escalation"]["state"] == "in_review"

    r = api.review(eid, action="approve")
    assert r.status_code == 422
    detail = one_line_detail(r)
    assert "hostname" in detail and HOSTNAME in detail
    assert api.get(eid)["escalation"]["state"] == "in_review"
    assert api.send(eid).status_code == 409

    fixed = draft + "\nOur engineers are restarting the affected API service now."
    r = api.review(eid, action="edit", text=fixed)
    assert r.status_code == 200 and r.json()["outcome"]["update_passes"] is True
    assert api.review(eid, action="approve").status_code == 200
    r = api.send(eid)
    assert r.status_code == 200 and r.json()["escalation"]["final_update"] == fixed
    assert r.json()["outcome"]["edit_distance"] > 0


def test_an_edit_needs_text(api: Api) -> None:
    eid = api.escalate(0)
    for body in ({"action": "edit"}, {"action": "edit", "text": "   "}):
        r = api.review(eid, **body)
        assert r.status_code == 422 and "edit needs a text" in one_line_detail(r)
    assert api.get(eid)["reviews"] == []


@pytest.mark.parametrize("action", ["reject", "override"])
def test_reject_and_override_need_a_reason(api: Api, action: str) -> None:
    eid = api.escalate(0)
    extra = {"level": "Sev2"} if action == "override" else {}
    before = api.counts()
    for reason in (None, "", "  "):
        body = {"action": action, **extra, **({"reason": reason} if reason is not None else {})}
        r = api.review(eid, **body)
        assert r.status_code == 422 and f"{action} needs a reason" in one_line_detail(r)
    assert api.counts() == before and api.get(eid)["escalation"]["state"] == "draft"
    r = api.review(eid, action=action, reason="the customer confirmed it", **extra)
    assert r.status_code == 200
    assert r.json()["escalation"]["state"] == ("rejected" if action == "reject" else "in_review")
    assert api.get(eid)["reviews"][0]["reason"] == "the customer confirmed it"


def test_override_records_its_direction(api: Api) -> None:
    eid = api.escalate(2)  # Sev4
    r = api.review(eid, action="override", level="Sev2", reason="blocks their nightly import")
    assert r.status_code == 200
    assert {k: r.json()["outcome"][k] for k in ("direction", "from_level", "to_level")} == {
        "direction": "up", "from_level": "Sev4", "to_level": "Sev2"}
    r = api.review(eid, action="override", level="Sev3", reason="the workaround holds")
    assert r.json()["outcome"]["direction"] == "down" and r.json()["outcome"]["from_level"] == "Sev2"
    r = api.review(eid, action="override", level="Sev3", reason="again")
    assert r.status_code == 422 and "changes nothing" in one_line_detail(r)
    r = api.review(eid, action="override", level="Sev9", reason="x")
    assert r.status_code == 422 and "Sev9" in one_line_detail(r)
    d = api.get(eid)
    assert [x["detail"]["direction"] for x in d["reviews"]] == ["up", "down"]
    assert d["escalation"]["severity"] == "Sev3" and d["escalation"]["severity_drafted"] == "Sev4"


def test_send_only_after_approve(api: Api) -> None:
    eid = api.escalate(0)
    r = api.send(eid)
    assert r.status_code == 409 and "approve the update first" in one_line_detail(r)
    api.review(eid, action="start")
    assert api.send(eid).status_code == 409
    assert api.review(eid, action="approve").status_code == 200
    # an override after approval withdraws it: no send until approved again
    assert api.review(eid, action="override", level="Sev2", reason="scope is one workspace").status_code == 200
    assert api.get(eid)["escalation"]["approved_at"] is None
    assert api.send(eid).status_code == 409
    assert api.review(eid, action="reject", reason="handled on the incident").status_code == 200
    r = api.send(eid)
    assert r.status_code == 409 and "rejected" in one_line_detail(r)
    assert api.get(eid)["escalation"]["sent_at"] is None


def test_unknown_review_actions_and_escalations(api: Api) -> None:
    eid = api.escalate(0)
    r = api.review(eid, action="send")
    assert r.status_code == 422 and "POST /escalations/{id}/send" in one_line_detail(r)
    assert api.review(eid, action="publish").status_code == 422
    assert api.client.post("/escalations/9999/review", json={"action": "start"}, headers=api.h).status_code == 404
    assert api.client.post("/escalations/9999/send", headers=api.h).status_code == 404


def test_a_packet_with_failing_checks_cannot_be_approved(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    real = escalation.engine.run_checks

    def failing(*args: Any, **kwargs: Any) -> list[Check]:
        return [*real(*args, **kwargs), Check(key="forced_failure", passed=False, details=["forced by the test"])]

    monkeypatch.setattr(escalation.engine, "run_checks", failing)
    eid = api.escalate(0)
    d = api.get(eid)
    assert d["escalation"]["checks_passed"] is False and d["packets"][0]["checks_passed"] is False
    before = api.counts()
    r = api.review(eid, action="approve")
    assert r.status_code == 422 and "forced_failure" in one_line_detail(r)
    assert api.counts() == before and api.get(eid)["escalation"]["state"] == "draft"
    assert api.send(eid).status_code == 409
    assert api.review(eid, action="reject", reason="checks fail").status_code == 200
