"""The append-only, hash-chained audit trail of the service.

Each entry's hash is sha256 over the canonical JSON of (seq, at, actor, action, subject,
detail, prev_hash), and `prev_hash` is the previous entry's hash ("0" * 64 for the first).
Editing an entry breaks its own hash; removing or reordering entries breaks a link or the
sequence. Removing the newest entries leaves a valid shorter chain, so `head()` gives
(seq, hash) for an operator to record elsewhere and `verify(s, expect_head=...)` checks it.

Appends never fork: on PostgreSQL each append takes a transaction-scoped advisory lock
before reading the head (held until the caller commits), on SQLite the engine's
BEGIN IMMEDIATE serializes writers, and the UNIQUE prev_hash column is the last wall.
Append in the same transaction as the change it records, so both commit or neither does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from .errors import InputError
from .store import AuditRow, connect, read_only, sessions

GENESIS = "0" * 64
"""The prev_hash of the first entry."""

AUDIT_LOCK = 0x45534341  # "ESCA": pg_advisory_xact_lock key serializing appends

ACTIONS = ("case.ingest", "packet.run", "review.start", "review.edit", "review.approve", "review.reject",
           "review.override", "update.send", "update.post", "pack.release", "pack.load", "user.create")
"""The actions the service records (others are accepted: the trail must never refuse to record)."""


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    raise TypeError(f"audit detail value of type {type(value).__name__} is not JSON serialisable")


def canonical(value: Any) -> str:
    """Deterministic JSON: sorted keys, no spaces, UTF-8 kept, datetimes as ISO 8601."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_default,
                      allow_nan=False)


def entry_hash(*, seq: int, at: datetime, actor: str, action: str, subject: str, detail: Any,
               prev_hash: str) -> str:
    """The sha256 hex that seals one entry, including its place in the chain."""
    payload = {"seq": seq, "at": at.astimezone(UTC).isoformat(), "actor": actor, "action": action,
               "subject": subject, "detail": detail, "prev_hash": prev_hash}
    return hashlib.sha256(canonical(payload).encode("utf-8")).hexdigest()


def _lock(s: Session) -> None:
    if s.get_bind().dialect.name == "postgresql":
        s.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": AUDIT_LOCK})


def _head_row(s: Session) -> AuditRow | None:
    return s.scalars(select(AuditRow).order_by(AuditRow.seq.desc()).limit(1)).one_or_none()


def append(s: Session, *, actor: str, action: str, subject: str, detail: dict[str, Any]) -> AuditRow:
    """Add one entry after the current head; flushed, committed by the caller.

    `detail` is normalised through canonical JSON first (datetimes become strings), so what is
    stored is exactly what was hashed. `at` never goes backwards along the chain, even if the
    clock does, so an out-of-order timestamp in `verify` means tampering.
    """
    _lock(s)
    head = _head_row(s)
    now = datetime.now(UTC)
    if head is not None and head.at > now:
        now = head.at
    seq = 1 if head is None else head.seq + 1
    prev = GENESIS if head is None else head.hash
    stored_detail = json.loads(canonical(detail))
    row = AuditRow(seq=seq, at=now, actor=actor, action=action, subject=subject, detail=stored_detail,
                   prev_hash=prev, hash=entry_hash(seq=seq, at=now, actor=actor, action=action, subject=subject,
                                                   detail=stored_detail, prev_hash=prev))
    s.add(row)
    s.flush()
    return row


def head(s: Session) -> tuple[int, str] | None:
    """(seq, hash) of the newest entry, to record outside the database; None when the trail is empty."""
    row = _head_row(s)
    return None if row is None else (row.seq, row.hash)


def entries(s: Session, *, action: str | None = None, subject: str | None = None, limit: int | None = None,
            newest_first: bool = False) -> list[AuditRow]:
    """Entries in chain order (or newest first), optionally of one action or subject."""
    q = select(AuditRow)
    if action is not None:
        q = q.where(AuditRow.action == action)
    if subject is not None:
        q = q.where(AuditRow.subject == subject)
    q = q.order_by(AuditRow.seq.desc() if newest_first else AuditRow.seq)
    if limit is not None:
        q = q.limit(limit)
    return list(s.scalars(q))


@dataclass
class _Prev:
    seq: int
    hash: str
    at: datetime | None


def verify(s: Session, *, expect_head: tuple[int, str] | None = None) -> list[str]:
    """Walk the chain in seq order and describe every problem in one line; [] means intact.

    With `expect_head` (a (seq, hash) recorded earlier by `head()`) it also detects removal of
    the newest entries and rewriting of the chain up to that point.
    """
    problems: list[str] = []
    prev = _Prev(0, GENESIS, None)
    seen_expected = False
    rows = s.execute(select(AuditRow).order_by(AuditRow.seq).execution_options(yield_per=1000)).scalars()
    for row in rows:
        if row.seq != prev.seq + 1:
            first, last = prev.seq + 1, row.seq - 1
            missing = f"entry {first}" if first == last else f"entries {first}..{last}"
            problems.append(f"entry {row.seq}: sequence gap, {missing} missing (removed)")
        if row.prev_hash != prev.hash:
            problems.append(f"entry {row.seq}: previous-hash link broken (an entry before it was removed or edited)")
        try:
            want = entry_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action, subject=row.subject,
                              detail=row.detail, prev_hash=row.prev_hash)
        except (TypeError, ValueError):
            want = ""
        if row.hash != want:
            problems.append(f"entry {row.seq}: content does not match its hash (edited)")
        if prev.at is not None and row.at < prev.at:
            problems.append(f"entry {row.seq}: timestamp {row.at.isoformat()} is earlier than entry {prev.seq}'s "
                            f"{prev.at.isoformat()} (reordered)")
        if expect_head is not None and row.seq == expect_head[0]:
            seen_expected = True
            if row.hash != expect_head[1]:
                problems.append(f"entry {row.seq}: hash differs from the recorded head (the chain was rewritten)")
        prev = _Prev(row.seq, row.hash, row.at)
    if expect_head is not None and not seen_expected:
        if prev.seq < expect_head[0]:
            what = "the trail is empty" if prev.seq == 0 else f"the last entry is {prev.seq}"
            problems.append(f"entry {expect_head[0]}: recorded head is missing, {what} (truncated)")
        else:
            problems.append(f"entry {expect_head[0]}: recorded head is missing (removed)")
    return problems


def verify_url(url: str, *, expect_head: tuple[int, str] | None = None) -> list[str]:
    """`verify` on the database at `url` (for `escalate audit verify`); read-only."""
    engine = connect(url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        if not inspect(engine).has_table(AuditRow.__tablename__):
            raise InputError(f"{shown}: no audit trail here (the database was never migrated)")
        with sessions(read_only(engine))() as s:
            return verify(s, expect_head=expect_head)
    except OperationalError as e:
        raise InputError(f"{shown}: cannot read the audit trail: {str(e.orig).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()
