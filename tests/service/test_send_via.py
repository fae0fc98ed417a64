"""Sending through the connector: with ESCALATE_SEND_VIA=zendesk, the approved text is posted as the public
reply, and only when the help desk accepts it is the escalation marked sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from escalation import audit, store
from escalation.service import Settings, create_app

FIX = Path(__file__).resolve().parents[1] / "connectors" / "fixtures" / "zendesk"
ENV = {"ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "bot@acme.example", "ZENDESK_API_TOKEN": "tok-123"}


def _body() -> dict[str, Any]:
    def load(name: str) -> Any:
        return json.loads((FIX / name).read_text())
    return {"ticket": load("ticket_48213.json")["ticket"], "comments": load("comments_48213.json"),
            "users": load("users_48213.json"), "organization": load("organization_6001.json")}


def _service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
             status: int) -> tuple[TestClient, Any, list[httpx.Request]]:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json={"ticket": {"id": 48213}} if status < 300 else {"error": "RecordInvalid"})

    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", sandbox=True, send_via="zendesk",
                              transport=httpx.MockTransport(handler)))
    rt = app.state.runtime
    with rt.session() as s:
        _, key = store.create_user(s, "sam", "support")
        _, hook = store.create_user(s, "hook", "integration")
    client = TestClient(app)
    r = client.post("/webhooks/zendesk", json=_body(), headers={"Authorization": f"Bearer {hook}"})
    assert r.status_code == 201 and r.json()["escalated"], r.text
    client.headers["Authorization"] = f"Bearer {key}"
    esc = r.json()["escalation_id"]
    assert client.post(f"/escalations/{esc}/review", json={"action": "approve"}).status_code == 200
    return client, (rt, esc), seen


def test_send_posts_the_approved_text_as_the_public_reply(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, (rt, esc), seen = _service(tmp_path, monkeypatch, 200)
    r = client.post(f"/escalations/{esc}/send")
    assert r.status_code == 200, r.text
    assert r.json()["posted"] == {"posted": True, "via": "zendesk", "status": 200}
    [req] = seen
    assert req.method == "PUT" and str(req.url) == "https://acme.zendesk.com/api/v2/tickets/48213.json"
    comment = json.loads(req.content)["ticket"]["comment"]
    assert comment["public"] is True and comment["body"] == r.json()["escalation"]["final_update"]
    with rt.session() as s:
        assert [e.action for e in audit.entries(s)][-2:] == ["update.send", "update.post"]


def test_a_refused_post_leaves_the_escalation_approved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client, (rt, esc), seen = _service(tmp_path, monkeypatch, 422)
    r = client.post(f"/escalations/{esc}/send")
    assert r.status_code == 502 and "422" in r.json()["detail"] and "tok-123" not in r.text
    assert client.get(f"/escalations/{esc}").json()["escalation"]["state"] == "approved"
    with rt.session() as s:
        assert "update.send" not in [e.action for e in audit.entries(s)]
