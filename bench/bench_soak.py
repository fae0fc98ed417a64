#!/usr/bin/env python3
"""Soak: steady webhook ingestion through `escalate serve` (with the queue) and `escalate worker`s on loopback.

Starts the API with ESCALATE_QUEUE=procrastinate and --workers worker processes on a fresh
PostgreSQL database, then sends Zendesk webhook deliveries (bench_service.Workload: new updates
of a set of tickets) at --rate per second for --seconds. Afterwards it waits for the queue to
drain and reports, from stored timestamps:

- end-to-end latency, webhook received (cases.received_at, stamped by the API) -> packet stored
  (packets.created_at, stamped by the worker) for the updates that escalated, and -> job done
  (procrastinate's 'succeeded' event) for every update; p50 / p95 / max;
- the HTTP acknowledgement time (202) seen by the client;
- VmRSS of the API and of each worker at the start (after warm-up) and at the end.

    .venv/bin/python bench/bench_soak.py                  # 300 s at 5 webhooks/s, 2 workers
    .venv/bin/python bench/bench_soak.py --small          # 20 s (CI)
    .venv/bin/python bench/bench_soak.py --rate 10 --workers 4

Exit status 1 when a delivery was not acknowledged, a job failed or a case has two packets.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from bench_backfill import (  # noqa: E402
    PACK_DIR,
    Proc,
    create_db,
    create_user,
    drop_db,
    free_port,
    wait_healthy,
    wait_workers,
    worker_env,
)
from bench_service import Workload  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from escalation import store, workers  # noqa: E402
from escalation.pack import load_pack  # noqa: E402


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def fmt(values: list[float]) -> str:
    return (f"p50 {1000 * pct(values, 50):.0f} ms, p95 {1000 * pct(values, 95):.0f} ms, "
            f"max {1000 * max(values, default=float('nan')):.0f} ms (n={len(values)})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--rate", type=float, default=5.0, help="webhook deliveries per second")
    ap.add_argument("--workers", type=int, default=2, help="worker processes")
    ap.add_argument("--small", action="store_true", help="20 s (CI)")
    args = ap.parse_args(argv)
    seconds = 20.0 if args.small else args.seconds
    total = int(seconds * args.rate)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench_soak_{os.getpid()}"
    tmp.mkdir(parents=True, exist_ok=True)
    name = f"esc_soak_{uuid.uuid4().hex[:8]}"
    url = create_db(name)
    engine = store.connect(url)
    store.migrate(engine)
    workers.ensure_schema(engine)
    key = create_user(url)
    port = free_port()
    env = worker_env(url)
    api = Proc(["serve", "--port", str(port), "--sandbox"], {**env, "ESCALATE_QUEUE": "procrastinate"},
               tmp / "api.log").start()
    ws = [Proc(["worker"], env, tmp / f"w{i}.log").start() for i in range(args.workers)]
    print(f"== soak: {seconds:.0f} s at {args.rate}/s ({total} webhooks), API + {args.workers} worker(s), "
          f"PostgreSQL, {os.cpu_count()} CPUs (other processes on this machine may compete)", flush=True)
    acks: list[float] = []
    failures: list[str] = []
    try:
        wait_healthy(port, api)
        wait_workers(engine, args.workers)
        workload = Workload(total + 20, uuid.uuid4().hex[:6], 11)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
        for i in range(10):  # warm-up (not counted): imports, first engine runs, connection pools
            _, body = workload.delivery(total + i)
            client.post("/webhooks/zendesk", content=body)
        deadline = time.monotonic() + 60
        while workers.job_counts(engine).get("todo", 0) + workers.job_counts(engine).get("doing", 0):
            if time.monotonic() > deadline:
                break
            time.sleep(0.2)
        rss_start = {"api": api.rss_mb(), **{f"worker{i}": w.rss_mb() for i, w in enumerate(ws)}}
        with Session(engine) as s:
            first_case = (s.scalar(select(func.max(store.CaseRow.id))) or 0) + 1
        lock = threading.Lock()

        def send(n: int) -> None:
            _, body = workload.delivery(n)
            t0 = time.perf_counter()
            try:
                r = client.post("/webhooks/zendesk", content=body)
                ok = r.status_code in (200, 201, 202)
            except httpx.HTTPError as e:
                ok, r = False, None  # type: ignore[assignment]
                failures.append(str(e))
            with lock:
                if ok:
                    acks.append(time.perf_counter() - t0)
                elif r is not None:
                    failures.append(f"{r.status_code} {r.text[:200]}")

        start = time.monotonic()
        threads: list[threading.Thread] = []
        for n in range(total):  # open loop: one thread per delivery at its scheduled time
            at = start + n / args.rate
            time.sleep(max(0.0, at - time.monotonic()))
            t = threading.Thread(target=send, args=(n,), daemon=True)
            t.start()
            threads.append(t)
            threads = [x for x in threads if x.is_alive()]
        for t in threads:
            t.join(60)
        sent_for = time.monotonic() - start
        deadline = time.monotonic() + 120
        while True:
            c = workers.job_counts(engine)
            if not c.get("todo") and not c.get("doing") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        rss_end = {"api": api.rss_mb(), **{f"worker{i}": w.rss_mb() for i, w in enumerate(ws)}}
        client.close()
        with engine.connect() as conn:
            pkt = [float(x) for (x,) in conn.execute(text(
                "SELECT EXTRACT(EPOCH FROM p.created_at - c.received_at) FROM packets p "
                "JOIN cases c ON c.id = p.case_id WHERE c.id >= :f"), {"f": first_case})]
            job = [float(x) for (x,) in conn.execute(text(
                "SELECT EXTRACT(EPOCH FROM e.at - c.received_at) FROM cases c "
                "JOIN procrastinate_jobs j ON j.lock = :prefix || c.id || ':' || :hash "
                "JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'succeeded' WHERE c.id >= :f"),
                {"f": first_case, "prefix": workers.JOB_PREFIX,
                                               "hash": load_pack(PACK_DIR).content_hash})]
            dup = conn.execute(text("SELECT count(*) FROM (SELECT case_id FROM packets GROUP BY case_id, pack_hash "
                                    "HAVING count(*) > 1) d")).scalar()
        c = workers.job_counts(engine)
        print(f"sent {total} in {sent_for:.1f} s ({total / sent_for:.1f}/s); acknowledged {len(acks)}; "
              f"failures {len(failures)}{' e.g. ' + failures[0] if failures else ''}")
        print(f"HTTP acknowledgement (202):          {fmt(acks)}")
        print(f"received -> packet stored (escalated): {fmt(pkt)}")
        print(f"received -> job done (every update):   {fmt(job)}")
        print(f"jobs {c}; cases with two packets for one pack: {dup}")
        print("RSS MiB at start -> end: " + ", ".join(f"{k} {rss_start[k]:.0f} -> {rss_end[k]:.0f}"
                                                       for k in rss_start))
        bad = failures or len(acks) != total or c.get("failed") or dup or c.get("todo") or c.get("doing")
        return 1 if bad else 0
    finally:
        api.stop()
        for w in ws:
            w.stop()
        engine.dispose()
        drop_db(name)


if __name__ == "__main__":
    sys.exit(main())
