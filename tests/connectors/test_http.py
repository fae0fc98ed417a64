"""Live fetch and post against httpx.MockTransport: URLs, auth, pagination, retries, and no leaked secrets."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from escalation.case import load_case
from escalation.connectors import http
from escalation.connectors.emit import emit
from escalation.connectors.http import RemoteError, fetch, post
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import load_pack

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "escalation" / "demo" / "01-nakatomi-api-503-incident.case.json"

ZD_TOKEN = "zdTok3n-s3cr3t-aaaa"
JIRA_TOKEN = "jiraTok3n-s3cr3t-bbbb"
FD_KEY = "fdK3y-s3cr3t-cccc"
SLACK_TOKEN = "xoxb-s3cr3t-dddd"
WEBHOOK = "https://hooks.slack.com/services/T000/B000/webh00ks3cr3t"
SECRETS = (ZD_TOKEN, JIRA_TOKEN, FD_KEY, SLACK_TOKEN, WEBHOOK, "webh00ks3cr3t")

ENV = {
    "ZENDESK_SUBDOMAIN": "acme", "ZENDESK_EMAIL": "agent@example.com", "ZENDESK_API_TOKEN": ZD_TOKEN,
    "JIRA_BASE_URL": "https://acme.atlassian.net/", "JIRA_EMAIL": "eng@example.com", "JIRA_API_TOKEN": JIRA_TOKEN,
    "FRESHDESK_DOMAIN": "acme", "FRESHDESK_API_KEY": FD_KEY,
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def leaks(text: str) -> list[str]:
    encoded = [basic("agent@example.com/token", ZD_TOKEN), basic("eng@example.com", JIRA_TOKEN), basic(FD_KEY, "X")]
    return [s for s in (*SECRETS, *encoded, *(e.removeprefix("Basic ") for e in encoded)) if s in text]


class Recorder:
    """A MockTransport that answers from a function and keeps every request."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.requests: list[httpx.Request] = []
        self._answer = answer
        self.transport = httpx.MockTransport(self._handle)

    def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self._answer(request)


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waits: list[float] = []
    monkeypatch.setattr(http, "_sleep", waits.append)
    return waits


@pytest.fixture(scope="module")
def zendesk_payload() -> dict[str, Any]:
    case = load_case(DEMO)
    return emit("zendesk-note", run(case, load_pack(ROOT / "src" / "escalation" / "packs" / "lumen"),
                                    tone_check="off"), case)


# -- fetch ------------------------------------------------------------------------------------


def zendesk_api(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/api/v2/tickets/35436.json":
        return httpx.Response(200, json={
            "ticket": {"id": 35436, "subject": "Export stuck", "requester_id": 1, "organization_id": 9},
            "users": [{"id": 1, "name": "Requester", "role": "end-user"}],
            "organizations": [{"id": 8, "name": "Other"}, {"id": 9, "name": "Initech"}]})
    if path == "/api/v2/tickets/35436/comments.json":
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json={"comments": [{"id": 3}], "next_page": None,
                                             "users": [{"id": 2, "name": "Agent", "role": "agent"}]})
        return httpx.Response(200, json={
            "comments": [{"id": 1}, {"id": 2}],
            "next_page": "https://acme.zendesk.com/api/v2/tickets/35436/comments.json?page=2",
            "users": [{"id": 1, "name": "Requester", "role": "end-user"}]})
    return httpx.Response(404, json={"error": "RecordNotFound", "description": "Not found"})


def test_fetch_zendesk_follows_pages_with_token_auth() -> None:
    rec = Recorder(zendesk_api)
    out = fetch("zendesk", "35436", env=ENV, transport=rec.transport)
    assert [str(r.url) for r in rec.requests] == [
        "https://acme.zendesk.com/api/v2/tickets/35436.json?include=users%2Corganizations",
        "https://acme.zendesk.com/api/v2/tickets/35436/comments.json?include=users",
        "https://acme.zendesk.com/api/v2/tickets/35436/comments.json?page=2"]
    assert {r.method for r in rec.requests} == {"GET"}
    assert {r.headers["Authorization"] for r in rec.requests} == {basic("agent@example.com/token", ZD_TOKEN)}
    assert all(r.extensions["timeout"]["read"] == 30.0 for r in rec.requests)
    assert [c["id"] for c in out["comments"]] == [1, 2, 3]
    assert sorted(u["id"] for u in out["users"]) == [1, 2]
    assert out["ticket"]["id"] == 35436 and out["organization"]["name"] == "Initech"


def test_fetch_zendesk_accepts_a_full_host_as_subdomain() -> None:
    rec = Recorder(zendesk_api)
    fetch("zendesk", "35436", env={**ENV, "ZENDESK_SUBDOMAIN": "https://acme.zendesk.com/"}, transport=rec.transport)
    assert rec.requests[0].url.host == "acme.zendesk.com"


def test_fetch_zendesk_refuses_a_next_page_on_another_host() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("comments.json"):
            return httpx.Response(200, json={"comments": [], "next_page": "https://evil.example.com/steal"})
        return zendesk_api(request)
    rec = Recorder(api)
    with pytest.raises(RemoteError, match="outside https://acme.zendesk.com"):
        fetch("zendesk", "35436", env=ENV, transport=rec.transport)
    assert all(r.url.host == "acme.zendesk.com" for r in rec.requests)


def test_fetch_jira_paginates_comments_with_basic_auth() -> None:
    all_comments = [{"id": str(i), "body": {"type": "doc", "version": 1, "content": []}} for i in range(150)]

    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/rest/api/3/issue/ENG-42":
            return httpx.Response(200, json={"key": "ENG-42", "fields": {"summary": "s", "comment": {
                "comments": all_comments[:5], "total": 150}}, "changelog": {"histories": []}})
        if request.url.path == "/rest/api/3/issue/ENG-42/comment":
            start, size = int(request.url.params["startAt"]), int(request.url.params["maxResults"])
            return httpx.Response(200, json={"comments": all_comments[start:start + size], "startAt": start,
                                             "maxResults": size, "total": len(all_comments)})
        return httpx.Response(404, json={"errorMessages": ["Issue does not exist"], "errors": {}})
    rec = Recorder(api)
    out = fetch("jira", "eng-42", env=ENV, transport=rec.transport)
    assert [str(r.url) for r in rec.requests] == [
        "https://acme.atlassian.net/rest/api/3/issue/ENG-42?expand=changelog",
        "https://acme.atlassian.net/rest/api/3/issue/ENG-42/comment?startAt=0&maxResults=100",
        "https://acme.atlassian.net/rest/api/3/issue/ENG-42/comment?startAt=100&maxResults=100"]
    assert {r.headers["Authorization"] for r in rec.requests} == {basic("eng@example.com", JIRA_TOKEN)}
    comment = out["issue"]["fields"]["comment"]
    assert comment["total"] == 150 and [c["id"] for c in comment["comments"]] == [str(i) for i in range(150)]
    assert "changelog" in out["issue"]


def test_fetch_freshdesk_pages_until_a_short_page() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v2/tickets/77":
            return httpx.Response(200, json={"id": 77, "requester": {"id": 5}, "company": {"id": 6}})
        if request.url.path == "/api/v2/tickets/77/conversations":
            page = int(request.url.params["page"])
            return httpx.Response(200, json=[{"id": page * 1000 + i} for i in range(100 if page == 1 else 3)])
        return httpx.Response(404, json={"description": "not found"})
    rec = Recorder(api)
    out = fetch("freshdesk", "77", env={**ENV, "FRESHDESK_DOMAIN": "acme.freshdesk.com"}, transport=rec.transport)
    assert [str(r.url) for r in rec.requests] == [
        "https://acme.freshdesk.com/api/v2/tickets/77?include=requester%2Ccompany",
        "https://acme.freshdesk.com/api/v2/tickets/77/conversations?page=1&per_page=100",
        "https://acme.freshdesk.com/api/v2/tickets/77/conversations?page=2&per_page=100"]
    assert {r.headers["Authorization"] for r in rec.requests} == {basic(FD_KEY, "X")}
    assert len(out["conversations"]) == 103 and out["ticket"]["id"] == 77


@pytest.mark.parametrize(("vendor", "drop", "named"), [
    ("zendesk", ("ZENDESK_API_TOKEN",), "set ZENDESK_API_TOKEN in the environment"),
    ("zendesk", ("ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL"), "set ZENDESK_SUBDOMAIN, ZENDESK_EMAIL in the environment"),
    ("jira", ("JIRA_BASE_URL",), "set JIRA_BASE_URL in the environment"),
    ("freshdesk", ("FRESHDESK_API_KEY", "FRESHDESK_DOMAIN"), "set FRESHDESK_DOMAIN, FRESHDESK_API_KEY in"),
])
def test_missing_environment_names_exactly_the_missing_variables(vendor: str, drop: tuple[str, ...],
                                                                 named: str) -> None:
    env = {k: v for k, v in ENV.items() if k not in drop}
    rec = Recorder(lambda r: httpx.Response(500))
    with pytest.raises(InputError, match=named) as info:
        fetch(vendor, "ENG-1" if vendor == "jira" else "1", env=env, transport=rec.transport)
    others = [k for k in ENV if k.startswith(vendor.upper()) and k not in drop]
    assert not any(k in str(info.value) for k in others)
    assert rec.requests == [] and not leaks(str(info.value))


@pytest.mark.parametrize(("vendor", "ticket"), [("zendesk", "1/../../users"), ("jira", "ENG 1"),
                                                ("freshdesk", "abc"), ("zendesk", "")])
def test_bad_ticket_ids_are_refused_before_any_request(vendor: str, ticket: str) -> None:
    rec = Recorder(lambda r: httpx.Response(500))
    with pytest.raises(InputError):
        fetch(vendor, ticket, env=ENV, transport=rec.transport)
    assert rec.requests == []


def test_unknown_vendor() -> None:
    with pytest.raises(InputError, match="zendesk, jira, freshdesk"):
        fetch("bugzilla", "1", env=ENV)


def test_http_error_has_status_and_vendor_message_but_no_secrets() -> None:
    def api(request: httpx.Request) -> httpx.Response:
        # a vendor that echoes the credentials back must not get them into the message
        return httpx.Response(401, json={"error": "Couldn't authenticate you",
                                         "description": f"token {ZD_TOKEN} / {request.headers['Authorization']}"})
    with pytest.raises(RemoteError) as info:
        fetch("zendesk", "35436", env=ENV, transport=httpx.MockTransport(api))
    msg = str(info.value)
    assert "HTTP 401" in msg and "Couldn't authenticate you" in msg and "GET https://acme.zendesk.com" in msg
    assert not leaks(msg) and not leaks(repr(info.value))


def test_jira_error_messages_are_read() -> None:
    api = Recorder(lambda r: httpx.Response(404, json={"errorMessages": ["Issue does not exist"], "errors": {}}))
    with pytest.raises(RemoteError, match=r"HTTP 404: Issue does not exist; check the ticket id"):
        fetch("jira", "ENG-9", env=ENV, transport=api.transport)


def test_429_is_retried_once_after_retry_after(no_sleep: list[float]) -> None:
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}, json={"error": "slow down"})])

    def api(request: httpx.Request) -> httpx.Response:
        return next(answers, None) or freshdesk_ok(request)
    rec = Recorder(api)
    out = fetch("freshdesk", "77", env=ENV, transport=rec.transport)
    assert no_sleep == [7.0] and out["ticket"]["id"] == 77
    assert [r.url.path for r in rec.requests[:2]] == ["/api/v2/tickets/77", "/api/v2/tickets/77"]


def freshdesk_ok(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/conversations"):
        return httpx.Response(200, json=[])
    return httpx.Response(200, json={"id": 77})


def test_429_twice_is_an_error(no_sleep: list[float]) -> None:
    rec = Recorder(lambda r: httpx.Response(429, headers={"Retry-After": "1"}, json={"description": "limit"}))
    with pytest.raises(RemoteError, match="HTTP 429: limit.*after one retry"):
        fetch("freshdesk", "77", env=ENV, transport=rec.transport)
    assert len(rec.requests) == 2 and no_sleep == [1.0]


def test_429_with_a_long_retry_after_is_not_waited_for(no_sleep: list[float]) -> None:
    rec = Recorder(lambda r: httpx.Response(429, headers={"Retry-After": "3600"}))
    with pytest.raises(RemoteError, match="wait 3600 s, longer than 60 s"):
        fetch("freshdesk", "77", env=ENV, transport=rec.transport)
    assert len(rec.requests) == 1 and no_sleep == []


def test_timeouts_and_connection_errors_are_clear() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)
    with pytest.raises(RemoteError, match="timed out after 30 s"):
        fetch("zendesk", "35436", env=ENV, transport=httpx.MockTransport(slow))

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect to {request.url}", request=request)
    with pytest.raises(RemoteError, match="ConnectError") as info:
        post("slack", {"text": "x"}, ticket=None, env={"SLACK_WEBHOOK_URL": WEBHOOK}, dry_run=False,
             transport=httpx.MockTransport(down))
    assert not leaks(str(info.value))


# -- post -------------------------------------------------------------------------------------


def test_post_zendesk_puts_only_the_internal_note(zendesk_payload: dict[str, Any]) -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"ticket": {"id": 60412}, "audit": {"id": 1}}))
    out = post("zendesk-note", zendesk_payload, ticket="60412", env=ENV, transport=rec.transport, dry_run=False)
    [req] = rec.requests
    assert req.method == "PUT" and str(req.url) == "https://acme.zendesk.com/api/v2/tickets/60412.json"
    assert req.headers["Authorization"] == basic("agent@example.com/token", ZD_TOKEN)
    sent = json.loads(req.content)
    assert sent == zendesk_payload["internal_note"] and sent["ticket"]["comment"]["public"] is False
    draft_body = zendesk_payload["draft_public_reply"]["ticket"]["comment"]["body"]
    assert draft_body not in req.content.decode() and "draft" not in sent
    assert out["status"] == 200 and out["dry_run"] is False and not leaks(json.dumps(out))


def test_post_refuses_a_public_comment(zendesk_payload: dict[str, Any]) -> None:
    draft = zendesk_payload["draft_public_reply"]
    rec = Recorder(lambda r: httpx.Response(200))
    for payload in ({"internal_note": {"ticket": draft["ticket"]}}, {"internal_note": draft}, draft):
        with pytest.raises(InputError):
            post("zendesk-note", payload, ticket="1", env=ENV, transport=rec.transport, dry_run=False)
    assert rec.requests == []


def test_dry_run_makes_no_request_and_shows_no_secret(zendesk_payload: dict[str, Any]) -> None:
    def forbidden(request: httpx.Request) -> httpx.Response:
        raise AssertionError("a dry run must not send anything")
    env = {**ENV, "SLACK_WEBHOOK_URL": WEBHOOK}
    out = post("zendesk-note", zendesk_payload, ticket="60412", env=env, transport=httpx.MockTransport(forbidden))
    assert out == {"dry_run": True, "method": "PUT", "url": "https://acme.zendesk.com/api/v2/tickets/60412.json",
                   "body": zendesk_payload["internal_note"]}
    slack = post("slack", {"channel": "#eng", "text": "t", "blocks": []}, ticket=None, env=env,
                 transport=httpx.MockTransport(forbidden))
    assert slack["url"] == "https://hooks.slack.com/***" and "channel" not in slack["body"]
    jira = post("jira-issue", {"fields": {"summary": "s"}}, ticket=None, env=env,
                transport=httpx.MockTransport(forbidden))
    assert jira["url"] == "https://acme.atlassian.net/rest/api/3/issue" and jira["method"] == "POST"
    assert not leaks(json.dumps([out, slack, jira]))


def test_dry_run_without_environment_lists_what_a_post_needs(zendesk_payload: dict[str, Any]) -> None:
    out = post("zendesk-note", zendesk_payload, ticket="60412", env={})
    assert out["url"] == "https://{ZENDESK_SUBDOMAIN}.zendesk.com/api/v2/tickets/60412.json"
    assert out["missing_env"] == ["ZENDESK_SUBDOMAIN", "ZENDESK_EMAIL", "ZENDESK_API_TOKEN"]
    with pytest.raises(InputError, match="zendesk: set ZENDESK_SUBDOMAIN, ZENDESK_EMAIL, ZENDESK_API_TOKEN"):
        post("zendesk-note", zendesk_payload, ticket="60412", env={}, dry_run=False)


def test_post_zendesk_uses_the_payload_ticket_id_when_none_given(zendesk_payload: dict[str, Any]) -> None:
    out = post("zendesk-note", zendesk_payload, ticket=None, env=ENV)
    assert out["url"].endswith(f"/tickets/{zendesk_payload['ticket_id']}.json")


def test_post_jira_issue() -> None:
    rec = Recorder(lambda r: httpx.Response(201, json={"id": "10001", "key": "ENG-7", "self": "https://x"}))
    payload = {"fields": {"project": {"key": "ENG"}, "summary": "s"}}
    out = post("jira-issue", payload, ticket=None, env=ENV, transport=rec.transport, dry_run=False)
    [req] = rec.requests
    assert req.method == "POST" and str(req.url) == "https://acme.atlassian.net/rest/api/3/issue"
    assert req.headers["Authorization"] == basic("eng@example.com", JIRA_TOKEN)
    assert json.loads(req.content) == payload and out["response"]["key"] == "ENG-7" and out["status"] == 201


def test_post_jira_error_is_clear() -> None:
    rec = Recorder(lambda r: httpx.Response(400, json={"errorMessages": [],
                                                      "errors": {"project": "valid project is required"}}))
    with pytest.raises(RemoteError, match="HTTP 400: project: valid project is required") as info:
        post("jira-issue", {"fields": {}}, ticket=None, env=ENV, transport=rec.transport, dry_run=False)
    assert not leaks(str(info.value))


def test_post_slack_with_bot_token_checks_ok() -> None:
    rec = Recorder(lambda r: httpx.Response(200, json={"ok": True, "ts": "1.2"}))
    env = {"SLACK_BOT_TOKEN": SLACK_TOKEN}
    msg = {"channel": "C123", "text": "t", "blocks": []}
    out = post("slack", msg, ticket=None, env=env, transport=rec.transport, dry_run=False)
    [req] = rec.requests
    assert str(req.url) == "https://slack.com/api/chat.postMessage"
    assert req.headers["Authorization"] == f"Bearer {SLACK_TOKEN}" and json.loads(req.content) == msg
    assert out["response"]["ok"] is True and not leaks(json.dumps(out))
    failing = Recorder(lambda r: httpx.Response(200, json={"ok": False, "error": "channel_not_found"}))
    with pytest.raises(RemoteError, match="ok=false: channel_not_found") as info:
        post("slack", msg, ticket=None, env=env, transport=failing.transport, dry_run=False)
    assert not leaks(str(info.value))
    with pytest.raises(InputError, match="no channel"):
        post("slack", {"text": "t", "blocks": []}, ticket=None, env=env, transport=rec.transport, dry_run=False)


def test_post_slack_webhook_never_logs_or_shows_the_url(caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(lambda r: httpx.Response(200, text="ok"))
    with caplog.at_level(logging.DEBUG):
        out = post("slack", {"channel": "#eng", "text": "t", "blocks": []}, ticket=None,
                   env={"SLACK_WEBHOOK_URL": WEBHOOK}, transport=rec.transport, dry_run=False)
    [req] = rec.requests
    assert str(req.url) == WEBHOOK and "Authorization" not in req.headers
    assert "channel" not in json.loads(req.content)
    assert out["url"] == "https://hooks.slack.com/***" and out["response"] == "ok"
    assert any("HTTP Request" in r.getMessage() for r in caplog.records)  # httpx did log the request ...
    assert not leaks(caplog.text) and not leaks(json.dumps(out))  # ... without the secret
    bad = Recorder(lambda r: httpx.Response(404, text="no_service"))
    with pytest.raises(RemoteError, match="HTTP 404: no_service") as info:
        post("slack", {"text": "t"}, ticket=None, env={"SLACK_WEBHOOK_URL": WEBHOOK}, transport=bad.transport,
             dry_run=False)
    assert not leaks(str(info.value))


def test_post_slack_without_credentials() -> None:
    with pytest.raises(InputError, match="SLACK_BOT_TOKEN"):
        post("slack", {"channel": "C1", "text": "t"}, ticket=None, env={}, dry_run=False)


def test_post_rejects_markdown_and_unknown_kinds() -> None:
    with pytest.raises(InputError, match="nothing to post"):
        post("markdown", {"text": "x"}, ticket=None, env=ENV)
    with pytest.raises(InputError, match="zendesk-note, jira-issue, slack"):
        post("teams", {}, ticket=None, env=ENV)


def test_session_repr_has_no_secret() -> None:
    s = http._Session("zendesk", {"Authorization": basic("a", ZD_TOKEN)}, [ZD_TOKEN], None)
    try:
        assert not leaks(repr(s)) and not leaks(str(vars(s).get("_client")))
    finally:
        s.close()
