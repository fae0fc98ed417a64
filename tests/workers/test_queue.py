"""The procrastinate queue with real workers on PostgreSQL: enqueue, run once, backfill, serve, faults."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from queue_support import BUNDLED, EPOCH, packets_per_case, store_cases, synthetic, wait_until
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from escalation import audit, store, workers
from escalation.cli import app as cli_app
from escalation.errors import InputError
from escalation.pack import load_pack
from escalation.service import Settings, create_app

PACK = load_pack(BUNDLED)
SINCE = EPOCH - timedelta(days=1)


def cfg(url: str, **kw: object) -> workers.WorkerConfig:
    env = {"ESCALATE_DATABASE_URL": url, "ESCALATE_SANDBOX": "1", "ESCALATE_RECONCILE_INTERVAL": "0",
           "ESCALATE_WORKER_HEARTBEAT": "0.5", "ESCALATE_WORKER_STALLED_AFTER": "2"}
    return workers.WorkerConfig.from_env(env, **kw)


def drain(url: str, **kw: object) -> None:
    """Run an in-process worker until the queue is empty."""
    workers.run_worker(cfg(url, **kw), wait=False, install_signal_handlers=False)


def backfill(engine: Engine, pack=PACK, policy: Path = BUNDLED, **kw: object) -> workers.BackfillReport:
    return workers.backfill(engine, workers.Queue.attach(engine), pack, policy=policy, sandbox=True, since=SINCE,
                            **kw)  # type: ignore[arg-type]


def job_rows(engine: Engine) -> list[tuple[str, str, int]]:
    with engine.connect() as conn:
        return [(r[0], r[1], r[2]) for r in conn.execute(text(
            "SELECT lock, status::text, attempts FROM procrastinate_jobs ORDER BY id"))]


def test_enqueue_then_worker_stores_one_packet_each(engine: Engine, pg_url: str) -> None:
    ids = store_cases(engine, 6)
    assert backfill(engine).enqueued == 6
    assert workers.job_counts(engine) == {"todo": 6}
    drain(pg_url)
    assert workers.job_counts(engine) == {"succeeded": 6}
    assert packets_per_case(engine, PACK.content_hash) == {i: 1 for i in ids}
    with Session(engine) as s:
        runs = audit.entries(s, action="packet.run")
        assert len(runs) == 6 and all(e.detail["job"] and e.detail["worker"] for e in runs)
        assert not audit.verify(s)


def test_duplicate_and_repeated_jobs_make_no_second_packet(engine: Engine, pg_url: str) -> None:
    [cid] = store_cases(engine, 1)
    queue = workers.Queue.attach(engine)
    with Session(engine) as s, s.begin():
        first = queue.defer_in(s, cid, PACK, policy=BUNDLED, sandbox=True)
    with Session(engine) as s, s.begin():  # the same job again while the first waits: refused (queueing lock)
        assert first is not None and queue.defer_in(s, cid, PACK, policy=BUNDLED, sandbox=True) is None
    # a duplicate that slips past the queueing lock (no locks at all) runs, but stores nothing new
    from procrastinate.jobs import Job
    args = {"case_row_id": cid, "pack_hash": PACK.content_hash, "policy": str(BUNDLED), "sandbox": True}
    with Session(engine) as s, s.begin():
        queue.app.job_manager.defer_job(Job(id=None, queue=queue.queue_name, lock=None, queueing_lock=None,
                                            task_name=workers.TASK_NAME, task_kwargs=args),
                                        connection=s.connection().connection.driver_connection)
    drain(pg_url)
    # re-enqueued after it ran (allowed: nothing waits), and run again: still one packet
    with Session(engine) as s, s.begin():
        assert queue.defer_in(s, cid, PACK, policy=BUNDLED, sandbox=True) is not None
    drain(pg_url)
    assert workers.job_counts(engine) == {"succeeded": 3}
    assert packets_per_case(engine) == {cid: 1}
    rt = workers.WorkerRuntime(cfg(pg_url))
    try:
        assert rt.run_case(cid, PACK.content_hash, str(BUNDLED.resolve()), True) == "exists"
    finally:
        rt.close()
    with Session(engine) as s:
        assert len(audit.entries(s, action="packet.run")) == 1
    # and a backfill or reconciliation finds nothing left to do
    assert backfill(engine).enqueued == 0
    assert workers.reconcile(engine, queue, PACK, policy=BUNDLED, sandbox=True, since=SINCE) == 0


def test_backfill_in_batches_resumes_from_its_cursor(engine: Engine, pg_url: str) -> None:
    old = store_cases(engine, 5, received=EPOCH - timedelta(days=30))  # before --since: never enqueued
    ids = store_cases(engine, 25, start=5)
    first = backfill(engine, batch_size=10, stop_after_batches=1)  # "interrupted" after one committed batch
    assert (first.enqueued, first.cursor, first.total) == (10, ids[9], 25)
    with Session(engine) as s:
        assert workers.backfill_cursor(s, PACK.content_hash, SINCE) == ids[9]
    second = backfill(engine, batch_size=10)
    assert second.resumed_from == ids[9] and second.enqueued == 15 and second.batches == 2
    assert second.scanned == second.total == 25
    locks = [lock for lock, _, _ in job_rows(engine)]
    assert sorted(locks) == sorted(workers.job_key(i, PACK.content_hash) for i in ids)
    again = backfill(engine, batch_size=10, restart=True)  # from the start: everything is queued already
    assert again.enqueued == 0 and again.skipped == 25
    drain(pg_url)
    assert packets_per_case(engine) == {i: 1 for i in ids}
    assert not set(old) & set(packets_per_case(engine))
    with Session(engine) as s:
        actions = [e.action for e in audit.entries(s) if e.action.startswith("backfill.")]
        assert actions.count("backfill.batch") == 6 and actions.count("backfill.done") == 2


def test_backfill_cli_with_progress(engine: Engine, pg_url: str) -> None:
    ids = store_cases(engine, 12)
    r = CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, [
        "backfill", "--since", SINCE.date().isoformat(), "--pack", PACK.version, "--sandbox",
        "--database", pg_url, "--batch-size", "5"])
    assert r.exit_code == 0, r.stderr
    assert "12 enqueued" in r.stderr
    r = CliRunner().invoke(cli_app, ["backfill", "--since", "2020-01-01", "--pack", "0.0.1", "--sandbox",
                                     "--database", pg_url])
    assert r.exit_code == 2 and "--pack 0.0.1" in r.stderr
    drain(pg_url)
    assert packets_per_case(engine) == {i: 1 for i in ids}


def test_backfill_under_a_new_pack_adds_packet_versions(engine: Engine, pg_url: str, pack_dir: Path) -> None:
    ids = store_cases(engine, 4)
    backfill(engine)
    drain(pg_url)
    with Session(engine) as s:
        before = {p.id: p.body for p in s.scalars(select(store.PacketRow))}
    handbook = next((pack_dir / "context").glob("*.md"))
    handbook.write_text(handbook.read_text() + "\nA note added for the next pack version.\n")
    new = load_pack(pack_dir)
    assert new.content_hash != PACK.content_hash
    rep = backfill(engine, pack=new, policy=pack_dir)
    assert rep.enqueued == 4
    drain(pg_url)
    assert packets_per_case(engine) == {i: 2 for i in ids}
    assert packets_per_case(engine, new.content_hash) == {i: 1 for i in ids}
    with Session(engine) as s:
        for pid, body in before.items():  # the old packets are untouched
            row = s.get(store.PacketRow, pid)
            assert row is not None and row.body == body and row.pack_hash == PACK.content_hash
        current = {e.current_packet_id for e in s.scalars(select(store.EscalationRow))}
        assert not current & set(before)  # the new versions are current


def test_serve_with_queue_answers_202_and_a_worker_stores_the_packet(pg_url: str) -> None:
    app = create_app(Settings(database_url=pg_url, sandbox=True, queue="procrastinate"))
    rt = app.state.runtime
    with rt.session() as s:
        _, key = store.create_user(s, "sam", "support")
    client = TestClient(app)
    h = {"Authorization": f"Bearer {key}"}
    body = json.dumps(synthetic(0)).encode()
    r = client.post("/cases", content=body, headers=h)
    assert r.status_code == 202, r.text
    out = r.json()
    assert out["queued"] is True and out["job_id"] and out["escalated"] is False
    again = client.post("/cases", content=body, headers=h)  # the same delivery: no second case nor job
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert workers.job_counts(rt.engine) == {"todo": 1}
    drain(pg_url)
    again = client.post("/cases", content=body, headers=h)
    assert again.status_code == 200 and again.json()["escalated"] is True
    eid = again.json()["escalation_id"]
    got = client.get(f"/escalations/{eid}", headers=h).json()
    assert got["packet"] is not None and len(got["packets"]) == 1
    with rt.session() as s:
        ingest = audit.entries(s, action="case.ingest")
        assert len(ingest) == 1 and ingest[0].detail["job"] == out["job_id"]
        assert not audit.verify(s)


def test_queue_needs_postgres_and_inline_stays_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sqlite = f"sqlite:///{tmp_path / 'e.db'}"
    with pytest.raises(InputError, match="needs a PostgreSQL database"):
        create_app(Settings(database_url=sqlite, sandbox=True, queue="procrastinate"))
    with pytest.raises(InputError, match="ESCALATE_QUEUE"):
        Settings.from_env({"ESCALATE_QUEUE": "celery"})
    monkeypatch.delenv("ESCALATE_QUEUE", raising=False)
    settings = Settings.from_env({"ESCALATE_DATABASE_URL": sqlite, "ESCALATE_SANDBOX": "1"})
    assert settings.queue is None
    app = create_app(settings)
    with app.state.runtime.session() as s:
        _, key = store.create_user(s, "sam", "support")
    r = TestClient(app).post("/cases", content=json.dumps(synthetic(1)).encode(),
                             headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201 and r.json()["escalated"] is True and "queued" not in r.json()


def test_worker_killed_mid_run_loses_and_duplicates_nothing(engine: Engine, pg_url: str, workers_started) -> None:
    """The small fault test: 200 cases, two worker processes, kill -9 one mid-run, start another."""
    ids = store_cases(engine, 200)

    def scalar(sql: str, **params: object) -> object:
        with engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    workers.Queue.attach(engine)
    w1 = workers_started()
    wait_until(lambda: scalar("SELECT count(*) FROM procrastinate_workers") == 1, 30, "the first worker")
    w1_id = scalar("SELECT id FROM procrastinate_workers")
    workers_started()
    rep = backfill(engine, batch_size=50)
    assert rep.enqueued == 200

    def done() -> int:
        return workers.job_counts(engine).get("succeeded", 0)

    wait_until(lambda: done() >= 30, 60, "30 jobs done")
    # kill -9 the first worker while it holds a job (the job stays 'doing' under a dead worker)
    wait_until(lambda: scalar("SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing' AND worker_id = :w",
                              w=w1_id) == 1, 30, "the first worker to hold a job")
    w1.kill9()
    victim = scalar("SELECT id FROM procrastinate_jobs WHERE status = 'doing' AND worker_id = :w", w=w1_id)
    killed_at = done()
    workers_started()  # a replacement
    wait_until(lambda: done() == 200, 90, "every job done")
    assert killed_at < 200
    counts = workers.job_counts(engine)
    assert counts == {"succeeded": 200}, counts
    per_case = packets_per_case(engine, PACK.content_hash)
    assert per_case == {i: 1 for i in ids}, "a case lost its packet or got two"
    with Session(engine) as s:
        assert s.scalar(select(func.count()).select_from(store.PacketRow)) == 200
        assert not audit.verify(s)
    if victim is not None:  # the kill landed mid-job (nearly always): that job ran again, once
        assert scalar("SELECT attempts FROM procrastinate_jobs WHERE id = :j", j=victim) == 2


def test_stalled_job_of_a_dead_worker_is_retried(engine: Engine, pg_url: str) -> None:
    """A job left in 'doing' by a worker that stopped heart-beating goes back to the queue, then runs once."""
    [cid] = store_cases(engine, 1)
    backfill(engine)
    with engine.begin() as conn:  # what a worker killed -9 after fetching the job leaves behind
        wid = conn.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) "
                                "VALUES (now() - interval '1 hour') RETURNING id")).scalar()
        conn.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w, attempts = 1"),
                     {"w": wid})
    assert workers.job_counts(engine) == {"doing": 1}
    stop = threading.Event()
    t = threading.Thread(target=workers.run_worker, args=(cfg(pg_url),),
                         kwargs={"wait": True, "install_signal_handlers": False, "stop": stop}, daemon=True)
    t.start()  # wait=True: the worker keeps running; its maintenance loop finds the stalled job, puts it back
    try:
        wait_until(lambda: workers.job_counts(engine) == {"succeeded": 1}, 30, "the stalled job to be retried")
    finally:
        stop.set()
        t.join(20)
    assert not t.is_alive()
    assert packets_per_case(engine) == {cid: 1}


def test_reconcile_enqueues_a_case_stored_without_its_job(engine: Engine, pg_url: str) -> None:
    ids = store_cases(engine, 3, received=datetime.now(UTC) - timedelta(minutes=5))
    queue = workers.Queue.attach(engine)
    since = datetime.now(UTC) - timedelta(hours=1)
    assert workers.reconcile(engine, queue, PACK, policy=BUNDLED, sandbox=True, since=since) == 3
    assert workers.reconcile(engine, queue, PACK, policy=BUNDLED, sandbox=True, since=since) == 0
    drain(pg_url)
    assert packets_per_case(engine) == {i: 1 for i in ids}


def test_queue_schema_is_created_once_with_the_lock_index(engine: Engine) -> None:
    assert workers.ensure_schema(engine) is True
    assert workers.ensure_schema(engine) is False  # a second process starting finds it
    with engine.connect() as conn:
        assert conn.execute(text("SELECT to_regclass(:i)"), {"i": workers._LOCK_INDEX}).scalar() is not None
    assert store.current_revision(engine) == store.head_revision()  # the service's own migrations untouched
