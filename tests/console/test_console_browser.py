"""The review console in a real browser: Playwright driving Debian's Chromium against uvicorn.

One server (a background thread) and one database serve the module; each test signs in in
its own browser context at 1280×800 and fails on any console error or uncaught exception.
Screenshots go to a pytest temporary folder; the key ones are copied to docs/screenshots/
when they are missing there (set ESCALATE_UPDATE_SCREENSHOTS=1 to refresh them).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[2]
DOCS_SHOTS = ROOT / "docs" / "screenshots"
LEAK_HOST = "db-3.internal.lumen.io"
CLEAN = "Hi Aiko,\n\nWe are working on the API errors and will update you within two hours.\n\nThank you."

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is absent: install Debian's chromium "
                                                              "(apt-get install -y chromium) to run the browser tests")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, world_factory: Any) -> Iterator[tuple[str, Any]]:
    """(base URL, world): the app served by uvicorn on a free port in a background thread."""
    import uvicorn

    world = world_factory(tmp_path_factory.mktemp("console-live") / "console.db")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", world
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("console-screenshots")


class Session:
    """One signed-in browser context and its page, collecting console errors."""

    def __init__(self, browser: Any, base: str, world: Any, role: str, *, width: int = 1280,
                 height: int = 800) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.goto(base + "/ui")
        assert "/ui/login" in self.page.url
        self.page.get_by_label("User name").fill(world.names[role])
        self.page.get_by_label("API key").fill(world.keys[role])
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(base + "/ui")

    def goto(self, path: str) -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, (path, response.status if response else None)
        return self.page

    def close(self) -> None:
        self.context.close()
        assert not self.errors, self.errors


def save(page: Any, shots: Path, name: str, *, docs: bool = False, full: bool = True) -> None:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=full)
    if docs:
        target = DOCS_SHOTS / f"{name}.png"
        if not target.exists() or os.environ.get("ESCALATE_UPDATE_SCREENSHOTS"):
            DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)


@pytest.mark.parametrize("role", ["owner", "support", "success", "engineering_triage", "account_owner"])
def test_each_role_signs_in_and_sees_the_queue(live: tuple[str, Any], browser: Any, shots: Path, role: str) -> None:
    base, world = live
    s = Session(browser, base, world, role)
    page = s.page
    assert page.get_by_role("heading", name="Review queue").is_visible()
    rows = page.locator("table.queue tbody tr")
    assert rows.count() == (1 if role == "account_owner" else 4)
    # the live countdown runs against the service's clock
    first = page.locator("table.queue .countdown").first
    page.wait_for_function("el => /left|overdue/.test(el.textContent)", arg=first.element_handle())
    before = first.text_content()
    page.wait_for_timeout(1100)
    assert first.text_content() != before
    save(page, shots, f"queue-{role}")
    if role == "support":
        save(page, shots, "queue", docs=True)
        # filters swap the table in place (htmx) and keep the URL shareable
        page.get_by_label("Severity").select_option("Sev2")
        page.wait_for_url("**severity=Sev2**")
        page.wait_for_function("document.querySelectorAll('table.queue tbody tr').length === 1")
        assert "Massive Dynamic" in page.locator("table.queue").inner_text()
    s.close()


def test_packet_claims_show_their_evidence_on_focus_and_hover(live: tuple[str, Any], browser: Any,
                                                            shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "support")
    page = s.goto(f"/ui/escalations/{world.escalations['01']}")
    evidence = page.locator("#claim-0-ev")
    assert not evidence.is_visible()
    page.locator("#claim-0").focus()  # keyboard: claims are focusable (tabindex=0)
    assert evidence.is_visible()
    mark = evidence.locator("mark").first
    assert mark.is_visible() and "Since about 09:40 JST" in mark.inner_text()
    # an internal source (the log attachment) is marked internal when its claim is hovered
    log_claim = page.locator("li.claim", has=page.locator(".ref-internal", has_text="attachment:a1")).first
    log_claim.hover()
    ev = log_claim.locator(".evidence")
    assert ev.is_visible() and ev.locator(".badge.internal").first.is_visible()
    assert "api-gw-apne1-3" in ev.locator("mark").first.inner_text()
    log_claim.scroll_into_view_if_needed()
    save(page, shots, "packet-evidence", docs=True, full=False)
    # internal notes in the thread look different from public replies
    internal_bg = page.locator("li.event.internal").first.evaluate("el => getComputedStyle(el).backgroundColor")
    public_bg = page.locator("li.event:not(.internal)").first.evaluate("el => getComputedStyle(el).backgroundColor")
    assert internal_bg != public_bg
    page.locator("#claim-0").focus()
    page.evaluate("window.scrollTo(0, 0)")
    save(page, shots, "packet", docs=True, full=False)
    save(page, shots, "packet-full")
    s.close()


def test_editor_blocks_approval_on_a_finding_then_approves(live: tuple[str, Any], browser: Any,
                                                          shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "support")
    page = s.goto(f"/ui/escalations/{world.escalations['01']}")
    approve = page.locator("#approve-btn")
    assert approve.is_enabled()
    editor = page.get_by_label("Draft to send to the customer", exact=False)
    editor.fill(f"Hi Aiko,\n\nThe database host {LEAK_HOST} failed over.\n\nThank you.")
    editor.press("End")  # keyup → htmx check after 300 ms
    page.wait_for_selector("#approve-btn[disabled]")
    findings = page.locator("#update-status .findings")
    assert LEAK_HOST in findings.inner_text() and "hostname" in findings.inner_text()
    page.locator("#customer-update").scroll_into_view_if_needed()
    save(page, shots, "editor-finding", docs=True, full=False)
    editor.fill(CLEAN)
    editor.press("End")
    page.wait_for_selector("#approve-btn:not([disabled])")
    assert "Passes the customer-safe check" in page.locator("#update-status").inner_text()
    page.locator("#approve-btn").click()
    page.wait_for_url("**done=approve")
    assert page.get_by_text("Customer update approved.").is_visible()
    assert page.locator("pre.diff .add", has_text="We are working on the API errors").count() == 1
    assert page.get_by_role("button", name="Mark as sent").is_visible()
    save(page, shots, "editor-approved")
    s.close()


def test_engineering_triage_sees_no_review_controls(live: tuple[str, Any], browser: Any, shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "engineering_triage")
    page = s.goto(f"/ui/escalations/{world.escalations['02']}")
    for selector in ("#update-text", "#approve-btn", "#override-form", "#reject-form"):
        assert page.locator(selector).count() == 0, selector
    assert page.get_by_text("may not edit or approve customer updates").is_visible()
    assert page.get_by_role("link", name="Signals").count() == 0
    save(page, shots, "packet-engineering-triage")
    s.close()


def test_override_severity_with_a_reason_lands_in_the_audit_trail(live: tuple[str, Any], browser: Any,
                                                                 shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "success")
    page = s.goto(f"/ui/escalations/{world.escalations['02']}")
    form = page.locator("#override-form")
    form.get_by_label("Severity").select_option("Sev3")
    reason = "Workaround confirmed by the customer's admin"
    form.get_by_label("Reason (required", exact=False).fill(reason)
    form.get_by_role("button", name="Override severity").click()
    page.wait_for_url("**done=override")
    assert page.locator("#review-steps", has_text=reason).is_visible()
    assert page.locator("#audit-entries", has_text="review.override").is_visible()
    s.goto("/ui/audit")
    row = page.locator("#audit-table tbody tr", has_text="review.override")
    assert row.count() == 1 and reason in row.inner_text() and "(Sev2 → Sev3)" in row.inner_text()
    assert page.get_by_text("The hash chain is intact.").is_visible()
    save(page, shots, "audit", docs=True, full=False)
    s.close()


def test_dashboard_and_pack_pages_render(live: tuple[str, Any], browser: Any, shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "owner")
    page = s.goto("/ui/signals")
    chart = page.locator("#chart-packets_per_trigger svg")
    assert chart.is_visible() and chart.locator("rect.bar").count() >= 3
    assert chart.bounding_box()["width"] > 200
    save(page, shots, "signals", docs=True)
    page = s.goto("/ui/pack")
    assert page.get_by_role("heading", name="Severity rules", exact=False).is_visible()
    assert page.get_by_text("escalate replay", exact=False).is_visible()
    save(page, shots, "pack", docs=True, full=False)
    s.close()


def test_narrow_screens_wrap_instead_of_scrolling_sideways(live: tuple[str, Any], browser: Any,
                                                         shots: Path) -> None:
    base, world = live
    s = Session(browser, base, world, "support", width=390, height=844)
    for path, name in ((f"/ui/escalations/{world.escalations['04']}", "packet-narrow"), ("/ui/signals", None)):
        page = s.goto(path)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
        if name:
            save(page, shots, name, full=False)
    s.close()


def test_keyboard_focus_is_visible(live: tuple[str, Any], browser: Any) -> None:
    base, world = live
    s = Session(browser, base, world, "support")
    page = s.goto("/ui")
    page.keyboard.press("Tab")  # the skip link comes first
    assert page.evaluate("document.activeElement.className") == "skip"
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    s.close()
