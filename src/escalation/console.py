"""The review console: server-rendered pages under ``/ui`` over the same data and rules as the JSON API.

`mount(app, rt)` adds the pages and their static files (htmx, CSS, a small script) to the
service application. The console is a thin skin:

- it signs people in with their user name and API key and keeps them signed in with an
  HMAC-signed session cookie (the secret from ``ESCALATE_SECRET_KEY``, else a random
  per-process secret, so sessions end when the process restarts); every POST carries a
  CSRF token derived from the session;
- every page and every action checks the caller's role with `permissions.allowed`, exactly
  as the API does; controls a role may not use are not rendered, and the endpoints refuse
  anyway (403);
- review actions go through `review.apply`, `store.apply_outcome` and `audit.append`, the
  same three steps as the API's review endpoint, so the state machine lives in one place;
- the customer-update editor asks ``POST /ui/escalations/{id}/check`` while the reviewer
  types (htmx) and shows which words break which rule of the pack's language policy.

Pages: ``/ui`` (the queue), ``/ui/escalations/{id}`` (the packet, its evidence, the ticket
thread and the review controls), ``/ui/pack``, ``/ui/signals``, ``/ui/audit`` and
``/ui/login``. See docs/console.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.staticfiles import StaticFiles

from . import audit, permissions, review, signals, store
from .case import Case, parse_case
from .customer_safe import Finding, check_for_case
from .evidence import Source, collect

if TYPE_CHECKING:
    from .service import Runtime

WEB_DIR = Path(__file__).resolve().parent / "web"
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"
SECRET_ENV = "ESCALATE_SECRET_KEY"
COOKIE = "escalate_console"
SESSION_SECONDS = 12 * 3600
"""A console session lasts this long; then the reviewer signs in again."""
MAX_FORM_BYTES = 256 * 1024
OPEN_STATES = ("draft", "in_review", "approved")
EXCERPT_CONTEXT = 220
"""Characters of the source shown on either side of a quoted piece of evidence."""
MAX_SOURCE_CHARS = 20_000
"""Attachments longer than this are shown in part in the thread (the quoted lines are always shown)."""

BAR_WIDTH = 190
"""The longest bar of a signals chart, in SVG units (the chart is 420 wide: label, bar, value)."""

DONE_MESSAGES = {
    "start": "Review started.", "edit": "Customer update saved.", "approve": "Customer update approved.",
    "reject": "Escalation rejected.", "override": "Severity overridden; the reason is in the audit trail.",
    "send": "Customer update marked as sent.", "login": "Signed in.",
}

router = APIRouter(prefix="/ui", include_in_schema=False)


# ---------------------------------------------------------------- sessions

@dataclass(frozen=True)
class User:
    """The signed-in reviewer (the console's counterpart of the API's Principal)."""

    name: str
    role: str
    accounts: frozenset[str]
    nonce: str


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        self.location = location


class _PageError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Signer:
    """HMAC-SHA256 signed, base64 JSON tokens (the session cookie), standard library only."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, data: Mapping[str, Any]) -> str:
        payload = _b64(json.dumps(dict(data), separators=(",", ":"), sort_keys=True).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def unsign(self, token: str | None) -> dict[str, Any] | None:
        if not token or token.count(".") != 1:
            return None
        payload, mac = token.split(".")
        try:
            if not hmac.compare_digest(mac, self._mac(payload)):
                return None
            data = json.loads(_unb64(payload))
        except (ValueError, UnicodeError, binascii.Error):
            return None
        return data if isinstance(data, dict) else None

    def csrf(self, nonce: str) -> str:
        return _b64(hmac.new(self.secret, b"csrf:" + nonce.encode("utf-8"), hashlib.sha256).digest())[:32]


@dataclass
class Console:
    """What the console's handlers share: the service runtime, the signer and the templates."""

    rt: Runtime
    signer: Signer
    env: jinja2.Environment = field(init=False)

    def __post_init__(self) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
                                      autoescape=jinja2.select_autoescape(["html"]),
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.env.globals.update(static=lambda name: f"/ui/static/{name}", fmt_time=_fmt_time,
                                DONE_MESSAGES=DONE_MESSAGES)

    # ------------------------------------------------------------ who is calling

    def user(self, request: Request) -> User | None:
        data = self.signer.unsign(request.cookies.get(COOKIE))
        if data is None:
            return None
        issued = data.get("t")
        if not isinstance(issued, int | float) or time.time() - issued > SESSION_SECONDS:
            return None
        with self.rt.session() as s:
            row = store.user_by_name(s, str(data.get("u", "")))
            # the session names the key it was opened with: a rotated key ends it
            if row is None or not hmac.compare_digest(row.api_key_hash[:16], str(data.get("k", ""))):
                return None
            return User(name=row.name, role=row.role, accounts=frozenset(row.accounts or []),
                        nonce=str(data.get("n", "")))

    def need_user(self, request: Request) -> User:
        user = self.user(request)
        if user is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            raise _Redirect("/ui/login?" + urlencode({"next": target}))
        return user

    def may(self, user: User, action: str, account_id: str | None = None) -> bool:
        try:
            return permissions.allowed(self.rt.pack, user.role, action, account_id=account_id,
                                       user_accounts=user.accounts).allowed
        except permissions.PermissionsError:
            return False

    def require(self, user: User, action: str, account_id: str | None = None) -> None:
        try:
            decision = permissions.allowed(self.rt.pack, user.role, action, account_id=account_id,
                                           user_accounts=user.accounts)
        except permissions.PermissionsError as e:
            raise _PageError(403, f"{user.name} may not {action}: {e}") from None
        if not decision.allowed:
            raise _PageError(403, f"{user.name} ({user.role}) may not {action}: {decision.reason}")

    def restricted(self, user: User) -> bool:
        try:
            return permissions.restricted(self.rt.pack, user.role)
        except permissions.PermissionsError:
            return True

    # ------------------------------------------------------------ rendering

    def render(self, request: Request, template: str, user: User | None, *, status: int = 200,
               **values: Any) -> HTMLResponse:
        rt = self.rt
        nav = {
            "signals": user is not None and self.may(user, "signals"),
            "audit": user is not None and self.may(user, "audit_read"),
        }
        page = self.env.get_template(template).render(
            user=user, csrf=self.signer.csrf(user.nonce) if user else "", pack=rt.pack,
            pack_status=rt.pack_status, server_now=rt.settings.now().isoformat(), nav=nav, **values)
        return HTMLResponse(page, status_code=status)


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (what HTML forms and htmx send), last value wins."""
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("application/x-www-form-urlencoded"):
        raise _PageError(415, "send the form as application/x-www-form-urlencoded")
    raw = await request.body()
    if len(raw) > MAX_FORM_BYTES:
        raise _PageError(413, f"the form is larger than {MAX_FORM_BYTES // 1024} KiB")
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=50)
    except (UnicodeDecodeError, ValueError):
        raise _PageError(400, "the form is not valid UTF-8 form data") from None
    return {k: v[-1] for k, v in parsed.items()}


def _check_post(c: Console, request: Request, user: User, form: Mapping[str, str]) -> None:
    """Refuse cross-site posts: the session's CSRF token must come with the form, from our own origin."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host", ""):
        raise _PageError(403, "cross-origin form post refused")
    if not hmac.compare_digest(form.get("csrf", ""), c.signer.csrf(user.nonce)):
        raise _PageError(403, "the form's session token is missing or stale; reload the page and try again")


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


def _fmt_time(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).strftime("%Y-%m-%d %H:%M UTC")
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d %H:%M UTC")


# ---------------------------------------------------------------- login

@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    c = _console(request)
    return c.render(request, "login.html", None, next=_safe_next(next), error=None, name="")


@router.post("/login")
async def login(request: Request) -> Response:
    c = _console(request)
    form = await _form(request)
    name, key = form.get("name", "").strip(), form.get("api_key", "").strip()
    target = _safe_next(form.get("next"))

    def check() -> tuple[str, str] | None:
        with c.rt.session() as s:
            row = store.user_by_api_key(s, key)
            if row is None or not hmac.compare_digest(row.name.encode("utf-8"), name.encode("utf-8")):
                return None
            return row.name, row.api_key_hash[:16]

    found = await run_in_threadpool(check) if name and key else None
    if found is None:
        return c.render(request, "login.html", None, status=401, next=target, name=name,
                        error="Unknown user name or API key. Ask the skill owner for a key "
                              "(`escalate user add NAME --role ROLE`).")
    token = c.signer.sign({"u": found[0], "k": found[1], "n": secrets.token_urlsafe(16), "t": int(time.time())})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/ui", httponly=True, samesite="lax",
                        secure=request.url.scheme == "https")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    c = _console(request)
    form = await _form(request)
    user = c.user(request)
    if user is not None:
        _check_post(c, request, user, form)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE, path="/ui")
    return response


# ---------------------------------------------------------------- the queue

def _blank(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


def _owner_teams(c: Console) -> list[str]:
    r = c.rt.pack.routing
    teams = [a.team for a in r.areas] + [r.security_team, r.triage_team]
    return list(dict.fromkeys(teams))


def _queue_rows(c: Console, s: Session, user: User, filters: Mapping[str, str | None]) -> list[dict[str, Any]]:
    state = filters.get("state") or "open"
    states = None if state == "all" else (OPEN_STATES if state == "open" else (state,))
    rows = store.list_escalations(
        s, states=states, severity=filters.get("severity"), trigger=filters.get("trigger"),
        product_area=filters.get("product_area"), owner=filters.get("owner"),
        account_ids=sorted(user.accounts) if c.restricted(user) else None)
    ids = [e.current_packet_id for e in rows if e.current_packet_id is not None]
    found: Iterable[store.PacketRow] = (
        s.scalars(select(store.PacketRow).where(store.PacketRow.id.in_(ids))) if ids else [])
    bodies = {p.id: p.body for p in found}
    accounts = {a.id: a for a in c.rt.pack.accounts}
    now = c.rt.settings.now()
    internal = c.may(user, "read_internal")
    out = []
    for e in rows:
        body = bodies.get(e.current_packet_id or -1, {})
        acc = accounts.get(e.account_id)
        tier = acc.tier if acc else (body.get("severity", {}).get("facts", {}).get("tier") or "—")
        failing = [str(x.get("key")) for x in body.get("checks", []) if not x.get("passed", False)]
        out.append({
            "id": e.id, "ticket": f"{e.source}:{e.ticket_id}", "subject": _subject(body),
            "account": acc.name if acc else e.account_id, "tier": tier, "state": e.state,
            "severity": e.effective_severity if internal else None,
            "overridden": e.severity_override is not None, "triggers": list(e.triggers or []) if internal else [],
            "product_area": e.product_area, "owner": (body.get("owner") or {}).get("team") or "—",
            "checks_passed": e.checks_passed, "failing": failing,
            "due": e.sla_due_at.isoformat() if e.sla_due_at else None,
            "overdue": bool(e.sla_due_at and e.sla_due_at < now),
            "sla_target": (body.get("sla") or {}).get("target_text"),
        })
    return out


def _subject(body: Mapping[str, Any]) -> str:
    summary = str(body.get("summary") or "")
    first = summary.split("\n", 1)[0]
    return first.split(" — ", 1)[0][:120]


@router.get("", response_class=HTMLResponse)
def queue(request: Request, trigger: str | None = None, severity: str | None = None, owner: str | None = None,
          product_area: str | None = None, state: str | None = None) -> HTMLResponse:
    c = _console(request)
    user = c.need_user(request)
    c.require(user, "list")
    filters = {"trigger": _blank(trigger), "severity": _blank(severity), "owner": _blank(owner),
               "product_area": _blank(product_area), "state": _blank(state) or "open"}
    with c.rt.session() as s:
        rows = _queue_rows(c, s, user, filters)
    upcoming = [r for r in rows if r["due"] and not r["overdue"]]
    values: dict[str, Any] = {"rows": rows, "filters": filters, "next_due": upcoming[0] if upcoming else None,
              "choices": {"trigger": [t.key for t in c.rt.pack.triggers.triggers],
                          "severity": list(c.rt.pack.severity.levels), "owner": _owner_teams(c),
                          "product_area": [a.key for a in c.rt.pack.routing.areas],
                          "state": ["open", "all", *store.STATES]},
              "internal": c.may(user, "read_internal"), "restricted": c.restricted(user),
              "done": DONE_MESSAGES.get(request.query_params.get("done", ""))}
    if request.headers.get("hx-request"):
        return c.render(request, "_queue_table.html", user, **values)
    return c.render(request, "queue.html", user, **values)


# ---------------------------------------------------------------- the packet

def _locate(text: str, quote: str) -> tuple[int, int] | None:
    """Where a quote occurs in its source: verbatim, else ignoring case and runs of whitespace."""
    if not quote:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    words = quote.split()
    if not words:
        return None
    m = re.search(r"\s+".join(re.escape(w) for w in words), text, re.IGNORECASE)
    return m.span() if m else None


def _excerpt(text: str, quote: str) -> dict[str, Any]:
    span = _locate(text, quote)
    if span is None:
        return {"found": False, "before": "", "mark": quote, "after": "", "cut_before": False, "cut_after": False}
    a, b = span
    lo, hi = max(0, a - EXCERPT_CONTEXT), min(len(text), b + EXCERPT_CONTEXT)
    if lo > 0:
        nl = text.rfind("\n", lo, a)
        lo = nl + 1 if nl >= 0 else lo
    if hi < len(text):
        nl = text.find("\n", b, hi)
        hi = nl if nl >= 0 else hi
    return {"found": True, "before": text[lo:a], "mark": text[a:b], "after": text[b:hi], "cut_before": lo > 0,
            "cut_after": hi < len(text)}


def _source_label(src: Source | None, ref: str) -> str:
    if src is None:
        return ref
    if src.kind == "ticket_event":
        what = "internal note" if src.visibility == "internal" else "public reply"
        return f"Ticket {ref.split(':', 1)[1]} · {what} by {src.author} ({src.role})"
    if src.kind == "attachment":
        return f"Attachment {ref.split(':', 1)[1]} ({src.attachment_kind})"
    if src.kind == "handbook":
        return f"Handbook {ref.split(':', 1)[1]}"
    if src.kind == "doc":
        return f"Product doc {ref.split(':', 1)[1]}"
    return {"ticket": "Ticket fields", "account": "Account record", "incident": "Linked incident"}.get(
        src.kind, ref)


def _anchor(ref: str) -> str:
    return "src-" + re.sub(r"[^A-Za-z0-9_-]+", "-", ref).strip("-")


@dataclass
class _PacketView:
    esc: store.EscalationRow
    body: dict[str, Any]
    case: Case | None
    values: dict[str, Any]


def _findings_json(findings: Iterable[Finding]) -> list[dict[str, Any]]:
    return [asdict(f) for f in findings]


def _update_findings(c: Console, case: Case | None, text: str) -> list[Finding]:
    """The customer-safe check the review rules run (`review.apply` does the same for edit, approve, send)."""
    return check_for_case(text, c.rt.pack.language, case, c.rt.pack.accounts)


def _marked(text: str, findings: Iterable[Finding]) -> list[tuple[str, bool]]:
    """The text cut into (piece, is_finding) parts, for showing findings in place."""
    spans = sorted({(f.start, f.end) for f in findings if 0 <= f.start < f.end <= len(text)})
    out: list[tuple[str, bool]] = []
    pos = 0
    for a, b in spans:
        if a < pos:
            continue
        out.append((text[pos:a], False))
        out.append((text[a:b], True))
        pos = b
    out.append((text[pos:], False))
    return [p for p in out if p[0]]


def _approve_state(c: Console, user: User, esc: store.EscalationRow, body: Mapping[str, Any],
                   findings: list[Finding]) -> tuple[bool, list[str]]:
    """Whether the approve button is enabled, and why not (a preview: `review.apply` decides)."""
    why: list[str] = []
    if not c.may(user, "approve", esc.account_id):
        why.append("your role may not approve customer updates")
    if esc.state not in review.TRANSITIONS["approve"][0]:
        why.append(f"the escalation is {esc.state.replace('_', ' ')}")
    failing = review.context_of(esc, body).failing_checks
    if failing:
        why.append(f"the packet fails checks: {', '.join(failing)}")
    if findings:
        why.append(f"the update has {len(findings)} customer-safe finding{'s' if len(findings) != 1 else ''}")
    return not why, why


def _load(c: Console, s: Session, user: User, escalation_id: int, action: str = "read") -> store.EscalationRow:
    esc = store.get_escalation(s, escalation_id)
    if esc is None:
        raise _PageError(404, f"no escalation {escalation_id}")
    c.require(user, action, esc.account_id)
    return esc


def _packet_and_case(s: Session, esc: store.EscalationRow) -> tuple[dict[str, Any], Case | None]:
    packet_row = store.get_packet(s, esc.current_packet_id) if esc.current_packet_id else None
    body: dict[str, Any] = packet_row.body if packet_row else {}
    case_row = store.get_case(s, packet_row.case_id) if packet_row else None
    case = parse_case(case_row.body, where=f"stored case {case_row.id}") if case_row else None
    return body, case


def _editor_values(c: Console, user: User, esc: store.EscalationRow, body: Mapping[str, Any], case: Case | None,
                   text: str | None) -> dict[str, Any]:
    """What the customer-update editor and its status fragment show (the text checked: typed, else stored)."""
    current = esc.final_update if esc.final_update is not None else esc.draft_update
    editor_text = text if text is not None else current
    findings = _update_findings(c, case, editor_text)
    approve_ok, approve_why = _approve_state(c, user, esc, body, findings)
    can = {a: c.may(user, a, esc.account_id) for a in ("edit", "approve", "send", "reject", "override",
                                                       "read_internal")}
    return {"current_update": current, "editor_text": editor_text, "findings": _findings_json(findings),
            "marked": _marked(editor_text, findings), "approve_ok": approve_ok, "approve_why": approve_why,
            "can": can}


def _packet_view(c: Console, s: Session, user: User, esc: store.EscalationRow, *, text: str | None = None
                 ) -> _PacketView:
    pack = c.rt.pack
    body, case = _packet_and_case(s, esc)
    internal = c.may(user, "read_internal", esc.account_id)
    by_ref = collect(case, pack).by_ref if case is not None else {}

    claims_by_part: dict[str, list[dict[str, Any]]] = {}
    if internal:
        for i, claim in enumerate(body.get("claims", [])):
            sources = []
            for src in claim.get("sources", []):
                found = by_ref.get(src["ref"])
                sources.append({
                    "ref": src["ref"], "label": _source_label(found, src["ref"]),
                    "internal": found is not None and found.visibility == "internal",
                    "policy": found is not None and found.kind == "handbook",
                    "anchor": _anchor(src["ref"]) if found is not None and found.kind in (
                        "ticket_event", "attachment") else None,
                    "excerpt": _excerpt(found.text if found else "", src.get("quote", "")),
                })
            part = str(claim.get("part", "other")).split(".")[0]
            claims_by_part.setdefault(part, []).append({"id": f"claim-{i}", "text": claim.get("text", ""),
                                                        "visibility": claim.get("visibility"),
                                                        "sources": sources})

    # the policy paragraphs that decide the severity, with the quoted words marked
    deciding: list[dict[str, Any]] = []
    sev = body.get("severity") or {}
    if internal and sev:
        quotes: dict[str, list[str]] = {}
        base = re.match(r"§\d+(?:\.\d+)?", str(sev.get("section", "")))
        if base:
            quotes.setdefault(f"handbook:{base.group(0)}", [])
        for claim in body.get("claims", []):
            if claim.get("part") == "severity":
                for src in claim.get("sources", []):
                    if src["ref"].startswith("handbook:"):
                        quotes.setdefault(src["ref"], []).append(src.get("quote", ""))
        for ref, qs in quotes.items():
            doc = pack.sections.get(ref.split(":", 1)[1])
            if doc is None:
                continue
            spans = sorted(sp for q in qs if (sp := _locate(doc.text, q)) is not None)
            pieces: list[tuple[str, bool]] = []
            pos = 0
            for a, b in spans:
                if a < pos:
                    continue
                pieces += [(doc.text[pos:a], False), (doc.text[a:b], True)]
                pos = b
            pieces.append((doc.text[pos:], False))
            deciding.append({"ref": ref, "title": doc.title, "pieces": [p for p in pieces if p[0]]})

    thread: list[dict[str, Any]] = []
    attachments: list[dict[str, Any]] = []
    if case is not None:
        for ev in case.ticket.events:
            if ev.visibility == "internal" and not internal:
                continue
            thread.append({"id": ev.id, "anchor": _anchor(f"ticket:{ev.id}"), "author": ev.author.name,
                           "role": ev.author.role, "at": ev.at, "internal": ev.visibility == "internal",
                           "body": ev.body, "changes": ev.changes or {}})
        if internal:
            for att in case.attachments:
                shown = att.text if len(att.text) <= MAX_SOURCE_CHARS else att.text[:MAX_SOURCE_CHARS]
                attachments.append({"id": att.id, "anchor": _anchor(f"attachment:{att.id}"), "name": att.name,
                                    "kind": att.kind, "text": shown, "cut": len(att.text) > len(shown)})

    editor = _editor_values(c, user, esc, body, case, text)
    current = editor["current_update"]
    levels = list(pack.severity.levels)
    acc = next((a for a in pack.accounts if a.id == esc.account_id), None)
    values = {
        "esc": esc, "packet": body, "internal": internal, "claims_by_part": claims_by_part, "deciding": deciding,
        "thread": thread, "attachments": attachments, "levels": levels, **editor,
        "diff": review.diff(esc.draft_update, current), "account": acc,
        "reviews": store.reviews_for(s, esc.id),
        "audit_entries": audit.entries(s, subject=f"escalation:{esc.id}", newest_first=True, limit=50),
        "packets": store.packets_for(s, esc.id), "subject": case.ticket.subject if case else _subject(body),
        "editable": esc.state in review.TRANSITIONS["edit"][0],
        "overridable": esc.state in review.TRANSITIONS["override"][0],
        "rejectable": esc.state in review.TRANSITIONS["reject"][0],
        "sendable": esc.state in review.TRANSITIONS["send"][0],
        "startable": esc.state in review.TRANSITIONS["start"][0],
        "part_titles": {"summary": "Summary", "severity": "Severity", "product_area": "Product area",
                        "owner": "Owner", "triggers": "Triggers", "sla": "SLA", "workaround": "Workaround",
                        "reproduction_steps": "Reproduction", "next_actions": "Next actions",
                        "missing_info": "Missing information", "customer_update": "Customer update"},
    }
    return _PacketView(esc=esc, body=body, case=case, values=values)


@router.get("/escalations/{escalation_id}", response_class=HTMLResponse)
def packet_page(request: Request, escalation_id: int) -> HTMLResponse:
    c = _console(request)
    user = c.need_user(request)
    with c.rt.session() as s:
        esc = _load(c, s, user, escalation_id)
        view = _packet_view(c, s, user, esc)
        return c.render(request, "packet.html", user, error=None,
                        done=DONE_MESSAGES.get(request.query_params.get("done", "")), **view.values)


@router.post("/escalations/{escalation_id}/check", response_class=HTMLResponse)
async def check(request: Request, escalation_id: int) -> HTMLResponse:
    """The editor's live check: findings in the typed text and the approve button's state (a fragment)."""
    c = _console(request)
    user = c.need_user(request)
    form = await _form(request)
    _check_post(c, request, user, form)
    text = form.get("text", "")

    def work() -> HTMLResponse:
        with c.rt.session() as s:
            esc = _load(c, s, user, escalation_id, "edit")
            body, case = _packet_and_case(s, esc)
            return c.render(request, "_update_status.html", user,
                            **_editor_values(c, user, esc, body, case, text))

    return await run_in_threadpool(work)


def _act(c: Console, s: Session, esc: store.EscalationRow, user: User, action: str, *, text: str | None = None,
         level: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """One review action, exactly as the API's review endpoint does it (`Runtime.review_action`)."""
    return c.rt.review_action(s, esc, user.name, user.role, frozenset(user.accounts), action, text=text, level=level,
                              reason=reason)


@router.post("/escalations/{escalation_id}/act")
async def act(request: Request, escalation_id: int) -> Response:
    """The review buttons: start, edit, approve (saving an edited text first), reject, override, send."""
    c = _console(request)
    user = c.need_user(request)
    form = await _form(request)
    _check_post(c, request, user, form)
    action = form.get("action", "")
    if action not in review.ACTIONS:
        raise _PageError(422, f"unknown action {action!r}; use one of {', '.join(review.ACTIONS)}")
    text = form.get("text")
    reason = _blank(form.get("reason"))
    level = _blank(form.get("level"))

    def work() -> Response:
        try:
            with c.rt.session() as s:
                esc = _load(c, s, user, escalation_id, review.PERMISSION[action])
                if action == "approve" and text is not None:
                    current = esc.final_update if esc.final_update is not None else esc.draft_update
                    if text != current:  # approve what the reviewer sees: save the edit, then approve
                        _act(c, s, esc, user, "edit", text=text)
                if action == "edit":
                    _act(c, s, esc, user, "edit", text=text)
                elif action in ("approve", "start", "send"):
                    _act(c, s, esc, user, action, reason=reason)
                elif action == "reject":
                    _act(c, s, esc, user, "reject", reason=reason)
                else:
                    _act(c, s, esc, user, "override", level=level, reason=reason)
        except review.ReviewError as e:
            with c.rt.session() as s:
                esc = _load(c, s, user, escalation_id)
                keep = text if action in ("edit", "approve") else None
                view = _packet_view(c, s, user, esc, text=keep)
                return c.render(request, "packet.html", user, status=e.status, error=str(e), done=None,
                                **view.values)
        return RedirectResponse(f"/ui/escalations/{escalation_id}?done={action}", status_code=303)

    return await run_in_threadpool(work)


# ---------------------------------------------------------------- governance pages

@router.get("/pack", response_class=HTMLResponse)
def pack_page(request: Request) -> HTMLResponse:
    c = _console(request)
    user = c.need_user(request)
    c.require(user, "pack_read")
    pack = c.rt.pack
    sla: dict[str, dict[str, Any]] = {}
    for t in pack.sla.targets:
        sla.setdefault(t.tier, {})[t.severity] = t
    return c.render(request, "pack.html", user, release=c.rt.release, sla=sla,
                    is_owner=c.may(user, "pack_change"), matrix=permissions.matrix(pack),
                    actions=permissions.ACTIONS)


def _bars(values: Mapping[str, float | int], *, percent: bool = False) -> dict[str, Any]:
    """An inline SVG bar chart's geometry: one row per key, widths relative to the largest value."""
    items = list(values.items())
    top = max((float(v) for _, v in items), default=0.0) or 1.0
    rows = [{"label": k, "value": v, "shown": f"{float(v) * 100:.0f}%" if percent else f"{v:g}",
             "width": round(BAR_WIDTH * float(v) / top, 1), "y": i * 28} for i, (k, v) in enumerate(items)]
    return {"rows": rows, "height": max(28, len(rows) * 28)}


@router.get("/signals", response_class=HTMLResponse)
def signals_page(request: Request) -> HTMLResponse:
    c = _console(request)
    user = c.need_user(request)
    c.require(user, "signals")
    with c.rt.session() as s:
        sig = signals.compute(s, c.rt.pack)
    leaks = sig["leaks_blocked"]
    charts = [
        ("Packets per trigger", "packets_per_trigger", _bars(sig["packets_per_trigger"])),
        ("Checklist failures", "checklist_failures", _bars(sig["checklist_failures"])),
        ("Leaks blocked", "leaks_blocked", _bars({"in drafts": leaks["in_drafts"],
                                                  "in reviewer edits": leaks["in_reviewer_edits"]})),
        ("Severity overrides by direction", "severity_overrides", _bars(sig["severity_overrides"]["direction"])),
        ("Missing information rate", "missing_info_rate", _bars(sig["missing_info_rate"], percent=True)),
    ]
    return c.render(request, "signals.html", user, sig=sig, charts=charts)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, limit: int = 100) -> HTMLResponse:
    c = _console(request)
    user = c.need_user(request)
    c.require(user, "audit_read")
    with c.rt.session() as s:
        problems = audit.verify(s)
        rows = audit.entries(s, limit=max(1, min(limit, 1000)), newest_first=True)
        return c.render(request, "audit.html", user, problems=problems, entries=rows)


# ---------------------------------------------------------------- mounting

def mount(app: FastAPI, rt: Runtime) -> None:
    """Add the console (pages under /ui, static files under /ui/static) to the service application."""
    secret = os.environ.get(SECRET_ENV, "").encode("utf-8") or secrets.token_bytes(32)
    app.state.console = Console(rt=rt, signer=Signer(secret))

    async def on_redirect(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Redirect)
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, _PageError)
        c = _console(request)
        return c.render(request, "error.html", c.user(request), status=exc.status, message=exc.message)

    app.add_exception_handler(_Redirect, on_redirect)
    app.add_exception_handler(_PageError, on_error)
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=str(STATIC_DIR)), name="console-static")
