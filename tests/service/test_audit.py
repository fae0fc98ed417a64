"""The hash-chained audit trail on SQLite and PostgreSQL: intact chains verify, tampering is reported."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, insert, text, update

from escalation import audit, store
from escalation.errors import InputError
from escalation.store import AuditRow


def fill(engine: Engine, n: int) -> None:
    with store.sessions(engine).begin() as s:
        for i in range(n):
            audit.append(s, actor=f"user{i % 3}", action=audit.ACTIONS[i % len(audit.ACTIONS)],
                         subject=f"escalation:{i}",
                         detail={"i": i, "note": "ünïcode ✓", "nested": {"b": 1, "a": [1, 2]}})


def problems(engine: Engine, **kw: Any) -> list[str]:
    with store.sessions(engine)() as s:
        return audit.verify(s, **kw)


def test_an_intact_chain_verifies(engine: Engine) -> None:
    assert problems(engine) == []
    fill(engine, 10)
    assert problems(engine) == []
    with store.sessions(engine)() as s:
        rows = audit.entries(s)
        assert [r.seq for r in rows] == list(range(1, 11))
        assert rows[0].prev_hash == audit.GENESIS == "0" * 64
        assert all(b.prev_hash == a.hash for a, b in zip(rows, rows[1:], strict=False))
        assert all(a.at <= b.at and b.at.tzinfo is UTC for a, b in zip(rows, rows[1:], strict=False))
        assert audit.head(s) == (10, rows[-1].hash)
        assert [r.seq for r in audit.entries(s, limit=3, newest_first=True)] == [10, 9, 8]
        assert [r.seq for r in audit.entries(s, action="case.ingest")] == [1]
        assert rows[0].as_dict()["detail"] == {"i": 0, "note": "ünïcode ✓", "nested": {"a": [1, 2], "b": 1}}
        recorded = audit.head(s)
    assert problems(engine, expect_head=recorded) == []


def test_detail_is_stored_as_hashed(engine: Engine) -> None:
    when = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
    with store.sessions(engine).begin() as s:
        row = audit.append(s, actor="a", action="user.create", subject="user:olga",
                           detail={"when": when, "tags": ("x", "y")})
        assert row.detail == {"when": "2026-11-02T09:30:00+00:00", "tags": ["x", "y"]}
    assert problems(engine) == []
    with pytest.raises(TypeError, match="not JSON serialisable"):
        with store.sessions(engine).begin() as s:
            audit.append(s, actor="a", action="x", subject="y", detail={"bad": object()})


def test_the_empty_trail(engine: Engine) -> None:
    with store.sessions(engine)() as s:
        assert audit.head(s) is None and audit.verify(s) == []


def test_an_edited_entry_is_reported_with_its_seq(engine: Engine) -> None:
    fill(engine, 6)
    with engine.begin() as conn:
        conn.execute(update(AuditRow).where(AuditRow.seq == 3).values(detail={"i": 999}))
    assert problems(engine) == ["entry 3: content does not match its hash (edited)"]
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit SET actor = 'mallory' WHERE seq = 5"))
    assert problems(engine) == ["entry 3: content does not match its hash (edited)",
                                "entry 5: content does not match its hash (edited)"]


def test_an_entry_rehashed_after_editing_breaks_the_next_link(engine: Engine) -> None:
    fill(engine, 4)
    with store.sessions(engine).begin() as s:
        row = s.get(AuditRow, 2)
        assert row is not None
        row.actor = "mallory"
        row.hash = audit.entry_hash(seq=row.seq, at=row.at, actor=row.actor, action=row.action,
                                    subject=row.subject, detail=row.detail, prev_hash=row.prev_hash)
    assert problems(engine) == [
        "entry 3: previous-hash link broken (an entry before it was removed or edited)"]


def test_a_removed_middle_entry_is_reported(engine: Engine) -> None:
    fill(engine, 6)
    with engine.begin() as conn:
        conn.execute(delete(AuditRow).where(AuditRow.seq == 4))
    assert problems(engine) == [
        "entry 5: sequence gap, entry 4 missing (removed)",
        "entry 5: previous-hash link broken (an entry before it was removed or edited)"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE seq = 1"))
    assert problems(engine)[0] == "entry 2: sequence gap, entry 1 missing (removed)"


def test_removing_the_newest_entries_needs_the_recorded_head(engine: Engine) -> None:
    fill(engine, 5)
    with store.sessions(engine)() as s:
        recorded = audit.head(s)
    assert recorded is not None and recorded[0] == 5
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit WHERE seq >= 4"))
    assert problems(engine) == []  # a shorter chain is a valid chain
    assert problems(engine, expect_head=recorded) == [
        "entry 5: recorded head is missing, the last entry is 3 (truncated)"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit"))
    assert problems(engine, expect_head=recorded) == [
        "entry 5: recorded head is missing, the trail is empty (truncated)"]


def test_a_rewritten_chain_does_not_match_the_recorded_head(engine: Engine) -> None:
    fill(engine, 3)
    with store.sessions(engine)() as s:
        recorded = audit.head(s)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM audit"))
    fill(engine, 4)  # a whole new, internally valid chain
    assert problems(engine) == []
    assert problems(engine, expect_head=recorded) == [
        "entry 3: hash differs from the recorded head (the chain was rewritten)"]


def test_reordered_entries_are_reported(engine: Engine) -> None:
    fill(engine, 4)
    with engine.begin() as conn:  # swap entries 2 and 3 by renumbering them
        conn.execute(update(AuditRow).where(AuditRow.seq == 2).values(seq=-2))
        conn.execute(update(AuditRow).where(AuditRow.seq == 3).values(seq=2))
        conn.execute(update(AuditRow).where(AuditRow.seq == -2).values(seq=3))
    found = problems(engine)
    assert "entry 2: previous-hash link broken (an entry before it was removed or edited)" in found
    assert "entry 2: content does not match its hash (edited)" in found
    assert "entry 3: content does not match its hash (edited)" in found


def test_a_backdated_entry_is_reported_as_reordered(engine: Engine) -> None:
    fill(engine, 3)
    with engine.begin() as conn:
        conn.execute(update(AuditRow).where(AuditRow.seq == 3).values(
            at=datetime(2000, 1, 1, tzinfo=UTC) + timedelta(0)))
    found = problems(engine)
    assert found[0] == "entry 3: content does not match its hash (edited)"
    assert found[1].startswith("entry 3: timestamp 2000-01-01T00:00:00+00:00 is earlier than entry 2's")


def test_the_unique_prev_hash_forbids_a_fork(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError
    fill(engine, 2)
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            first = conn.execute(text("SELECT hash FROM audit WHERE seq = 1")).scalar_one()
            conn.execute(insert(AuditRow).values(
                seq=99, at=datetime.now(UTC), actor="x", action="y", subject="z", detail={}, prev_hash=first,
                hash="f" * 64))


def test_concurrent_appends_make_one_chain(engine: Engine) -> None:
    threads, per_thread = 8, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []
    sm = store.sessions(engine)

    def work(t: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                with sm.begin() as s:
                    audit.append(s, actor=f"thread{t}", action="case.ingest", subject=f"api:{t}-{i}",
                                 detail={"thread": t, "i": i})
        except BaseException as e:  # noqa: BLE001 - reported below
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
    assert errors == []
    with sm() as s:
        rows = audit.entries(s)
        assert [r.seq for r in rows] == list(range(1, threads * per_thread + 1))
        assert len({r.subject for r in rows}) == threads * per_thread
        assert audit.verify(s) == []


def test_verify_url(db_url: str) -> None:
    with pytest.raises(InputError, match="never migrated"):
        audit.verify_url(db_url)
    eng = store.connect(db_url)
    try:
        store.migrate(eng)
        fill(eng, 3)
        assert audit.verify_url(db_url) == []
        with eng.begin() as conn:
            conn.execute(text("UPDATE audit SET subject = 'x' WHERE seq = 2"))
        assert audit.verify_url(db_url) == ["entry 2: content does not match its hash (edited)"]
    finally:
        eng.dispose()


def test_verify_url_on_an_unreachable_server() -> None:
    with pytest.raises(InputError, match="cannot read the audit trail"):
        audit.verify_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
