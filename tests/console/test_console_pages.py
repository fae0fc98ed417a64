"""The review console's pages, over TestClient (no browser): sign-in, per-role pages and controls,
the live customer-safe check, and review actions going through the same rules as the JSON API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

DEMO = Path(__file__).resolve().parents[2] / "src" / "escalation" / "demo"
LEAK_HOST = "db-3.internal.lumen.io"
CLEAN = "Hi Aiko,\n\nWe are working on the API errors and will update you within two hours.\n\nThank you."


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def page(c: TestClient, path: str, status: int = 200) -> str:
    r = c.get(path, follow_redirects=False)
    assert r.status_code == status, (path, r.status_code, r.text[:500])
    return r.text


def esc_state(world: Any, esc_id: int) -> dict[str, Any]:
    with TestClient(world.app) as c:
        r = c.get(f"/escalations/{esc_id}", headers=world.api("owner"))
        assert r.status_code == 200
        return dict(r.json()["escalation"])


def act(c: TestClient, esc_id: int, **form: str) -> Any:
    html = page(c, f"/ui/escalations/{esc_id}")
    return c.post(f"/ui/escalations/{esc_id}/act", data={"csrf": csrf_of(html), **form}, follow_redirects=False)


# ---------------------------------------------------------------- sign-in


def test_pages_need_a_session_and_login_sets_one(world: Any) -> None:
    c = world.client()
    r = c.get("/ui/escalations/1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=%2Fui%2Fescalations%2F1")
    login = page(c, "/ui/login")
    assert '<label for="name">' in login and '<label for="api_key">' in login
    bad = c.post("/ui/login", data={"name": world.names["support"], "api_key": "esk_wrong"}, follow_redirects=False)
    assert bad.status_code == 401 and "Unknown user name or API key" in bad.text
    # the right key under another user's name is refused too
    other = c.post("/ui/login", data={"name": world.names["owner"], "api_key": world.keys["support"]},
                   follow_redirects=False)
    assert other.status_code == 401
    ok = c.post("/ui/login", data={"name": world.names["support"], "api_key": world.keys["support"],
                                   "next": "/ui/pack"}, follow_redirects=False)
    assert ok.status_code == 303 and ok.headers["location"] == "/ui/pack"
    cookie = ok.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/ui" in cookie
    assert "support-user" in page(c, "/ui")


def test_login_never_redirects_off_site(world: Any) -> None:
    c = world.client()
    r = c.post("/ui/login", data={"name": world.names["support"], "api_key": world.keys["support"],
                                  "next": "//evil.example/ui"}, follow_redirects=False)
    assert r.headers["location"] == "/ui"


def test_a_tampered_session_cookie_is_ignored(world: Any) -> None:
    c = world.client("support")
    token = c.cookies.get("escalate_console")
    payload, mac = token.split(".")
    c.cookies.clear()
    c.cookies.set("escalate_console", payload + "." + mac[::-1], path="/ui")
    assert c.get("/ui", follow_redirects=False).status_code == 303


def test_logout_ends_the_session(world: Any) -> None:
    c = world.client("support")
    html = page(c, "/ui")
    r = c.post("/ui/logout", data={"csrf": csrf_of(html)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login"
    assert c.get("/ui", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------- the queue


@pytest.mark.parametrize("role", ["owner", "support", "success", "engineering_triage", "account_owner"])
def test_every_role_sees_the_queue(world: Any, role: str) -> None:
    html = page(world.client(role), "/ui")
    assert "<h1>Review queue</h1>" in html and "Nakatomi Trading" in html
    assert 'data-due="' in html  # live countdowns


def test_account_owner_sees_only_their_accounts(world: Any) -> None:
    c = world.client("account_owner")
    html = page(c, "/ui")
    assert "Nakatomi Trading" in html and "Massive Dynamic" not in html
    assert "your own accounts only" in html
    page(c, f"/ui/escalations/{world.escalations['02']}", status=403)
    page(c, f"/ui/escalations/{world.escalations['01']}")


def test_queue_is_sorted_by_sla_and_filters(world: Any) -> None:
    c = world.client("support")
    html = page(c, "/ui")
    dues = re.findall(r'<span class="countdown" data-due="([^"]+)"', html)
    assert len(dues) >= 3 and dues == sorted(dues)  # rows without an SLA target come last
    assert html.index("Nakatomi Trading") < html.index("Massive Dynamic")
    for col in ("Severity", "Triggers", "Owner", "Checklist", "Area"):
        assert f'<th scope="col">{col}</th>' in html
    sev1 = page(c, "/ui?severity=Sev1")
    assert "Nakatomi Trading" in sev1 and "Massive Dynamic" not in sev1
    vip = page(c, "/ui?trigger=vip_account")
    assert "Massive Dynamic" in vip and "Nakatomi Trading" not in vip
    api = page(c, "/ui?product_area=api&owner=API+Platform")
    assert "Nakatomi Trading" in api and "Massive Dynamic" not in api
    none = page(c, "/ui?owner=Mobile")
    assert "No escalations match." in none


def test_queue_filters_answer_htmx_with_the_table_only(world: Any) -> None:
    c = world.client("support")
    r = c.get("/ui?severity=Sev2", headers={"HX-Request": "true"})
    assert r.status_code == 200
    assert r.text.lstrip().startswith("<table") and "<html" not in r.text
    assert "Massive Dynamic" in r.text and "Nakatomi Trading" not in r.text


# ---------------------------------------------------------------- the packet


@pytest.mark.parametrize("role", ["owner", "support", "success", "engineering_triage", "account_owner"])
def test_packet_page_renders_for_every_role(world: Any, role: str) -> None:
    html = page(world.client(role), f"/ui/escalations/{world.escalations['01']}")
    for heading in ("Summary", "Reproduction steps", "Owner and next actions", "Missing information",
                    "Claims and their evidence", "Customer update", "Ticket thread", "History"):
        assert f">{heading}</h2>" in html
    assert "What would change it" in html and "The policy that decides it" in html
    assert '<nav class="on-page" aria-label="On this page">' in html and 'href="#customer-update"' in html
    assert "Sev2 if failures turn out to be intermittent or partial" in html


def test_claims_show_their_evidence_marked_and_internal_sources_flagged(world: Any) -> None:
    html = page(world.client("support"), f"/ui/escalations/{world.escalations['01']}")
    claims = re.findall(r'<li class="claim" tabindex="0" id="(claim-\d+)" aria-describedby="(claim-\d+-ev)">', html)
    assert len(claims) > 20 and all(f"{a}-ev" == b for a, b in claims)
    # the quote is highlighted in its ticket event
    assert "<mark>Since about 09:40 JST today (2026-10-06) every call we make" in html
    # the log line (an attachment: internal) is flagged internal
    assert re.search(r'Attachment a1 \(log\) <span class="badge internal">internal</span>', html)
    assert "This quote was not found" not in html
    # internal notes in the thread are styled apart
    assert 'class="event internal"' in html and "internal note</span>" in html
    assert '<li class="event" id="src-ticket-e1">' in html


def test_missing_information_is_copy_ready(world: Any) -> None:
    # demo case 05 misses four items but triggers nothing; on a strategic account it escalates (vip_account)
    case = json.loads((DEMO / "05-duff-vague-something-went-wrong.case.json").read_text())
    case["account"].update(id="acc-1001", name="Globex Corporation", tier="strategic")
    with TestClient(world.app) as api:
        r = api.post("/cases", content=json.dumps(case), headers=world.api("support"))
    assert r.status_code == 201 and r.json()["escalated"]
    html = page(world.client("support"), f"/ui/escalations/{r.json()['escalation_id']}")
    assert 'id="missing-questions" readonly' in html and 'data-copy="missing-questions"' in html
    assert "1. Which workspace is affected?" in html
    assert '<label for="missing-questions">' in html


def test_controls_per_role(world: Any) -> None:
    esc = world.escalations["01"]
    support = page(world.client("support"), f"/ui/escalations/{esc}")
    for control in ('id="update-text"', 'id="approve-btn"', 'value="edit"', 'id="override-form"',
                    'id="reject-form"', 'value="start"'):
        assert control in support, control
    triage = page(world.client("engineering_triage"), f"/ui/escalations/{esc}")
    for control in ('id="update-text"', 'id="approve-btn"', 'value="edit"', 'value="send"', 'id="override-form"',
                    'id="reject-form"', 'value="start"', 'hx-post='):
        assert control not in triage, control
    assert "may not edit or approve customer updates" in triage
    assert 'href="/ui/signals"' not in triage and 'href="/ui/audit"' not in triage
    assert 'href="/ui/signals"' in support and 'href="/ui/audit"' in support
    own = page(world.client("account_owner"), f"/ui/escalations/{esc}")
    assert 'id="approve-btn"' in own and 'href="/ui/signals"' not in own


# ---------------------------------------------------------------- the customer-update editor


def test_check_endpoint_reports_findings_and_the_approve_state(world: Any) -> None:
    c = world.client("support")
    esc = world.escalations["01"]
    token = csrf_of(page(c, f"/ui/escalations/{esc}"))
    bad = c.post(f"/ui/escalations/{esc}/check", data={"csrf": token, "text": f"Hi, {LEAK_HOST} is down."})
    assert bad.status_code == 200 and "<html" not in bad.text
    assert f"<mark>{LEAK_HOST}</mark> breaks <strong>hostname</strong> (§8.2)" in bad.text
    assert re.search(r'id="approve-btn"\s+disabled', bad.text)
    good = c.post(f"/ui/escalations/{esc}/check", data={"csrf": token, "text": CLEAN})
    assert good.status_code == 200 and "Passes the customer-safe check" in good.text
    assert "breaks" not in good.text
    assert re.search(r'id="approve-btn"\s*>', good.text)


def test_check_endpoint_refuses_roles_that_cannot_edit_and_forged_posts(world: Any) -> None:
    esc = world.escalations["01"]
    triage = world.client("engineering_triage")
    token = csrf_of(page(triage, f"/ui/escalations/{esc}"))
    r = triage.post(f"/ui/escalations/{esc}/check", data={"csrf": token, "text": CLEAN})
    assert r.status_code == 403
    support = world.client("support")
    r = support.post(f"/ui/escalations/{esc}/check", data={"csrf": "forged", "text": CLEAN})
    assert r.status_code == 403
    r = support.post(f"/ui/escalations/{esc}/check", data={"csrf": token, "text": CLEAN})
    assert r.status_code == 403  # another session's token
    assert world.client().post(f"/ui/escalations/{esc}/check", data={"text": CLEAN},
                               follow_redirects=False).status_code == 303


def test_approve_is_refused_while_the_update_fails_then_approve_and_send(world: Any) -> None:
    c = world.client("support")
    esc = world.escalations["01"]
    r = act(c, esc, action="approve", text=f"Our host {LEAK_HOST} failed.")
    assert r.status_code == 422 and "customer-safe check" in r.text and LEAK_HOST in r.text
    state = esc_state(world, esc)
    assert state["state"] == "draft" and state["final_update"] is None  # the edit was rolled back too
    r = act(c, esc, action="approve", text=CLEAN)
    assert r.status_code == 303 and r.headers["location"] == f"/ui/escalations/{esc}?done=approve"
    state = esc_state(world, esc)
    assert state["state"] == "approved" and state["final_update"] == CLEAN
    html = page(c, r.headers["location"])
    assert "Customer update approved." in html and 'value="send"' in html
    assert '<span class="add">+We are working on the API errors' in html  # the diff from the draft
    r = act(c, esc, action="send")
    assert r.status_code == 303 and esc_state(world, esc)["state"] == "sent"
    audit = TestClient(world.app).get("/audit", headers=world.api("owner")).json()["entries"]
    actions = [e["action"] for e in audit if e["subject"] == f"escalation:{esc}"]
    assert actions[:3] == ["update.send", "review.approve", "review.edit"]
    assert {e["actor"] for e in audit if e["subject"] == f"escalation:{esc}" and e["action"] != "packet.run"} == {
        "support-user"}


def test_save_edit_keeps_a_failing_update_but_blocks_approval(world: Any) -> None:
    c = world.client("success")
    esc = world.escalations["02"]
    r = act(c, esc, action="edit", text=f"See {LEAK_HOST}.")
    assert r.status_code == 303
    html = page(c, r.headers["location"])
    assert "Customer update saved." in html and f"<mark>{LEAK_HOST}</mark>" in html
    assert re.search(r'id="approve-btn"\s+disabled', html)
    r = act(c, esc, action="approve")
    assert r.status_code == 422
    assert esc_state(world, esc)["state"] == "in_review"


def test_engineering_triage_cannot_act_even_by_posting(world: Any) -> None:
    c = world.client("engineering_triage")
    esc = world.escalations["01"]
    for form in ({"action": "approve", "text": CLEAN}, {"action": "edit", "text": CLEAN},
                 {"action": "override", "level": "Sev2", "reason": "x"}, {"action": "reject", "reason": "x"},
                 {"action": "send"}, {"action": "start"}):
        r = act(c, esc, **form)
        assert r.status_code == 403, form
    assert esc_state(world, esc)["state"] == "draft"


def test_account_owner_cannot_act_on_another_account(world: Any) -> None:
    c = world.client("account_owner")
    own = world.escalations["01"]
    token = csrf_of(page(c, f"/ui/escalations/{own}"))
    other = world.escalations["02"]
    r = c.post(f"/ui/escalations/{other}/act", data={"csrf": token, "action": "start"}, follow_redirects=False)
    assert r.status_code == 403
    assert esc_state(world, other)["state"] == "draft"
    r = c.post(f"/ui/escalations/{own}/act", data={"csrf": token, "action": "start"}, follow_redirects=False)
    assert r.status_code == 303 and esc_state(world, own)["state"] == "in_review"


# ---------------------------------------------------------------- severity override and reject


def test_override_needs_a_reason_and_is_audited(world: Any) -> None:
    c = world.client("support")
    esc = world.escalations["01"]
    r = act(c, esc, action="override", level="Sev2", reason="  ")
    assert r.status_code == 422 and "override needs a reason" in r.text
    assert esc_state(world, esc)["severity"] == "Sev1"
    r = act(c, esc, action="override", level="Sev2", reason="Intermittent per engineering")
    assert r.status_code == 303
    state = esc_state(world, esc)
    assert state["severity"] == "Sev2" and state["severity_override"] == "Sev2"
    html = page(c, f"/ui/escalations/{esc}")
    assert "Intermittent per engineering" in html and "(Sev1 → Sev2)" in html
    audit_page = page(c, "/ui/audit")
    assert "review.override" in audit_page and "Intermittent per engineering" in audit_page
    entries = TestClient(world.app).get("/audit", headers=world.api("owner")).json()["entries"]
    override = next(e for e in entries if e["action"] == "review.override")
    assert override["detail"]["reason"] == "Intermittent per engineering" and override["actor"] == "support-user"


def test_reject_needs_a_reason(world: Any) -> None:
    c = world.client("owner")
    esc = world.escalations["03"]
    assert act(c, esc, action="reject", reason="").status_code == 422
    assert act(c, esc, action="reject", reason="Duplicate of another ticket").status_code == 303
    assert esc_state(world, esc)["state"] == "rejected"
    assert "No escalations match." not in page(c, "/ui?state=rejected")
    assert "Bluth" not in page(c, "/ui")  # rejected is not open


def test_unknown_action_and_unknown_escalation(world: Any) -> None:
    c = world.client("support")
    assert act(c, world.escalations["01"], action="explode").status_code == 422
    page(c, "/ui/escalations/999", status=404)


# ---------------------------------------------------------------- governance pages


def test_pack_page_is_read_only_and_shows_the_replay_hint_to_the_owner(world: Any) -> None:
    owner = page(world.client("owner"), "/ui/pack")
    for text in ("Severity rules", "SLA targets", "Routing", "Customer-safe language", "draft (sandbox)",
                 "sev1-core-unavailable", "15 min / 1 h", "API Platform", "hostname", "escalate replay"):
        assert text in owner, text
    support = page(world.client("support"), "/ui/pack")
    assert "Severity rules" in support and "escalate replay" not in support
    assert "<form" not in support.split("</header>", 1)[1]  # nothing to change here


def test_signals_dashboard_draws_svg_bars(world: Any) -> None:
    html = page(world.client("owner"), "/ui/signals")
    assert html.count("<svg") >= 2 and 'class="bar"' in html and "No data yet." in html
    assert "Packets per trigger" in html and "incident update" in html
    page(world.client("engineering_triage"), "/ui/signals", status=403)
    page(world.client("account_owner"), "/ui/audit", status=403)


def test_static_files_are_served(world: Any) -> None:
    c = TestClient(world.app)
    js = c.get("/ui/static/htmx.min.js")
    assert js.status_code == 200 and "htmx" in js.text[:200]
    assert c.get("/ui/static/console.css").status_code == 200
    assert c.get("/ui/static/console.js").status_code == 200
