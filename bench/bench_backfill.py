#!/usr/bin/env python3
"""Backfill throughput with 1, 2 and 4 worker processes on PostgreSQL, and the fault test.

Generates N case versions from the eval and demo cases (those whose packet has a trigger) with
varied case and ticket ids, timestamps (every time in the case shifted by the same random
delta) and account ids, stores them once in a template database, then for each worker count
copies it (CREATE DATABASE ... TEMPLATE), starts that many `escalate worker` processes, runs the
backfill (`workers.backfill`, batches of 500) and times until every job succeeded. While it runs
it samples CPU (the machine, the PostgreSQL processes, the workers) and pg_stat_activity (backends
active, waiting on locks), to show where the database becomes the limit.

    .venv/bin/python bench/bench_backfill.py                    # 10,000 cases, 1, 2 and 4 workers
    .venv/bin/python bench/bench_backfill.py --small            # 500 cases (CI)
    .venv/bin/python bench/bench_backfill.py --fault            # kill -9 a worker and the API once each
    .venv/bin/python bench/bench_backfill.py --fault --small

--fault: 2 workers and `escalate serve` (ESCALATE_QUEUE=procrastinate); while the backfill runs,
new cases are POSTed to the API; at ~30% a worker gets kill -9 and is restarted, at ~60% the API
does and is restarted (unacknowledged posts are retried with the same Idempotency-Key). It then
asserts: every job succeeded, every posted case stored once, every case version at most one
packet for the pack hash and exactly one when its job ran the skill to a trigger (all
generated cases trigger), the audit chain intact. Exit status 1 when any of that fails.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import httpx  # noqa: E402
from bench_service import create_user, escalate_cmd, free_port, kill_group, stop_group  # noqa: E402
from sqlalchemy import Engine, create_engine, func, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from escalation import audit, store, workers  # noqa: E402
from escalation.case import parse_case  # noqa: E402
from escalation.engine import run  # noqa: E402
from escalation.pack import load_pack  # noqa: E402

PACK_DIR = ROOT / "src" / "escalation" / "packs" / "lumen"
EVAL = ROOT.parent / "shared" / "eval" / "cases"
DEMO = ROOT / "src" / "escalation" / "demo"
PG = os.environ.get("ESCALATE_TEST_PG_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")
SINCE = datetime(2020, 1, 1, tzinfo=UTC)
_TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$")


# ---------------------------------------------------------------- cases


def templates() -> list[tuple[dict[str, Any], bool, bool]]:
    """(case, may shift its times, may change its account id) for the eval and demo cases with a trigger.

    A few cases lose their trigger when their times move (a dated incident, a deadline) or their
    account id changes (a named strategic account): those keep what their trigger depends on.
    """
    pack = load_pack(PACK_DIR)
    paths = (sorted(EVAL.glob("*.case.json")) if EVAL.is_dir() else []) + sorted(DEMO.glob("*.case.json"))
    out = []

    def triggers(body: dict[str, Any]) -> bool:
        return bool(run(parse_case(body, where="template"), pack).triggers)

    for p in paths:
        body = json.loads(p.read_text(encoding="utf-8"))
        if triggers(body):
            shift = all(triggers(_shift(copy.deepcopy(body), timedelta(days=d, minutes=m)))
                        for d, m in ((-1, 17), (-300, 1439)))
            acct = copy.deepcopy(body)
            acct["account"]["id"] += "-9"
            out.append((body, shift, triggers(acct)))
    return out


def _shift(value: Any, delta: timedelta) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, delta) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, delta) for v in value]
    if isinstance(value, str) and _TS.match(value):
        at = datetime.fromisoformat(value.replace("Z", "+00:00")) + delta
        return at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return value


def synthetic(tpls: list[tuple[dict[str, Any], bool, bool]], i: int, rng: random.Random,
              pack: Any = None) -> dict[str, Any]:
    """The i-th case: template i % len, new ids, its times shifted by one random delta, another account id.

    With `pack`, a variation that loses the template's trigger (a time-dependent rule) is replaced by
    the template with new ids only, so every generated case escalates (one packet each).
    """
    tpl, shift, acct = tpls[i % len(tpls)]
    delta = timedelta(days=rng.randint(-300, 0), minutes=rng.randint(0, 1439))
    n_acct = rng.randint(1, 400)
    body = _shift(copy.deepcopy(tpl), delta) if shift else copy.deepcopy(tpl)
    if acct:
        body["account"]["id"] = f"{body['account']['id']}-{n_acct}"
    if pack is not None and not run(parse_case(body, where="variation"), pack).triggers:
        body = copy.deepcopy(tpl)
    body["id"] = f"{body['id']}-b{i}"
    body["ticket"]["id"] = f"{body['ticket']['id']}-b{i}"
    return body


def store_cases(url: str, n: int, seed: int = 7) -> float:
    """Store n synthetic case versions (received over the last 300 days); seconds taken."""
    t0 = time.perf_counter()
    rng, tpls = random.Random(seed), templates()
    pack = load_pack(PACK_DIR)  # each variation is checked to keep its trigger (about 8 ms a case)
    engine = store.connect(url)
    store.migrate(engine)
    base = datetime.now(UTC) - timedelta(days=300)
    for start in range(0, n, 500):
        with Session(engine) as s, s.begin():
            for i in range(start, min(n, start + 500)):
                b = synthetic(tpls, i, rng, pack)
                store.ingest_case(s, source="api", ticket_id=b["ticket"]["id"], update_id=f"bf-{i}", body=b,
                                  account_id=b["account"]["id"], received_at=base + timedelta(minutes=43 * i % 432000))
    workers.ensure_schema(engine)
    engine.dispose()
    return time.perf_counter() - t0


# ---------------------------------------------------------------- databases and processes


def admin() -> Engine:
    return create_engine(PG, isolation_level="AUTOCOMMIT")


def db_url(name: str) -> str:
    return make_url(PG).set(database=name).render_as_string(hide_password=False)


def create_db(name: str, template: str | None = None) -> str:
    eng = admin()
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    eng.dispose()
    return db_url(name)


def drop_db(name: str) -> None:
    eng = admin()
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


class Proc:
    """An `escalate` subprocess in its own process group: start, kill -9, stop, RSS."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*escalate_cmd(), *self.args], stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **self.env}, cwd=ROOT, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill9(self) -> None:
        assert self.proc is not None
        kill_group(self.proc)

    def stop(self) -> None:
        stop_group(self.proc, timeout=20)

    def rss_mb(self) -> float:
        """VmRSS of the process group (uvicorn may fork) in MiB."""
        total = 0
        for pid in group_pids(self.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024


def group_pids(pgid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid:
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def worker_env(url: str, **extra: str) -> dict[str, str]:
    return {"ESCALATE_DATABASE_URL": url, "ESCALATE_SANDBOX": "1", "ESCALATE_POLICY": str(PACK_DIR),
            "ESCALATE_WORKER_HEARTBEAT": "1", "ESCALATE_WORKER_STALLED_AFTER": "4",
            "ESCALATE_RECONCILE_INTERVAL": "0", **extra}


# ---------------------------------------------------------------- sampling


def _cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            parts = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(parts[11]) + int(parts[12])  # utime + stime
        except (OSError, IndexError):
            pass
    return total


def _postgres_pids() -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if Path(f"/proc/{d.name}/comm").read_text().strip() == "postgres":
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def _machine_ticks() -> tuple[int, int]:
    vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(vals), vals[3] + vals[4]  # total, idle + iowait


@dataclass
class Sampler:
    """CPU of the machine / PostgreSQL / given processes, and pg_stat_activity, every 0.5 s in a thread."""

    dbname: str
    pids: list[int]
    samples: list[dict[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Sampler:
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()

    def _loop(self) -> None:
        eng = admin()
        hz = os.sysconf("SC_CLK_TCK")
        pg_pids = _postgres_pids()
        last = (_machine_ticks(), _cpu_ticks(pg_pids), _cpu_ticks(self.workers_pids()), time.monotonic())
        while not self._stop.wait(0.5):
            pg_pids = _postgres_pids()
            now = (_machine_ticks(), _cpu_ticks(pg_pids), _cpu_ticks(self.workers_pids()), time.monotonic())
            (tot1, idle1), pg1, w1, t1 = last
            (tot2, idle2), pg2, w2, t2 = now
            dt = t2 - t1
            with eng.connect() as c:
                act = c.execute(text(
                    "SELECT count(*) FILTER (WHERE state = 'active'), "
                    "count(*) FILTER (WHERE wait_event_type = 'Lock'), "
                    "count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'), "
                    "count(*) FILTER (WHERE wait_event_type IN ('IO', 'LWLock') AND state = 'active'), count(*) "
                    "FROM pg_stat_activity WHERE datname = :d"), {"d": self.dbname}).one()
            self.samples.append({
                "machine_busy": 1 - (idle2 - idle1) / max(1, tot2 - tot1),
                "pg_cores": (pg2 - pg1) / hz / dt, "workers_cores": max(0.0, (w2 - w1) / hz / dt),
                "active": act[0], "lock_wait": act[1], "advisory_wait": act[2], "io_wait": act[3], "conns": act[4]})
            last = now
        eng.dispose()

    def workers_pids(self) -> list[int]:
        out = []
        for p in self.pids:
            out.extend(group_pids(p))
        return out

    def summary(self) -> dict[str, float]:
        if not self.samples:
            return {}
        keys = self.samples[0].keys()
        return {k: sum(s[k] for s in self.samples) / len(self.samples) for k in keys}


def counts(engine: Engine) -> dict[str, int]:
    return workers.job_counts(engine)


# ---------------------------------------------------------------- throughput


def wait_workers(engine: Engine, n: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with engine.connect() as c:
            if c.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one() >= n:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{n} workers did not register within {timeout} s")


def throughput(template: str, n: int, n_workers: int, tmp: Path, concurrency: int) -> dict[str, Any]:
    name = f"esc_bf_{n_workers}_{uuid.uuid4().hex[:8]}"
    url = create_db(name, template)
    engine = store.connect(url)
    procs = [Proc(["worker"], worker_env(url, ESCALATE_WORKER_CONCURRENCY=str(concurrency)),
                  tmp / f"w{n_workers}-{i}.log").start() for i in range(n_workers)]
    try:
        wait_workers(engine, n_workers)
        pack = load_pack(PACK_DIR)
        with Sampler(name, [p.pid for p in procs]) as sampler:
            t0 = time.perf_counter()
            rep = workers.backfill(engine, workers.Queue.attach(engine), pack, policy=PACK_DIR, sandbox=True,
                                   since=SINCE, batch_size=500)
            t_enq = time.perf_counter() - t0
            while counts(engine).get("succeeded", 0) + counts(engine).get("failed", 0) < n:
                time.sleep(0.2)
            seconds = time.perf_counter() - t0
        c = counts(engine)
        with Session(engine) as s:
            multi = s.scalar(select(func.count()).select_from(
                select(store.PacketRow.case_id).group_by(store.PacketRow.case_id, store.PacketRow.pack_hash)
                .having(func.count() > 1).subquery()))
            packets = s.scalar(select(func.count()).select_from(store.PacketRow))
        return {"workers": n_workers, "cases": n, "seconds": seconds, "rate": n / seconds, "enqueue_s": t_enq,
                "enqueued": rep.enqueued, "jobs": c, "packets": packets, "duplicated": multi,
                "sampled": sampler.summary()}
    finally:
        for p in procs:
            p.stop()
        engine.dispose()
        drop_db(name)


# ---------------------------------------------------------------- fault test


def wait_healthy(port: int, proc: Proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.proc is not None and proc.proc.poll() is not None:
            raise RuntimeError(f"escalate serve exited: {proc.log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("escalate serve not healthy")


def fault(template: str, n: int, posts: int, tmp: Path) -> dict[str, Any]:
    name = f"esc_bf_fault_{uuid.uuid4().hex[:8]}"
    url = create_db(name, template)
    engine = store.connect(url)
    key = create_user(url)
    port = free_port()
    api = Proc(["serve", "--port", str(port), "--sandbox"], {**worker_env(url), "ESCALATE_QUEUE": "procrastinate"},
               tmp / "api.log").start()
    ws = [Proc(["worker"], worker_env(url), tmp / f"fw{i}.log").start() for i in range(2)]
    tpls, rng = templates(), random.Random(99)
    acked: set[str] = set()
    events: list[str] = []
    try:
        wait_healthy(port, api)
        wait_workers(engine, 2)
        pack = load_pack(PACK_DIR)
        total = n + posts
        stop_posting = threading.Event()

        def poster() -> None:
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                                  headers={"Authorization": f"Bearer {key}"})
            for i in range(posts):
                body = json.dumps(synthetic(tpls, n + i, rng, pack)).encode()
                uid = f"post-{i}"
                while not stop_posting.is_set():  # retry until acknowledged (the API may be down)
                    try:
                        r = client.post("/cases", content=body, headers={"Idempotency-Key": uid})
                        if r.status_code in (200, 201, 202):
                            acked.add(uid)
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.2)
                time.sleep(0.02)
            client.close()

        t = threading.Thread(target=poster, daemon=True)
        t0 = time.perf_counter()
        t.start()
        rep = workers.backfill(engine, workers.Queue.attach(engine), pack, policy=PACK_DIR, sandbox=True,
                               since=SINCE, batch_size=200)
        killed_worker = killed_api = False
        while True:
            done = counts(engine).get("succeeded", 0)
            if not killed_worker and done >= 0.3 * total:
                ws[0].kill9()
                events.append(f"kill -9 worker at {done} done ({time.perf_counter() - t0:.1f} s)")
                ws[0].start()
                killed_worker = True
            if not killed_api and done >= 0.6 * total:
                api.kill9()
                events.append(f"kill -9 API at {done} done ({time.perf_counter() - t0:.1f} s)")
                api.start()
                wait_healthy(port, api)
                events.append(f"API back at {time.perf_counter() - t0:.1f} s")
                killed_api = True
            if not t.is_alive() and done >= total:
                break
            if time.perf_counter() - t0 > 600:
                break
            time.sleep(0.1)
        stop_posting.set()
        t.join(10)
        seconds = time.perf_counter() - t0
        c = counts(engine)
        with Session(engine) as s:
            n_cases = s.scalar(select(func.count()).select_from(store.CaseRow))
            posted = set(s.scalars(select(store.CaseRow.update_id).where(store.CaseRow.update_id.like("post-%"))))
            per = dict(s.execute(select(store.PacketRow.case_id, func.count()).where(
                store.PacketRow.pack_hash == pack.content_hash).group_by(store.PacketRow.case_id)).all())
            case_ids = set(s.scalars(select(store.CaseRow.id)))
            problems = audit.verify(s)
        missing = sorted(case_ids - set(per))
        dup = sorted(k for k, v in per.items() if v > 1)
        ok = (c == {"succeeded": total} and n_cases == total and acked <= posted and len(posted) == posts
              and not missing and not dup and not problems and killed_worker and killed_api)
        return {"ok": ok, "seconds": seconds, "jobs": c, "cases": n_cases, "posted_acked": len(acked),
                "posted_stored": len(posted), "backfill_enqueued": rep.enqueued, "missing_packets": missing[:10],
                "n_missing": len(missing), "duplicated": dup[:10], "audit_problems": problems[:3], "events": events}
    finally:
        api.stop()
        for w in ws:
            w.stop()
        engine.dispose()
        drop_db(name)


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--small", action="store_true", help="500 cases (CI)")
    ap.add_argument("--workers", default="1,2,4", help="worker process counts to compare")
    ap.add_argument("--concurrency", type=int, default=1, help="ESCALATE_WORKER_CONCURRENCY of each worker")
    ap.add_argument("--fault", action="store_true", help="the fault test instead of the throughput runs")
    ap.add_argument("--posts", type=int, default=None, help="--fault: cases POSTed to the API during the run")
    args = ap.parse_args(argv)
    n = 500 if args.small else args.cases
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_backfill_{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    template = f"esc_bf_tpl_{uuid.uuid4().hex[:8]}"
    url = create_db(template)
    print(f"== backfill benchmark: {n} cases, PostgreSQL {make_url(PG).host}, {os.cpu_count()} CPUs "
          "(other processes on this machine may compete)", flush=True)
    try:
        secs = store_cases(url, n)
        print(f"stored {n} case versions in {secs:.1f} s (template database {template})", flush=True)
        if args.fault:
            posts = args.posts if args.posts is not None else max(50, n // 10)
            res = fault(template, n, posts, tmp)
            print(json.dumps(res, indent=1, default=str))
            print(f"fault test: {'PASS' if res['ok'] else 'FAIL'}: {res['jobs']} jobs, {res['cases']} cases, "
                  f"{res['n_missing']} without packet, {len(res['duplicated'])} duplicated, in {res['seconds']:.1f} s")
            return 0 if res["ok"] else 1
        results = []
        for w in [int(x) for x in args.workers.split(",")]:
            r = throughput(template, n, w, tmp, args.concurrency)
            results.append(r)
            s = r["sampled"]
            print(f"{w} worker(s): {r['rate']:7.1f} cases/s ({r['seconds']:.1f} s; enqueue {r['enqueue_s']:.1f} s); "
                  f"jobs {r['jobs']}; packets {r['packets']}, duplicated {r['duplicated']}; machine CPU "
                  f"{100 * s.get('machine_busy', 0):.0f}%, PostgreSQL {s.get('pg_cores', 0):.2f} cores, workers "
                  f"{s.get('workers_cores', 0):.2f} cores; backends active {s.get('active', 0):.1f}, waiting on "
                  f"locks {s.get('lock_wait', 0):.2f} (advisory {s.get('advisory_wait', 0):.2f}), IO/LWLock "
                  f"{s.get('io_wait', 0):.2f}", flush=True)
        base = results[0]["rate"]
        print("scaling vs 1 worker: " + ", ".join(f"{r['workers']}: {r['rate'] / base:.2f}x" for r in results))
        bad = [r for r in results if r["jobs"] != {"succeeded": n} or r["duplicated"]]
        return 1 if bad else 0
    finally:
        drop_db(template)


if __name__ == "__main__":
    sys.exit(main())
