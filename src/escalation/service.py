"""The governed service: ingest tickets, run the skill, review, send — every step audited.

`create_app(settings)` builds the FastAPI application over a database (SQLite by default,
PostgreSQL in production). The engine is the same `run(case, pack)` the CLI uses; this
module adds what governance needs around it:

- only a released pack version runs (or a draft, clearly marked, with `sandbox=True`);
- ingestion is idempotent on (source, ticket, update id), so a retried webhook never
  makes a second packet, and a request is acknowledged only after its commit;
- every endpoint checks the caller's role (`permissions.py`); the review state machine
  (`review.py`) guards approval and sending;
- every ingest, run, review action, send and pack release is appended to the
  hash-chained audit trail (`audit.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from . import audit, console, permissions, review, signals, store
from .case import Case, check_against_pack, parse_case
from .connectors.vendors import case_from_payloads
from .engine import run as run_engine
from .errors import EscalationError, InputError, PackError
from .pack import Pack, load_pack
from .packet import Packet
from .release import is_released, released_versions

PACKAGE_DIR = Path(__file__).resolve().parent
BUNDLED_PACK = PACKAGE_DIR / "packs" / "lumen"
WEBHOOK_SOURCES = ("zendesk", "jira", "freshdesk")
_JIRA_ENVELOPE = frozenset({"webhookEvent", "timestamp", "user", "comment", "changelog", "issue_event_type_name",
                            "matchedWebhookIds"})
_DELIVERY_HEADERS = ("x-zendesk-webhook-invocation-id", "x-atlassian-webhook-identifier", "x-request-id")


@dataclass(frozen=True)
class Settings:
    """What the service needs; `from_env` reads the documented environment variables."""

    database_url: str = store.DEFAULT_URL
    policy: Path = BUNDLED_PACK
    sandbox: bool = False
    queue: str | None = None
    """None: run the skill inline (the default); "procrastinate": enqueue for `escalate worker` (PostgreSQL only)."""
    send_via: str | None = None
    """"zendesk": sending an approved update also posts it as a public reply on its Zendesk ticket."""
    transport: Any = field(default=None, compare=False)
    """An httpx transport for the help-desk API (tests inject a mock); None means the network."""
    clock: Any = field(default=None, compare=False)
    """A zero-argument function returning an aware datetime (tests); None means the wall clock."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": store.database_url(env),
            "policy": Path(env.get("ESCALATE_POLICY", str(BUNDLED_PACK))),
            "sandbox": env.get("ESCALATE_SANDBOX", "").lower() in ("1", "true", "yes"),
            "queue": _queue_from_env(env),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def now(self) -> datetime:
        return self.clock() if self.clock is not None else datetime.now(UTC)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user with a pack role, or the machine principal for webhooks."""

    name: str
    role: str
    accounts: frozenset[str]


class Runtime:
    """What every request shares: the database, the pack and its release status."""

    def __init__(self, settings: Settings, *, record: bool = True) -> None:
        """`record=False` only checks (database, migrations, pack release) without an audit entry."""
        self.settings = settings
        if settings.queue:
            from .workers import require_postgres

            require_postgres(settings.database_url)
        self.engine: Engine = store.connect(settings.database_url)
        store.migrate(self.engine)
        self.queue: Any = None
        """The job queue (`workers.Queue`) when settings.queue is set; None runs the skill inline."""
        if settings.queue:
            from .workers import Queue

            self.queue = Queue.attach(self.engine)
        self.pack: Pack = load_pack(settings.policy)
        self.release = is_released(self.pack)
        if self.release is None and not settings.sandbox:
            raise PackError(f"{self.pack.name} {self.pack.version} ({settings.policy}) is not a released version: "
                            f"release it with `escalate policy release {settings.policy} --approved-by NAME`, or "
                            "try it as a draft with `escalate serve --sandbox`")
        if record:
            self._record_pack()

    @property
    def pack_status(self) -> str:
        return "released" if self.release is not None else "draft (sandbox)"

    @contextmanager
    def session(self, *, read: bool = False) -> Iterator[Session]:
        """One transaction, committed on success. `read=True` for pure reads: on SQLite they then do
        not take the write lock (store.read_only), so the queue and packet pages never wait on ingestion."""
        with store.sessions(store.read_only(self.engine) if read else self.engine).begin() as s:
            yield s

    def review_action(self, s: Session, esc: store.EscalationRow, actor: str, role: str, accounts: frozenset[str],
                      action: str, *, text: str | None = None, level: str | None = None,
                      reason: str | None = None) -> dict[str, Any]:
        """One review action for the API and the console alike: decide, persist, audit.

        `review.apply` decides (and raises ReviewError with a status), `store.apply_outcome`
        persists, `audit.append` records with the actor; the caller's session commits all three.
        """
        packet_row = store.get_packet(s, esc.current_packet_id) if esc.current_packet_id else None
        if packet_row is None:
            raise review.ReviewError(f"escalation {esc.id} has no packet to review", 409)
        case_row = store.get_case(s, packet_row.case_id)
        case = parse_case(case_row.body, where=f"stored case {case_row.id}") if case_row else None
        outcome = review.apply(review.context_of(esc, packet_row.body), action,
                               review.Actor(name=actor, role=role, accounts=accounts), self.pack,
                               text=text, level=level, reason=reason, case=case)
        now = self.settings.now()
        store.apply_outcome(s, esc, outcome, actor=actor, action=action, reason=reason, packet_id=packet_row.id,
                            now=now)
        audit.append(s, actor=actor, action=f"review.{action}" if action != "send" else "update.send",
                     subject=f"escalation:{esc.id}", detail={"reason": reason, **outcome.audit_detail})
        return outcome.summary()

    def post_reply(self, s: Session, esc: store.EscalationRow, actor: str) -> dict[str, Any] | None:
        """With ESCALATE_SEND_VIA=zendesk, post the sent update as the public reply on its Zendesk ticket.

        Called inside the send transaction: if the help desk refuses, the error propagates, the
        session rolls back and the escalation stays approved (nothing is marked sent that was not).
        """
        if self.settings.send_via is None:
            return None
        if self.settings.send_via != "zendesk":
            raise InputError(f"ESCALATE_SEND_VIA={self.settings.send_via!r}: only 'zendesk' can post replies")
        if esc.source != "zendesk":
            return {"posted": False, "reason": f"the ticket came from {esc.source}, not Zendesk; send it there"}
        from .connectors import http

        text = esc.final_update or esc.draft_update or ""
        result = http.post_approved_reply(esc.ticket_id, text, transport=self.settings.transport)
        audit.append(s, actor=actor, action="update.post", subject=f"escalation:{esc.id}",
                     detail={"via": "zendesk", "ticket": esc.ticket_id, "status": result.get("status")})
        return {"posted": True, "via": "zendesk", "status": result.get("status")}

    def _record_pack(self) -> None:
        """Append the pack's releases (once each) and this start's pack load to the audit trail."""
        with self.session() as s:
            seen = {(e.subject, (e.detail or {}).get("content_hash")) for e in audit.entries(s, action="pack.release")}
            for r in released_versions(self.pack.root):
                subject = f"{self.pack.name} {r.version}"
                if (subject, r.content_hash) not in seen:
                    audit.append(s, actor=r.approved_by, action="pack.release", subject=subject,
                                 detail=r.model_dump(mode="json"))
            audit.append(s, actor="service", action="pack.load", subject=f"{self.pack.name} {self.pack.version}",
                         detail={"content_hash": self.pack.content_hash, "status": self.pack_status,
                                 "approved_by": self.release.approved_by if self.release else None})


# ---------------------------------------------------------------- request bodies

class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReviewRequest(_Body):
    action: str = Field(description="start, edit, approve, reject or override")
    text: str | None = Field(None, description="edit: the new customer update")
    level: str | None = Field(None, description="override: the severity level")
    reason: str | None = Field(None, description="reject and override: why (required)")


class SendRequest(_Body):
    note: str | None = None


# ---------------------------------------------------------------- helpers

def _update_id(body: bytes, headers: Mapping[str, str], explicit: str | None) -> str:
    """The idempotency key of one delivery: given, a vendor delivery header, or the body's hash."""
    if explicit:
        return str(explicit)
    for h in _DELIVERY_HEADERS:
        if headers.get(h):
            return str(headers[h])
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _packet_view(packet: dict[str, Any], internal: bool) -> dict[str, Any]:
    """The packet as a role may see it: without internal parts for roles that may not read them."""
    if internal:
        return packet
    keep = ("schema", "case_id", "ticket_id", "as_of", "pack", "customer_update", "needs_review", "checks")
    return {k: packet[k] for k in keep if k in packet}


def _escalation_view(e: store.EscalationRow, *, internal: bool) -> dict[str, Any]:
    out = {
        "id": e.id, "source": e.source, "ticket_id": e.ticket_id, "account_id": e.account_id,
        "product_area": e.product_area, "state": e.state, "severity": e.severity_override or e.severity,
        "severity_drafted": e.severity, "severity_override": e.severity_override, "triggers": e.triggers,
        "checks_passed": e.checks_passed, "sla_due_at": e.sla_due_at.isoformat() if e.sla_due_at else None,
        "draft_update": e.draft_update, "final_update": e.final_update,
        "created_at": e.created_at.isoformat(), "updated_at": e.updated_at.isoformat(),
        "approved_at": e.approved_at.isoformat() if e.approved_at else None,
        "sent_at": e.sent_at.isoformat() if e.sent_at else None,
    }
    if not internal:
        for k in ("severity", "severity_drafted", "severity_override", "triggers"):
            out.pop(k)
    return out


def principal(request: Request, authorization: Annotated[str | None, Header()] = None,
              x_api_key: Annotated[str | None, Header()] = None) -> Principal:
    """The caller, from `Authorization: Bearer KEY` or `X-API-Key`; 401 without a known key."""
    rt: Runtime = request.app.state.runtime
    key = x_api_key
    if key is None and authorization and authorization.lower().startswith("bearer "):
        key = authorization[7:].strip()
    if not key:
        raise HTTPException(401, "send an API key: `Authorization: Bearer KEY` (create one with "
                                 "`escalate user add NAME --role ROLE`)", headers={"WWW-Authenticate": "Bearer"})
    with rt.session(read=True) as s:
        user = store.user_by_api_key(s, key)
        if user is None:
            raise HTTPException(401, "unknown API key", headers={"WWW-Authenticate": "Bearer"})
        return Principal(name=user.name, role=user.role, accounts=frozenset(user.accounts or []))


Caller = Annotated[Principal, Depends(principal)]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The service application; the database is migrated and the pack checked on creation."""
    settings = settings or Settings.from_env()
    rt = Runtime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> Any:
        yield
        rt.engine.dispose()

    app = FastAPI(title="escalation-skill", version="1", lifespan=lifespan,
                  description="Governed support escalations: ingest, review, send; every step audited.")
    app.state.runtime = rt
    metrics = signals.Metrics(rt)

    @app.exception_handler(EscalationError)
    async def _user_error(request: Request, exc: EscalationError) -> JSONResponse:
        status = getattr(exc, "status", 422)
        return JSONResponse(status_code=status, content={"detail": str(exc)})

    @app.middleware("http")
    async def _timing(request: Request, call_next: Any) -> Any:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.observe_request(request.method, getattr(route, "path", "unmatched"), response.status_code,
                                time.perf_counter() - started)
        return response

    def require(p: Principal, action: str, account_id: str | None = None) -> None:
        decision = permissions.allowed(rt.pack, p.role, action, account_id=account_id, user_accounts=p.accounts)
        if not decision.allowed:
            raise HTTPException(403, f"{p.name} ({p.role}) may not {action}: {decision.reason}")

    # ------------------------------------------------------------ ingestion

    def ingest(p: Principal, source: str, case: Case, update_id: str) -> tuple[int, dict[str, Any]]:
        """Store one delivery and run the skill on it (inline) or enqueue it (with a queue).

        Inline, the engine runs before the write transaction (no lock held while it works); with
        a queue the case, its job and `case.ingest` commit together, so a crash can never leave a
        stored case without its job (nor a job without its case), and the answer is 202.
        """
        check_against_pack(case, [a.key for a in rt.pack.routing.areas], f"{source} ticket {case.ticket.id}")
        with rt.session(read=True) as s:
            existing = store.find_case(s, source=source, ticket_id=str(case.ticket.id), update_id=update_id)
            if existing is not None:
                return 200, _ingest_result(s, existing, duplicate=True)
        packet = run_engine(case, rt.pack) if rt.queue is None else None
        now = settings.now()
        with rt.session() as s:
            row, created = store.ingest_case(s, source=source, ticket_id=str(case.ticket.id), update_id=update_id,
                                             body=case.model_dump(mode="json", by_alias=True),
                                             account_id=case.account.id, received_at=now)
            if not created:
                return 200, _ingest_result(s, row, duplicate=True)
            detail: dict[str, Any] = {"case_version": row.version, "update_id": update_id, "case_row": row.id}
            if rt.queue is not None:
                detail["job"] = rt.queue.defer_in(s, row.id, rt.pack, policy=settings.policy, sandbox=settings.sandbox)
            audit.append(s, actor=p.name, action="case.ingest", subject=f"{source}:{case.ticket.id}", detail=detail)
            if packet is None:
                return 202, {"queued": True, "job_id": detail["job"], **_ingest_result(s, row, duplicate=False)}
            if packet.triggers:
                _record(s, row, packet, now)
            return 201, _ingest_result(s, row, duplicate=False)

    def _record(s: Session, row: store.CaseRow, packet: Packet, now: datetime) -> None:
        record_run(s, rt.pack, rt.pack_status, row, packet, now)

    def _ingest_result(s: Session, row: store.CaseRow, *, duplicate: bool) -> dict[str, Any]:
        """The same answer for a delivery and its retries: the packet this case version produced."""
        packet = store.packet_for_case(s, row.id, rt.pack.content_hash)
        return {"duplicate": duplicate, "case_version": row.version, "case_row": row.id,
                "escalated": packet is not None, "escalation_id": packet.escalation_id if packet else None,
                "packet_id": packet.id if packet else None}

    @app.post("/cases", status_code=201, tags=["ingest"],
              summary="Ingest one escalation-case/1 document; the skill runs when a trigger holds")
    async def post_case(request: Request, p: Caller,
                        idempotency_key: Annotated[str | None, Header()] = None) -> JSONResponse:
        require(p, "ingest")
        raw = await request.body()

        def work() -> tuple[int, dict[str, Any]]:
            case = parse_case(_json(raw), where="request body")
            return ingest(p, "api", case, _update_id(raw, request.headers, idempotency_key))
        # the engine and the database calls block: run them off the event loop so requests overlap
        status, out = await run_in_threadpool(work)
        return JSONResponse(status_code=status, content=out)

    @app.post("/webhooks/{vendor}", status_code=201, tags=["ingest"],
              summary="Ingest a help-desk ticket update (Zendesk, Jira or Freshdesk payloads)")
    async def post_webhook(vendor: str, request: Request, p: Caller) -> JSONResponse:
        if vendor not in WEBHOOK_SOURCES:
            raise HTTPException(404, f"no webhook for {vendor!r}; use one of {', '.join(WEBHOOK_SOURCES)}")
        require(p, "ingest")
        raw = await request.body()
        status, out = await run_in_threadpool(_webhook, p, vendor, raw, dict(request.headers))
        return JSONResponse(status_code=status, content=out)

    def _webhook(p: Principal, vendor: str, raw: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        data = _json(raw)
        if not isinstance(data, dict):
            raise InputError("request body: expected a JSON object with the ticket payloads")
        update_id = data.pop("update_id", None)
        main_key = "issue" if vendor == "jira" else "ticket"
        if main_key not in data:
            raise InputError(f"request body: no {main_key!r}; a {vendor} webhook carries the {main_key} "
                             "(and its comments) as the vendor's API returns them")
        main = data.pop(main_key)
        if vendor == "jira":  # Jira's own webhook envelope: the issue carries what we read
            data = {k: v for k, v in data.items() if k not in _JIRA_ENVELOPE}
        # only Zendesk's API wraps the ticket ({"ticket": {...}}); Jira and Freshdesk give it bare
        case, _warnings = case_from_payloads(vendor, {main_key: main} if vendor == "zendesk" else main, data,
                                             rt.pack, as_of=settings.now(), source_name=f"{vendor} webhook")
        return ingest(p, vendor, case, _update_id(raw, headers, update_id))

    # ------------------------------------------------------------ the queue and packets

    @app.get("/escalations", tags=["review"], summary="The review queue, most urgent SLA first")
    def list_escalations(p: Caller, state: str | None = None, severity: str | None = None,
                         trigger: str | None = None, product_area: str | None = None,
                         owner: str | None = None) -> dict[str, Any]:
        require(p, "list")
        internal = permissions.allowed(rt.pack, p.role, "read_internal").allowed
        restricted = permissions.restricted(rt.pack, p.role)
        with rt.session(read=True) as s:
            rows = store.list_escalations(
                s, states=[state] if state else None, severity=severity, trigger=trigger,
                product_area=product_area, owner=owner,
                account_ids=sorted(p.accounts) if restricted else None)
            return {"escalations": [_escalation_view(e, internal=internal) for e in rows],
                    "pack": {"name": rt.pack.name, "version": rt.pack.version, "status": rt.pack_status}}

    def _load(s: Session, p: Principal, escalation_id: int, action: str) -> store.EscalationRow:
        require(p, action)  # a role that may never do this learns nothing, not even whether the id exists
        esc = store.get_escalation(s, escalation_id)
        if esc is None:
            raise HTTPException(404, f"no escalation {escalation_id}")
        require(p, action, esc.account_id)
        return esc

    @app.get("/escalations/{escalation_id}", tags=["review"], summary="A packet with its history")
    def get_escalation(escalation_id: int, p: Caller) -> dict[str, Any]:
        with rt.session(read=True) as s:
            esc = _load(s, p, escalation_id, "read")
            internal = permissions.allowed(rt.pack, p.role, "read_internal", account_id=esc.account_id,
                                           user_accounts=p.accounts).allowed
            packets = store.packets_for(s, esc.id)
            current = next((x for x in packets if x.id == esc.current_packet_id), None)
            return {
                "escalation": _escalation_view(esc, internal=internal),
                "packet": _packet_view(current.body, internal) if current else None,
                "packets": [{"id": x.id, "pack": f"{x.pack_name} {x.pack_version}", "pack_hash": x.pack_hash,
                             "severity": x.severity if internal else None, "checks_passed": x.checks_passed,
                             "created_at": x.created_at.isoformat()} for x in packets],
                "reviews": [{"actor": r.actor, "action": r.action, "reason": r.reason, "detail": r.detail,
                             "at": r.at.isoformat()} for r in store.reviews_for(s, esc.id)],
                "case_versions": [{"version": c.version, "update_id": c.update_id,
                                   "received_at": c.received_at.isoformat()}
                                  for c in store.case_versions(s, esc.source, esc.ticket_id)],
            }

    @app.post("/escalations/{escalation_id}/review", tags=["review"],
              summary="Start review, edit the customer update, approve, reject or override severity")
    def post_review(escalation_id: int, body: ReviewRequest, p: Caller) -> dict[str, Any]:
        action = body.action
        if action not in review.ACTIONS or action == "send":
            raise HTTPException(422, f"unknown review action {action!r}; use start, edit, approve, reject or "
                                     "override (sending is POST /escalations/{id}/send)")
        with rt.session() as s:
            esc = _load(s, p, escalation_id, review.PERMISSION[action])
            outcome = _apply(s, esc, p, action, text=body.text, level=body.level, reason=body.reason)
            return {"escalation": _escalation_view(esc, internal=True), "outcome": outcome}

    @app.post("/escalations/{escalation_id}/send", tags=["review"],
              summary="Mark the approved customer update as sent")
    def post_send(escalation_id: int, p: Caller, body: SendRequest | None = None) -> dict[str, Any]:
        with rt.session() as s:
            esc = _load(s, p, escalation_id, "send")
            outcome = _apply(s, esc, p, "send", reason=body.note if body else None)
            posted = rt.post_reply(s, esc, p.name)
            return {"escalation": _escalation_view(esc, internal=True), "outcome": outcome, "posted": posted}

    def _apply(s: Session, esc: store.EscalationRow, p: Principal, action: str, *, text: str | None = None,
               level: str | None = None, reason: str | None = None) -> dict[str, Any]:
        try:
            return rt.review_action(s, esc, p.name, p.role, p.accounts, action, text=text, level=level,
                                    reason=reason)
        except review.ReviewError as e:
            raise HTTPException(e.status, str(e)) from None

    # ------------------------------------------------------------ governance views

    @app.get("/signals", tags=["monitoring"], summary="Monitoring signals computed from stored data")
    def get_signals(p: Caller) -> dict[str, Any]:
        require(p, "signals")
        with rt.session(read=True) as s:
            return signals.compute(s, rt.pack)

    @app.get("/metrics", tags=["monitoring"], summary="Prometheus metrics", response_class=PlainTextResponse)
    def get_metrics(p: Caller) -> PlainTextResponse:
        require(p, "signals")
        body, content_type = metrics.render()
        return PlainTextResponse(body, media_type=content_type)

    @app.get("/audit", tags=["governance"], summary="The audit trail and whether its chain is intact")
    def get_audit(p: Caller, limit: int = 200) -> dict[str, Any]:
        require(p, "audit_read")
        with rt.session(read=True) as s:
            problems = audit.verify(s)
            return {"intact": not problems, "problems": problems,
                    "entries": [e.as_dict() for e in audit.entries(s, limit=limit, newest_first=True)]}

    @app.get("/pack", tags=["governance"], summary="The pack this service runs")
    def get_pack(p: Caller) -> dict[str, Any]:
        require(p, "pack_read")
        r = rt.release
        return {"name": rt.pack.name, "version": rt.pack.version, "content_hash": rt.pack.content_hash,
                "status": rt.pack_status, "owner": rt.pack.skill.owner,
                "release": r.model_dump(mode="json") if r else None,
                "permissions": permissions.matrix(rt.pack)}

    @app.get("/healthz", tags=["monitoring"], summary="Liveness and database reachability (no auth)")
    def healthz() -> dict[str, Any]:
        with rt.session(read=True) as s:
            store.ping(s)
        return {"ok": True, "pack": f"{rt.pack.name} {rt.pack.version}", "status": rt.pack_status}

    console.mount(app, rt)
    return app


def record_run(s: Session, pack: Pack, pack_status: str, row: store.CaseRow, packet: Packet, now: datetime,
               extra: Mapping[str, Any] | None = None) -> tuple[store.PacketRow, bool]:
    """Store one engine run's packet (idempotent on (case version, pack hash)) and audit `packet.run` once.

    Used by the inline ingest path and by the queue's workers (`extra` adds e.g. the job id to the audit detail).
    """
    body = packet.model_dump(mode="json", by_alias=True)
    prow, esc, created = store.record_packet(
        s, case_row=row, packet=body, pack_name=pack.name, pack_version=pack.version,
        pack_hash=pack.content_hash, severity=packet.severity.level, checks_passed=not packet.needs_review,
        triggers=[t.key for t in packet.triggers], product_area=packet.product_area,
        sla_due_at=datetime.fromisoformat(packet.sla.due_at) if packet.sla else None,
        draft_update=packet.customer_update, now=now)
    if created:
        audit.append(s, actor="skill", action="packet.run", subject=f"escalation:{esc.id}",
                     detail={"packet": prow.id, "pack": f"{pack.name} {pack.version}",
                             "pack_hash": pack.content_hash, "pack_status": pack_status,
                             "severity": packet.severity.level, "triggers": [t.key for t in packet.triggers],
                             "failed_checks": [c.key for c in packet.checks if not c.passed], **(extra or {})})
    return prow, created


def _queue_from_env(env: Mapping[str, str]) -> str | None:
    from .workers import queue_backend

    return queue_backend(env.get("ESCALATE_QUEUE", ""))


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"request body: not valid JSON: {e}") from None
