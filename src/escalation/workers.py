"""Scale-out: run the skill in the workers of a PostgreSQL-backed task queue (procrastinate).

Configured from the environment (see docs/scale-out.md):

    ESCALATE_DATABASE_URL        postgresql+psycopg://user@host:5432/db  (the queue lives in the same database)
    ESCALATE_QUEUE               procrastinate  (unset: the service runs the skill inline, as before)
    ESCALATE_QUEUE_NAME          escalation     (the procrastinate queue the jobs go to)
    ESCALATE_WORKER_CONCURRENCY  1              (jobs one worker process runs at once, in threads)
    ESCALATE_WORKER_HEARTBEAT    5              (seconds between a worker's heartbeats)
    ESCALATE_WORKER_STALLED_AFTER 20            (a worker silent this long is dead: its jobs are retried)
    ESCALATE_RECONCILE_INTERVAL  60             (seconds between reconciliations in a worker; 0: never)
    ESCALATE_RECONCILE_WINDOW_HOURS 24          (how far back a worker's reconciliation looks)

How "no lost work, nothing twice" holds:

- one job per (case version, pack hash): its procrastinate `queueing_lock` and `lock` are both
  `escalation:case:<case row id>:<pack hash>`, so a duplicate cannot wait in the queue next to
  it nor run next to it; the store's unique (case_id, pack_hash) and `record_packet`'s check
  make a job that runs again anyway (retried, re-enqueued later) store no second packet;
- the API writes the case, its job and the `case.ingest` audit entry in one transaction, on
  one connection (`Queue.defer_in`), so a crash cannot keep a case and lose its job;
- a job is acknowledged (procrastinate marks it succeeded) only after the task returned, that
  is after the packet and its `packet.run` audit entry were committed; a worker killed -9 mid-job
  stops heart-beating and `retry_stalled` (run by every live worker) puts its job back;
- `reconcile` enqueues stored case versions that have neither a packet for the pack hash nor a
  pending or succeeded job (a case stored by another path, or a job lost some other way);
  `escalate backfill` is the same walk over all cases since a date, with a cursor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, bindparam, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from . import audit, store
from .errors import InputError, PackError
from .pack import Pack, load_pack

log = logging.getLogger("escalation.workers")

BACKEND = "procrastinate"
TASK_NAME = "escalation.run_case"
DEFAULT_QUEUE_NAME = "escalation"
JOB_PREFIX = "escalation:case:"
_SCHEMA_LOCK = 0x45534351  # "ESCQ": advisory lock so two processes do not create the queue schema at once
_RECONCILE_LOCK = 0x45534352  # "ESCR": one reconciliation at a time across all workers
_LOCK_INDEX = "escalation_procrastinate_jobs_lock"
LIVE_STATUSES = ("todo", "doing", "succeeded")
"""A job in one of these states means the (case, pack) pair needs no new job."""


# ---------------------------------------------------------------- configuration


def queue_backend(value: str | None) -> str | None:
    """ESCALATE_QUEUE: None (inline) for '', 'none', 'inline', 'off'; 'procrastinate'; anything else is an error."""
    v = (value or "").strip().lower()
    if v in ("", "none", "inline", "off", "0", "false"):
        return None
    if v == BACKEND:
        return BACKEND
    raise InputError(f"ESCALATE_QUEUE={value!r}: the only queue is {BACKEND!r} (unset it to run the skill inline)")


def require_postgres(url: str, what: str = f"ESCALATE_QUEUE={BACKEND}") -> None:
    """The queue lives in the service's database, so it must be PostgreSQL; an InputError says so."""
    try:
        backend = make_url(url).get_backend_name()
    except Exception:  # noqa: BLE001 - store.connect gives the detailed message
        backend = ""
    if backend not in ("postgresql", "postgres"):
        shown = url.split("://", 1)[0] + "://..." if "://" in url else url
        inline = ", or unset ESCALATE_QUEUE to run the skill inline" if what.startswith("ESCALATE_QUEUE") else ""
        raise InputError(f"{what} needs a PostgreSQL database (the queue is stored in it): set "
                         f"ESCALATE_DATABASE_URL=postgresql+psycopg://user@host:5432/dbname (got {shown}){inline}")


def conninfo(url: str) -> str:
    """The libpq URL of an SQLAlchemy PostgreSQL URL (procrastinate speaks psycopg directly)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(f"{name}={raw!r}: expected a number of seconds") from None
    if value < 0:
        raise InputError(f"{name}={raw!r}: must not be negative")
    return value


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs; `from_env` reads the variables in this module's docstring."""

    database_url: str
    policy: Path
    sandbox: bool = False
    queue_name: str = DEFAULT_QUEUE_NAME
    concurrency: int = 1
    heartbeat: float = 5.0
    stalled_after: float = 20.0
    reconcile_every: float = 60.0
    reconcile_window: timedelta = timedelta(hours=24)
    name: str = field(default_factory=lambda: f"worker-{os.uname().nodename}-{os.getpid()}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, **overrides: Any) -> WorkerConfig:
        from .service import BUNDLED_PACK

        raw_conc = env.get("ESCALATE_WORKER_CONCURRENCY", "").strip() or "1"
        if not raw_conc.isdigit() or int(raw_conc) < 1:
            raise InputError(f"ESCALATE_WORKER_CONCURRENCY={raw_conc!r}: expected a whole number >= 1")
        values: dict[str, Any] = {
            "database_url": store.database_url(env),
            "policy": Path(env.get("ESCALATE_POLICY", str(BUNDLED_PACK))),
            "sandbox": env.get("ESCALATE_SANDBOX", "").lower() in ("1", "true", "yes"),
            "queue_name": env.get("ESCALATE_QUEUE_NAME", "").strip() or DEFAULT_QUEUE_NAME,
            "concurrency": int(raw_conc),
            "heartbeat": _float(env, "ESCALATE_WORKER_HEARTBEAT", 5.0),
            "stalled_after": _float(env, "ESCALATE_WORKER_STALLED_AFTER", 20.0),
            "reconcile_every": _float(env, "ESCALATE_RECONCILE_INTERVAL", 60.0),
            "reconcile_window": timedelta(hours=_float(env, "ESCALATE_RECONCILE_WINDOW_HOURS", 24.0)),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["stalled_after"] <= values["heartbeat"]:
            raise InputError(f"ESCALATE_WORKER_STALLED_AFTER ({values['stalled_after']} s) must be longer than "
                             f"ESCALATE_WORKER_HEARTBEAT ({values['heartbeat']} s)")
        return cls(**values)


# ---------------------------------------------------------------- schema


def ensure_schema(engine: Engine) -> bool:
    """Create procrastinate's tables in the service database unless they exist; True when it created them.

    Guarded by an advisory lock, so API processes and workers starting together create it once.
    """
    from procrastinate.schema import SchemaManager

    require_postgres(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
        created = conn.execute(text("SELECT to_regclass('procrastinate_jobs')")).scalar() is None
        if created:
            # several statements (functions, triggers): psycopg sends a parameterless query as one simple query
            conn.connection.driver_connection.execute(SchemaManager.get_schema())  # type: ignore[union-attr]
        # procrastinate looks jobs up by `lock` (fetching: "no earlier job with my lock"), and so do
        # backfill and reconciliation (over succeeded jobs too). Measured with 10,000 jobs queued:
        # a fetch takes 0.07 ms with this index, 0.35 ms without (and ~1 s with statistics that
        # still describe an empty table: hence the ANALYZE in `backfill`)
        conn.execute(text(f"CREATE INDEX IF NOT EXISTS {_LOCK_INDEX} ON procrastinate_jobs (lock)"))
        return created


# ---------------------------------------------------------------- enqueueing


def job_key(case_row_id: int, pack_hash: str) -> str:
    """The lock and queueing lock of the job of one case version under one pack."""
    return f"{JOB_PREFIX}{case_row_id}:{pack_hash}"


def _job_args(case_row_id: int, pack: Pack, policy: Path, sandbox: bool) -> dict[str, Any]:
    return {"case_row_id": case_row_id, "pack_hash": pack.content_hash, "policy": str(Path(policy).resolve()),
            "sandbox": bool(sandbox)}


class Queue:
    """The enqueueing side: writes job rows on the caller's connection, inside the caller's transaction."""

    def __init__(self, queue_name: str = DEFAULT_QUEUE_NAME) -> None:
        import procrastinate

        self.queue_name = queue_name
        # conninfo is never used to open a pool: every write goes through `connection=` (the caller's)
        self.app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=""))

    @classmethod
    def attach(cls, engine: Engine, queue_name: str | None = None) -> Queue:
        """A queue over the service database, creating procrastinate's schema there when missing."""
        ensure_schema(engine)
        return cls(queue_name or os.environ.get("ESCALATE_QUEUE_NAME", "").strip() or DEFAULT_QUEUE_NAME)

    def _job(self, case_row_id: int, pack: Pack, policy: Path, sandbox: bool) -> Any:
        from procrastinate.jobs import Job

        key = job_key(case_row_id, pack.content_hash)
        return Job(id=None, queue=self.queue_name, lock=key, queueing_lock=key, task_name=TASK_NAME,
                   task_kwargs=_job_args(case_row_id, pack, policy, sandbox))

    def defer_in(self, s: Session, case_row_id: int, pack: Pack, *, policy: Path, sandbox: bool) -> int | None:
        """Enqueue one case version in `s`'s transaction; None when its job is already waiting."""
        ids = self.defer_many(s, [case_row_id], pack, policy=policy, sandbox=sandbox)
        return ids[0]

    def defer_many(self, s: Session, case_row_ids: Sequence[int], pack: Pack, *, policy: Path,
                   sandbox: bool) -> list[int | None]:
        """Enqueue case versions in `s`'s transaction, in one statement when none is already waiting.

        A job already waiting (the queueing lock) gives None for its case and is not an error.
        """
        from procrastinate.exceptions import AlreadyEnqueued

        if not case_row_ids:
            return []
        raw = s.connection().connection.driver_connection
        jobs = [self._job(cid, pack, policy, sandbox) for cid in case_row_ids]
        try:
            with s.begin_nested():
                return [j.id for j in self.app.job_manager.batch_defer_jobs(jobs, connection=raw)]
        except AlreadyEnqueued:
            if len(jobs) == 1:
                return [None]
        out: list[int | None] = []
        for job in jobs:  # one of the batch was waiting already: one savepoint each
            try:
                with s.begin_nested():
                    out.append(self.app.job_manager.defer_job(job, connection=raw).id)
            except AlreadyEnqueued:
                out.append(None)
        return out


# ---------------------------------------------------------------- reconciliation and backfill


def _needing_jobs(s: Session, case_row_ids: Sequence[int], pack_hash: str) -> list[int]:
    """Those of the case rows with neither a packet for the pack hash nor a live job (todo, doing, succeeded)."""
    if not case_row_ids:
        return []
    done = set(s.scalars(select(store.PacketRow.case_id).where(store.PacketRow.case_id.in_(list(case_row_ids)),
                                                                store.PacketRow.pack_hash == pack_hash)))
    keys = {job_key(c, pack_hash): c for c in case_row_ids if c not in done}
    if keys:
        q = text("SELECT lock FROM procrastinate_jobs WHERE lock IN :keys "
                 "AND status::text IN ('todo', 'doing', 'succeeded')").bindparams(bindparam("keys", expanding=True))
        for (lock,) in s.execute(q, {"keys": list(keys)}):
            keys.pop(lock, None)
    return sorted(keys.values())


@dataclass
class BackfillReport:
    total: int = 0
    """Case versions received since the date (all of them, before and after the cursor)."""
    scanned: int = 0
    enqueued: int = 0
    skipped: int = 0
    """Already had a packet for the pack hash or a live job."""
    resumed_from: int = 0
    cursor: int = 0
    batches: int = 0
    seconds: float = 0.0


def backfill_subject(pack_hash: str, since: datetime) -> str:
    return f"backfill:{pack_hash}:{since.astimezone(UTC).isoformat()}"


def backfill_cursor(s: Session, pack_hash: str, since: datetime) -> int:
    """The last case row id a backfill of (pack hash, since) enqueued up to (0: none yet)."""
    last = audit.entries(s, action="backfill.batch", subject=backfill_subject(pack_hash, since), limit=1,
                         newest_first=True)
    return int(last[0].detail.get("cursor", 0)) if last else 0


def backfill(engine: Engine, queue: Queue, pack: Pack, *, policy: Path, sandbox: bool, since: datetime,
             batch_size: int = 500, restart: bool = False, actor: str = "cli",
             progress: Callable[[int, int], None] | None = None, stop_after_batches: int | None = None,
             audit_batches: bool = True) -> BackfillReport:
    """Enqueue every stored case version received since `since` (by case row id, in batches).

    Each batch's jobs and its cursor (a `backfill.batch` audit entry keyed by pack hash and date)
    are committed together, so an interrupted backfill resumes after its last committed batch and
    never enqueues a case twice; a case that already has a packet for the pack hash, or a job
    waiting, running or done, is skipped. `progress(done, total)` is called after each batch.
    Results land as new packet rows under the pack hash: packets of other pack hashes stay.
    """
    if batch_size < 1:
        raise InputError("--batch-size must be at least 1")
    t0 = time.perf_counter()
    rep = BackfillReport()
    subject = backfill_subject(pack.content_hash, since)
    with Session(engine) as s:
        rep.total = s.scalar(select(func.count()).select_from(store.CaseRow)
                             .where(store.CaseRow.received_at >= since)) or 0
        cursor = 0 if restart else backfill_cursor(s, pack.content_hash, since)
        rep.resumed_from = cursor
        if cursor:
            rep.scanned = s.scalar(select(func.count()).select_from(store.CaseRow).where(
                store.CaseRow.received_at >= since, store.CaseRow.id <= cursor)) or 0
    if progress:
        progress(rep.scanned, rep.total)
    with Session(engine) as s, s.begin():
        audit.append(s, actor=actor, action="backfill.start", subject=subject,
                     detail={"pack": f"{pack.name} {pack.version}", "pack_hash": pack.content_hash,
                             "since": since.isoformat(), "resumed_from": cursor, "batch_size": batch_size})
    finished = False
    while stop_after_batches is None or rep.batches < stop_after_batches:
        with Session(engine, expire_on_commit=False) as s, s.begin():
            ids = list(s.scalars(select(store.CaseRow.id).where(store.CaseRow.received_at >= since,
                                                                 store.CaseRow.id > cursor)
                                 .order_by(store.CaseRow.id).limit(batch_size)))
            if not ids:
                finished = True
                break
            todo = _needing_jobs(s, ids, pack.content_hash)
            queued = queue.defer_many(s, todo, pack, policy=policy, sandbox=sandbox)
            n = sum(q is not None for q in queued)
            cursor = ids[-1]
            if audit_batches:  # the cursor commits with the batch's jobs
                audit.append(s, actor=actor, action="backfill.batch", subject=subject,
                             detail={"cursor": cursor, "scanned": len(ids), "enqueued": n})
        rep.batches += 1
        rep.scanned += len(ids)
        rep.enqueued += n
        rep.skipped += len(ids) - n
        rep.cursor = cursor
        if progress:
            progress(rep.scanned, rep.total)
    if rep.enqueued >= 1000:  # fresh statistics, so workers' fetch query plans for a long queue, not an empty one
        with engine.connect() as conn:
            conn.execute(text("ANALYZE procrastinate_jobs"))
            conn.commit()
    if finished:  # (stopping after `stop_after_batches` is an interruption: no backfill.done)
        with Session(engine) as s, s.begin():
            audit.append(s, actor=actor, action="backfill.done", subject=subject,
                         detail={"cursor": cursor, "enqueued": rep.enqueued, "skipped": rep.skipped})
    rep.cursor = cursor
    rep.seconds = time.perf_counter() - t0
    return rep


def reconcile(engine: Engine, queue: Queue, pack: Pack, *, policy: Path, sandbox: bool, since: datetime,
              batch_size: int = 1000) -> int:
    """Enqueue case versions received since `since` that have no packet for the pack and no live job.

    One reconciliation at a time across all workers (a transaction-scoped advisory lock; a
    worker that does not get it skips this round). Returns how many jobs it enqueued.
    """
    enqueued, cursor = 0, 0
    while True:
        with Session(engine) as s, s.begin():
            if not s.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _RECONCILE_LOCK}).scalar():
                return enqueued
            ids = list(s.scalars(select(store.CaseRow.id).where(store.CaseRow.received_at >= since,
                                                                 store.CaseRow.id > cursor)
                                 .order_by(store.CaseRow.id).limit(batch_size)))
            if not ids:
                return enqueued
            todo = _needing_jobs(s, ids, pack.content_hash)
            enqueued += sum(q is not None for q in queue.defer_many(s, todo, pack, policy=policy, sandbox=sandbox))
            cursor = ids[-1]


# ---------------------------------------------------------------- the worker


class PackMismatch(PackError):
    """A job names a pack hash the pack folder on this machine does not have."""


class WorkerRuntime:
    """What the task needs in a worker process: the database and the packs jobs name (loaded once)."""

    def __init__(self, cfg: WorkerConfig) -> None:
        require_postgres(cfg.database_url, "escalate worker")
        self.cfg = cfg
        self.engine = store.connect(cfg.database_url)
        store.migrate(self.engine)
        ensure_schema(self.engine)
        self.pack = self._load(cfg.policy, cfg.sandbox)
        self._packs: dict[str, Pack] = {str(Path(cfg.policy).resolve()): self.pack}
        self._lock = threading.Lock()

    @staticmethod
    def _load(policy: Path, sandbox: bool) -> Pack:
        from .release import is_released

        pack = load_pack(policy)
        if not sandbox and is_released(pack) is None:
            raise PackError(f"{pack.name} {pack.version} ({policy}) is not a released version: release it with "
                            f"`escalate policy release {policy} --approved-by NAME`, or run it as a draft with "
                            "--sandbox / ESCALATE_SANDBOX=1")
        return pack

    def pack_for(self, policy: str, pack_hash: str, sandbox: bool) -> Pack:
        with self._lock:
            pack = self._packs.get(policy)
            if pack is None or pack.content_hash != pack_hash:  # not loaded yet, or changed on disk since
                pack = self._packs[policy] = self._load(Path(policy), sandbox)
        if pack.content_hash != pack_hash:
            raise PackMismatch(f"the job wants pack {pack_hash} but {policy} on this machine is "
                               f"{pack.name} {pack.version} ({pack.content_hash}): deploy the same pack everywhere")
        return pack

    def run_case(self, case_row_id: int, pack_hash: str, policy: str, sandbox: bool,
                 job_id: int | None = None) -> str:
        """Run the skill on one stored case version and commit its packet + audit entry; say what happened.

        'exists' (a packet for the pack is already stored: a retried or duplicated job),
        'recorded', 'no-trigger' (the skill decided not to escalate: nothing to store, as inline),
        'missing' (no such case row).
        """
        from .case import parse_case
        from .engine import run as run_engine
        from .release import is_released
        from .service import record_run

        pack = self.pack_for(policy, pack_hash, sandbox)
        with Session(self.engine) as s:
            row = store.get_case(s, case_row_id)
            if row is None:
                log.warning("job %s: no case row %s", job_id, case_row_id)
                return "missing"
            if store.packet_for_case(s, case_row_id, pack_hash) is not None:
                return "exists"
            case = parse_case(row.body, where=f"stored case {row.id}")
        packet = run_engine(case, pack)  # outside any transaction: the engine is the slow part
        if not packet.triggers:
            return "no-trigger"
        status = "released" if is_released(pack) is not None else "draft (sandbox)"
        with Session(self.engine, expire_on_commit=False) as s, s.begin():
            row = store.get_case(s, case_row_id)
            assert row is not None
            _, created = record_run(s, pack, status, row, packet, store.utcnow(),
                                    extra={"job": job_id, "worker": self.cfg.name})
        return "recorded" if created else "exists"

    def close(self) -> None:
        self.engine.dispose()


def make_worker_app(rt: WorkerRuntime) -> Any:
    """A procrastinate App over the service database with the `run_case` task bound to `rt`."""
    import procrastinate

    cfg = rt.cfg
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(
        conninfo=conninfo(cfg.database_url), min_size=1, max_size=cfg.concurrency + 3))

    @app.task(name=TASK_NAME, queue=cfg.queue_name, pass_context=True,
              retry=procrastinate.RetryStrategy(max_attempts=5, exponential_wait=2))
    def run_case(context: Any, case_row_id: int, pack_hash: str, policy: str, sandbox: bool = False) -> str:
        return rt.run_case(case_row_id, pack_hash, policy, sandbox, job_id=context.job.id)

    return app


async def retry_stalled(app: Any, queue_name: str, stalled_after: float) -> int:
    """Put back the jobs of workers that stopped heart-beating (killed -9, machine lost); how many."""
    from procrastinate.exceptions import ConnectorException

    n = 0
    for job in await app.job_manager.get_stalled_jobs(queue=queue_name, seconds_since_heartbeat=stalled_after):
        try:
            await app.job_manager.retry_job(job)
            n += 1
            log.warning("retrying job %s (%s) of a stalled worker", job.id, job.lock)
        except ConnectorException as e:  # e.g. a duplicate of it is waiting (queueing lock): that one will run
            log.warning("could not retry stalled job %s: %s", job.id, e)
    return n


async def _maintain(app: Any, rt: WorkerRuntime, stop: asyncio.Event) -> None:
    """Every worker: retry stalled jobs often, reconcile now and then (errors are logged, never fatal)."""
    cfg = rt.cfg
    queue = Queue(cfg.queue_name)
    every = max(0.5, min(cfg.heartbeat, cfg.stalled_after / 2))
    last_reconcile = 0.0
    while not stop.is_set():
        try:
            await retry_stalled(app, cfg.queue_name, cfg.stalled_after)
            if cfg.reconcile_every and time.monotonic() - last_reconcile >= cfg.reconcile_every:
                last_reconcile = time.monotonic()
                since = datetime.now(UTC) - cfg.reconcile_window
                n = await asyncio.to_thread(reconcile, rt.engine, queue, rt.pack, policy=cfg.policy,
                                            sandbox=cfg.sandbox, since=since)
                if n:
                    log.warning("reconciliation enqueued %d case version(s) without a packet or job", n)
        except Exception:  # noqa: BLE001 - a database hiccup must not kill the worker
            log.exception("worker maintenance failed; trying again")
        try:
            await asyncio.wait_for(stop.wait(), timeout=every)
        except TimeoutError:
            pass


def run_worker(cfg: WorkerConfig, *, wait: bool = True, install_signal_handlers: bool = True,
               on_ready: Callable[[], None] | None = None, stop: threading.Event | None = None) -> None:
    """Run one worker process's loop: `wait=False` returns once the queue is empty (tests, batch runs).

    `stop` (for a worker in a thread) ends it like SIGTERM would: the running job finishes first.
    """
    rt = WorkerRuntime(cfg)
    app = make_worker_app(rt)

    async def main() -> None:
        done = asyncio.Event()
        async with app.open_async():
            side = asyncio.create_task(_maintain(app, rt, done))
            work = asyncio.create_task(app.run_worker_async(
                queues=[cfg.queue_name], concurrency=cfg.concurrency, wait=wait, name=cfg.name,
                update_heartbeat_interval=cfg.heartbeat, stalled_worker_timeout=cfg.stalled_after,
                install_signal_handlers=install_signal_handlers, fetch_job_polling_interval=2.0))
            if on_ready:
                on_ready()
            watcher = asyncio.create_task(asyncio.to_thread(stop.wait)) if stop is not None else None
            try:
                if watcher is not None:
                    await asyncio.wait({work, watcher}, return_when=asyncio.FIRST_COMPLETED)
                    if not work.done():
                        work.cancel()  # procrastinate stops gracefully on cancellation
                with contextlib.suppress(asyncio.CancelledError):
                    await work
            finally:
                done.set()
                await side
                if watcher is not None and not watcher.done():
                    stop.set()  # type: ignore[union-attr]
                    await watcher

    try:
        asyncio.run(main())
    finally:
        rt.close()


# ---------------------------------------------------------------- inspection


def job_counts(engine: Engine, queue_name: str | None = None) -> dict[str, int]:
    """Jobs per status (todo, doing, succeeded, failed, ...) in the queue (all queues when None)."""
    q = "SELECT status::text, count(*) FROM procrastinate_jobs"
    params: dict[str, Any] = {}
    if queue_name:
        q += " WHERE queue_name = :q"
        params["q"] = queue_name
    with engine.connect() as conn:
        return {str(k): int(v) for k, v in conn.execute(text(q + " GROUP BY 1"), params)}
