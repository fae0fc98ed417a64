"""The service's storage: typed SQLAlchemy 2 models, engine setup, migrations and repository functions.

The schema is created only by the Alembic migration packaged in `escalation/migrations`; the
models below mirror it (a test compares them with `alembic.autogenerate.compare_metadata`).

Transactions: every repository function takes a `Session`, flushes, and leaves the commit to
the caller, so the service can write a case, its packet and the audit entry in one
transaction. `sessions(engine)` gives a `sessionmaker` whose `begin()` commits or rolls back:

    with sessions(engine).begin() as s:
        row, new = ingest_case(s, ...)
        audit.append(s, actor=..., action="case.ingest", subject=..., detail={...})

Concurrency: on SQLite every transaction begins with BEGIN IMMEDIATE (one writer at a time,
the others wait up to the busy timeout instead of failing with "database is locked"); use
`read_only(engine)` for read-only work that should not queue behind writers. On PostgreSQL
(READ COMMITTED) writes to one ticket take a transaction-scoped advisory lock on
(source, ticket_id), so version numbers and escalation rows cannot race.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    create_engine,
    event,
    exists,
    func,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from .errors import InputError

ENV_VAR = "ESCALATE_DATABASE_URL"
DEFAULT_URL = "sqlite:///escalate.db"
SQLITE_BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for the write lock before giving up (seconds)."""

STATES = ("draft", "in_review", "approved", "sent", "rejected")
REVIEW_ACTIONS = ("start", "edit", "approve", "reject", "override", "send")

_TICKET_LOCK_NS = 0x45534331  # "ESC1": namespace of the per-ticket advisory locks (two-int4 form)


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- types


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp that always comes back in UTC.

    SQLite has no time zones and returns naive datetimes: values are stored as UTC and read
    back as aware UTC. A naive value is refused on write, because its zone is a guess.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: give a timezone-aware timestamp")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonType = JSON().with_variant(JSONB(), "postgresql")
"""JSON everywhere, JSONB on PostgreSQL (indexable, and `@>` for trigger filters)."""


# ---------------------------------------------------------------- models

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
"""Constraint names are fixed so the migration and the models name them identically."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType, list[Any]: JsonType}


class UserRow(Base):
    """A service user; only the sha256 of the API key is kept, so a database leak leaks no keys."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    role: Mapped[str] = mapped_column(String(100))
    accounts: Mapped[list[Any]] = mapped_column(JsonType)
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CaseRow(Base):
    """One received update of a ticket, stored as received; `version` counts updates per ticket."""

    __tablename__ = "cases"
    __table_args__ = (
        UniqueConstraint("source", "ticket_id", "update_id"),
        UniqueConstraint("source", "ticket_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    ticket_id: Mapped[str] = mapped_column(String(200))
    update_id: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    body: Mapped[dict[str, Any]] = mapped_column(JsonType)


class EscalationRow(Base):
    """The escalation of one ticket: its current packet and where it stands in review."""

    __tablename__ = "escalations"
    __table_args__ = (
        UniqueConstraint("source", "ticket_id"),
        CheckConstraint("state IN ('draft', 'in_review', 'approved', 'sent', 'rejected')", name="state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(50))
    ticket_id: Mapped[str] = mapped_column(String(200))
    account_id: Mapped[str] = mapped_column(String(200), index=True)
    product_area: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), index=True)
    current_packet_id: Mapped[int | None] = mapped_column(
        Integer, ForeignKey("packets.id", use_alter=True), nullable=True)
    severity: Mapped[str] = mapped_column(String(50))
    severity_override: Mapped[str | None] = mapped_column(String(50), nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    triggers: Mapped[list[Any]] = mapped_column(JsonType)
    checks_passed: Mapped[bool] = mapped_column(Boolean)
    sla_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    draft_update: Mapped[str] = mapped_column(Text)
    final_update: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    triggered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    @property
    def effective_severity(self) -> str:
        """The reviewer's override when there is one, else the packet's severity."""
        return self.severity_override or self.severity


class PacketRow(Base):
    """One engine run: the packet for one case version under one pack content hash."""

    __tablename__ = "packets"
    __table_args__ = (UniqueConstraint("case_id", "pack_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    pack_name: Mapped[str] = mapped_column(String(200))
    pack_version: Mapped[str] = mapped_column(String(100))
    pack_hash: Mapped[str] = mapped_column(String(100))
    severity: Mapped[str] = mapped_column(String(50))
    checks_passed: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JsonType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewRow(Base):
    """One human review step on an escalation (who did what to which packet, and why)."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("action IN ('start', 'edit', 'approve', 'reject', 'override', 'send')", name="action"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    escalation_id: Mapped[int] = mapped_column(ForeignKey("escalations.id"), index=True)
    packet_id: Mapped[int | None] = mapped_column(ForeignKey("packets.id"), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JsonType)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One entry of the hash-chained audit trail (written only through `escalation.audit`).

    `detail` is plain JSON (not JSONB) so the stored text is what was hashed.
    """

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(50))
    subject: Mapped[str] = mapped_column(String(500))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64))

    def as_dict(self) -> dict[str, Any]:
        """The entry as JSON-ready data (what the audit API shows)."""
        return {"seq": self.seq, "at": self.at.isoformat(), "actor": self.actor, "action": self.action,
                "subject": self.subject, "detail": self.detail, "prev_hash": self.prev_hash, "hash": self.hash}


# ---------------------------------------------------------------- engine


def database_url(env: Mapping[str, str] = os.environ) -> str:
    """The database URL from ESCALATE_DATABASE_URL, or a SQLite file in the working directory."""
    return env.get(ENV_VAR, "").strip() or DEFAULT_URL


def _sqlite_connect(dbapi_connection: Any, connection_record: Any) -> None:
    # SQLAlchemy emits BEGIN itself (below); sqlite3's own transaction handling is switched off
    dbapi_connection.isolation_level = None
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    # BEGIN IMMEDIATE takes the write lock up front, so two writers queue (busy_timeout) instead of
    # one failing with "database is locked" when it upgrades a read lock in the middle of its work
    mode = "DEFERRED" if conn.get_execution_options().get("escalation_read_only") else "IMMEDIATE"
    conn.exec_driver_sql(f"BEGIN {mode}")


def connect(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL, configured for safe concurrent use.

    `postgresql://` and `postgres://` are taken to mean psycopg 3. Anything else is an
    InputError naming ESCALATE_DATABASE_URL, with the password hidden.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InputError(f"{ENV_VAR}: cannot parse {url!r} as a database URL; expected e.g. "
                         f"{DEFAULT_URL} or postgresql+psycopg://user@host:5432/dbname") from None
    shown = parsed.render_as_string(hide_password=True)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver in ("pysqlite", ""):
        engine = create_engine(parsed.set(drivername="sqlite+pysqlite"),
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if backend in ("postgresql", "postgres") and parsed.drivername in ("postgresql", "postgres",
                                                                        "postgresql+psycopg"):
        if not parsed.database:
            raise InputError(f"{ENV_VAR}: {shown} names no database; add /dbname")
        return create_engine(parsed.set(drivername="postgresql+psycopg"), pool_pre_ping=True)
    raise InputError(f"{ENV_VAR}: unsupported database URL {shown}; use sqlite:///path/to/file.db "
                     "or postgresql+psycopg://user@host:5432/dbname")


def read_only(engine: Engine) -> Engine:
    """The same engine, but SQLite transactions begin DEFERRED: readers do not queue behind writers."""
    return engine.execution_options(escalation_read_only=True)


def sessions(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (rows are returned to API handlers)."""
    return sessionmaker(engine, expire_on_commit=False)


# ---------------------------------------------------------------- migrations

_MIGRATE_LOCK = 0x4553434D  # "ESCM": advisory lock so two service instances do not migrate at once


def _alembic_config(connection: Any = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("escalation") / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def migrate(engine: Engine) -> None:
    """Upgrade the database to the newest migration; a no-op when it is already there."""
    from alembic import command

    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATE_LOCK})
        command.upgrade(_alembic_config(conn), "head")


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest migration shipped with this version of the package."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


# ---------------------------------------------------------------- helpers


def _lock_ticket(s: Session, source: str, ticket_id: str) -> None:
    """On PostgreSQL, serialize writers of one ticket until commit (SQLite's BEGIN IMMEDIATE already does)."""
    if s.get_bind().dialect.name != "postgresql":
        return
    digest = hashlib.sha256(f"{source}\x00{ticket_id}".encode()).digest()
    key = int.from_bytes(digest[:4], "big", signed=True)
    s.execute(text("SELECT pg_advisory_xact_lock(:ns, :k)"), {"ns": _TICKET_LOCK_NS, "k": key})


def _insert(s: Session) -> Any:
    return postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert


# ---------------------------------------------------------------- cases


def ingest_case(s: Session, *, source: str, ticket_id: str, update_id: str, body: dict[str, Any],
                account_id: str, received_at: datetime) -> tuple[CaseRow, bool]:
    """Store one ticket update as the ticket's next version; (row, False) when it was already stored.

    (source, ticket_id, update_id) is the idempotency key: a connector may deliver the same
    webhook twice, or two at once, and gets one row. A repeat delivery returns the stored row
    unchanged, even if its body differs (the first delivery of an update id wins).
    """
    _lock_ticket(s, source, ticket_id)
    key = and_(CaseRow.source == source, CaseRow.ticket_id == ticket_id, CaseRow.update_id == update_id)
    found = s.scalars(select(CaseRow).where(key)).one_or_none()
    if found is not None:
        return found, False
    version = (s.scalar(select(func.max(CaseRow.version)).where(
        CaseRow.source == source, CaseRow.ticket_id == ticket_id)) or 0) + 1
    stmt = _insert(s)(CaseRow).values(
        source=source, ticket_id=ticket_id, update_id=update_id, version=version, account_id=account_id,
        received_at=received_at, body=body,
    ).on_conflict_do_nothing(index_elements=["source", "ticket_id", "update_id"]).returning(CaseRow.id)
    new_id = s.execute(stmt).scalar_one_or_none()
    row = s.scalars(select(CaseRow).where(key).execution_options(populate_existing=True)).one()
    return row, new_id is not None


def find_case(s: Session, *, source: str, ticket_id: str, update_id: str) -> CaseRow | None:
    """The stored row of one ticket update, if it was ingested before (a cheap pre-check before running the engine)."""
    return s.scalars(select(CaseRow).where(CaseRow.source == source, CaseRow.ticket_id == ticket_id,
                                           CaseRow.update_id == update_id)).one_or_none()


def get_case(s: Session, case_id: int) -> CaseRow | None:
    return s.get(CaseRow, case_id)


def case_versions(s: Session, source: str, ticket_id: str) -> list[CaseRow]:
    """Every stored update of a ticket, oldest (version 1) first."""
    return list(s.scalars(select(CaseRow).where(CaseRow.source == source, CaseRow.ticket_id == ticket_id)
                          .order_by(CaseRow.version)))


# ---------------------------------------------------------------- packets and escalations


def record_packet(s: Session, *, case_row: CaseRow, packet: dict[str, Any], pack_name: str, pack_version: str,
                  pack_hash: str, severity: str, checks_passed: bool, triggers: list[str], product_area: str,
                  sla_due_at: datetime | None, draft_update: str,
                  now: datetime | None = None) -> tuple[PacketRow, EscalationRow, bool]:
    """Store the packet of one engine run and make it the ticket's current packet.

    Idempotent on (case version, pack hash): a repeated job returns (packet, escalation, False)
    and changes nothing. A new packet always becomes current and puts the escalation back to
    'draft' with the new draft update, whatever its state, including 'sent' (a new ticket
    update after sending reopens the review) and 'approved' (the approval was for the old
    packet, so approved_at and final_update are cleared). A reviewer's severity override is
    kept: a human decision is not undone by a re-run. `triggered_at` is the first time a
    packet had a trigger; `sent_at` keeps the last send. `now` (default: the clock) stamps the rows.
    """
    _lock_ticket(s, case_row.source, case_row.ticket_id)
    existing = s.scalars(select(PacketRow).where(PacketRow.case_id == case_row.id,
                                                 PacketRow.pack_hash == pack_hash)).one_or_none()
    if existing is not None:
        esc = s.get(EscalationRow, existing.escalation_id)
        assert esc is not None  # foreign key
        return existing, esc, False
    now = now or utcnow()
    esc = get_escalation_by_ticket(s, case_row.source, case_row.ticket_id)
    if esc is None:
        esc = EscalationRow(source=case_row.source, ticket_id=case_row.ticket_id, account_id=case_row.account_id,
                            product_area=product_area, state="draft", severity=severity, triggers=list(triggers),
                            checks_passed=checks_passed, sla_due_at=sla_due_at, draft_update=draft_update,
                            created_at=now, updated_at=now, triggered_at=now if triggers else None)
        s.add(esc)
        s.flush()
    pkt = PacketRow(escalation_id=esc.id, case_id=case_row.id, pack_name=pack_name, pack_version=pack_version,
                    pack_hash=pack_hash, severity=severity, checks_passed=checks_passed, body=packet,
                    created_at=now)
    s.add(pkt)
    s.flush()
    esc.current_packet_id = pkt.id
    esc.account_id = case_row.account_id
    esc.product_area = product_area
    esc.state = "draft"
    esc.severity = severity
    esc.triggers = list(triggers)
    esc.checks_passed = checks_passed
    esc.sla_due_at = sla_due_at
    esc.draft_update = draft_update
    esc.final_update = None
    esc.approved_at = None
    esc.updated_at = now
    if triggers and esc.triggered_at is None:
        esc.triggered_at = now
    s.flush()
    return pkt, esc, True


def get_escalation(s: Session, escalation_id: int) -> EscalationRow | None:
    return s.get(EscalationRow, escalation_id)


def get_escalation_by_ticket(s: Session, source: str, ticket_id: str) -> EscalationRow | None:
    return s.scalars(select(EscalationRow).where(EscalationRow.source == source,
                                                 EscalationRow.ticket_id == ticket_id)).one_or_none()


def escalation_for_case(s: Session, case_row: CaseRow) -> EscalationRow | None:
    """The escalation of the case's ticket (None while no update of it has triggered one)."""
    return get_escalation_by_ticket(s, case_row.source, case_row.ticket_id)


def packet_for_case(s: Session, case_id: int, pack_hash: str) -> PacketRow | None:
    """The packet one case version produced under one pack (at most one: the job key)."""
    return s.scalar(select(PacketRow).where(PacketRow.case_id == case_id, PacketRow.pack_hash == pack_hash))


def get_packet(s: Session, packet_id: int) -> PacketRow | None:
    return s.get(PacketRow, packet_id)


def _has_trigger(s: Session, trigger: str) -> Any:
    if s.get_bind().dialect.name == "postgresql":
        return type_coerce(EscalationRow.triggers, JSONB).contains([trigger])
    each = func.json_each(EscalationRow.triggers).table_valued("value")
    return exists(select(1).select_from(each).where(each.c.value == trigger))


def list_escalations(s: Session, *, states: Iterable[str] | None = None, account_ids: Iterable[str] | None = None,
                     severity: str | None = None, trigger: str | None = None, product_area: str | None = None,
                     owner: str | None = None, limit: int | None = None, offset: int = 0) -> list[EscalationRow]:
    """Escalations, most recently updated first, filtered by every argument that is not None.

    `account_ids=None` means every account; an empty collection means none (a user of an
    own-accounts-only role with no accounts sees nothing). `severity` matches the effective
    severity (the override when there is one); `owner` the owning team of the current packet
    (`owner.team` in its body).
    """
    q = select(EscalationRow)
    if states is not None:
        q = q.where(EscalationRow.state.in_(list(states)))
    if account_ids is not None:
        q = q.where(EscalationRow.account_id.in_(list(account_ids)))
    if severity is not None:
        q = q.where(or_(EscalationRow.severity_override == severity,
                        and_(EscalationRow.severity_override.is_(None), EscalationRow.severity == severity)))
    if trigger is not None:
        q = q.where(_has_trigger(s, trigger))
    if product_area is not None:
        q = q.where(EscalationRow.product_area == product_area)
    if owner is not None:
        q = q.join(PacketRow, PacketRow.id == EscalationRow.current_packet_id).where(
            PacketRow.body["owner"]["team"].as_string() == owner)
    # the review queue: the nearest SLA target first, escalations without one after, newest first
    q = q.order_by(EscalationRow.sla_due_at.asc().nulls_last(), EscalationRow.updated_at.desc(),
                   EscalationRow.id.desc()).offset(offset)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


def packets_for(s: Session, escalation_id: int) -> list[PacketRow]:
    """An escalation's packets, oldest first."""
    return list(s.scalars(select(PacketRow).where(PacketRow.escalation_id == escalation_id).order_by(PacketRow.id)))


def current_packet_bodies(s: Session) -> Iterator[dict[str, Any]]:
    """The body of every escalation's current packet (for monitoring signals), streamed."""
    q = (select(PacketRow.body).join(EscalationRow, EscalationRow.current_packet_id == PacketRow.id)
         .order_by(PacketRow.id).execution_options(yield_per=500))
    yield from s.scalars(q)


# ---------------------------------------------------------------- reviews


def add_review(s: Session, *, escalation_id: int, actor: str, action: str, packet_id: int | None = None,
               reason: str | None = None, detail: dict[str, Any] | None = None,
               at: datetime | None = None) -> ReviewRow:
    """Record one review step; the state change itself is the caller's (the service's) decision."""
    if action not in REVIEW_ACTIONS:
        raise InputError(f"unknown review action {action!r}; expected one of {', '.join(REVIEW_ACTIONS)}")
    row = ReviewRow(escalation_id=escalation_id, packet_id=packet_id, actor=actor, action=action, reason=reason,
                    detail=dict(detail or {}), at=at or utcnow())
    s.add(row)
    s.flush()
    return row


def reviews_for(s: Session, escalation_id: int) -> list[ReviewRow]:
    """An escalation's review steps in the order they happened."""
    return list(s.scalars(select(ReviewRow).where(ReviewRow.escalation_id == escalation_id)
                          .order_by(ReviewRow.at, ReviewRow.id)))


def all_reviews(s: Session, *, actions: Iterable[str] | None = None) -> list[ReviewRow]:
    """Every review step (of the given actions), oldest first: for signals across all escalations."""
    q = select(ReviewRow).order_by(ReviewRow.at, ReviewRow.id)
    if actions is not None:
        q = q.where(ReviewRow.action.in_(list(actions)))
    return list(s.scalars(q))


REVIEW_FIELDS = frozenset({"state", "final_update", "severity_override", "override_reason", "approved_at",
                           "sent_at"})
"""The escalation fields a review step may change; the rest belong to the engine's packet."""


def apply_review(s: Session, esc: EscalationRow, *, actor: str, action: str, changes: Mapping[str, Any],
                 packet_id: int | None = None, reason: str | None = None, detail: dict[str, Any] | None = None,
                 now: datetime | None = None) -> ReviewRow:
    """Apply a review decision (made by the service's review rules) and record it, in one step.

    `changes` sets escalation fields from REVIEW_FIELDS only (a typo or an attempt to change
    the packet's own fields is an InputError); `updated_at` is stamped.
    """
    unknown = set(changes) - REVIEW_FIELDS
    if unknown:
        raise InputError(f"a review cannot change {', '.join(sorted(unknown))}; "
                         f"it may change {', '.join(sorted(REVIEW_FIELDS))}")
    if "state" in changes and changes["state"] not in STATES:
        raise InputError(f"unknown escalation state {changes['state']!r}; expected one of {', '.join(STATES)}")
    now = now or utcnow()
    for field, value in changes.items():
        setattr(esc, field, value)
    esc.updated_at = now
    return add_review(s, escalation_id=esc.id, actor=actor, action=action, packet_id=packet_id, reason=reason,
                      detail=detail, at=now)


class ReviewOutcome(Protocol):
    """What `apply_outcome` needs from a review decision (`review.Outcome`)."""

    def changes_at(self, now: datetime) -> dict[str, Any]: ...  # fields to set (REVIEW_FIELDS), stamps at `now`

    @property
    def audit_detail(self) -> dict[str, Any]: ...  # stored as the review row's detail


def apply_outcome(s: Session, esc: EscalationRow, outcome: ReviewOutcome, *, actor: str, action: str,
                  reason: str | None = None, packet_id: int | None = None, now: datetime | None = None) -> ReviewRow:
    """`apply_review` for a review decision: its changes (timestamps stamped at `now`) and audit detail."""
    now = now or utcnow()
    return apply_review(s, esc, actor=actor, action=action, changes=outcome.changes_at(now), packet_id=packet_id,
                        reason=reason, detail=dict(outcome.audit_detail), now=now)


# ---------------------------------------------------------------- users


def hash_api_key(key: str) -> str:
    """sha256 hex of an API key: keys are long random strings, so no salt or slow hash is needed."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_user(s: Session, name: str, role: str, accounts: Iterable[str] = (), *,
                known_roles: Collection[str] | None = None) -> tuple[UserRow, str]:
    """Create a user and return it with its API key; the key is shown once and never stored.

    `known_roles` (the pack's role keys) makes an unknown role an InputError; a taken name is too.
    """
    if known_roles is not None and role not in known_roles:
        raise InputError(f"unknown role {role!r}; the pack defines {', '.join(sorted(known_roles))}")
    key = "esk_" + secrets.token_urlsafe(32)
    row = UserRow(name=name, role=role, accounts=list(accounts), api_key_hash=hash_api_key(key),
                  created_at=utcnow())
    try:
        with s.begin_nested():
            s.add(row)
            s.flush()
    except IntegrityError:
        raise InputError(f"a user named {name!r} already exists") from None
    return row, key


def user_by_api_key(s: Session, key: str) -> UserRow | None:
    """The user holding this API key, or None (looked up by hash, so no timing comparison of keys)."""
    if not key:
        return None
    return s.scalars(select(UserRow).where(UserRow.api_key_hash == hash_api_key(key))).one_or_none()


def user_by_name(s: Session, name: str) -> UserRow | None:
    return s.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()


def ping(s: Session) -> None:
    """Raise if the database cannot answer a trivial query (for a health check)."""
    s.execute(text("SELECT 1")).scalar_one()
