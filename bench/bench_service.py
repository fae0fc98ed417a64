#!/usr/bin/env python3
"""Load and fault benchmark of the governed service (`escalate serve`) on loopback.

Starts `escalate serve --sandbox` as a subprocess on a free port over a fresh SQLite file or
PostgreSQL database, creates an integration user with `escalate user add`, and sends Zendesk
webhook deliveries at a steady rate from a bounded pool of async httpx clients. Each delivery
is a new update of one of a set of synthetic tickets (made from the Zendesk test fixtures and
the demo cases' customer messages), about 10% are exact repeats of an already acknowledged
delivery. Afterwards it checks the database directly and runs `escalate audit verify`.

    .venv/bin/python bench/bench_service.py                       # SQLite, 20 req/s for 60 s
    .venv/bin/python bench/bench_service.py --db postgres         # PostgreSQL on localhost:5432
    .venv/bin/python bench/bench_service.py --kill                # kill -9 the server at ~40%, restart
    .venv/bin/python bench/bench_service.py --rate 60 --seconds 20
    .venv/bin/python bench/bench_service.py --small               # CI: 8 s at 10 req/s, < 30 s

`--kill`: at ~40% of the run the server's process group gets SIGKILL and a new server is
started on the same port while the load goes on; a request that fails (connection error or
5xx) is retried with the same update id until acknowledged (bounded by --retry-for seconds).

Exit status 1 when an acknowledged update is missing from the database, a row is duplicated,
a consistency check fails or the audit chain is broken; slow figures never fail it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import func, select  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from escalation import store  # noqa: E402

FIXTURES = ROOT / "tests" / "connectors" / "fixtures" / "zendesk"
DEMO = ROOT / "src" / "escalation" / "demo"
SOURCE = "zendesk"
TICKET_BASE = 700000


# ---------------------------------------------------------------- workload


class Workload:
    """Distinct Zendesk ticket updates made from the fixture ticket; `delivery(n)` is the n-th new one."""

    def __init__(self, total: int, tag: str, seed: int) -> None:
        self.tag = tag
        self.rng = random.Random(seed)
        self.ticket = json.loads((FIXTURES / "ticket_48213.json").read_text())["ticket"]
        self.comments = json.loads((FIXTURES / "comments_48213.json").read_text())["comments"]
        self.users = json.loads((FIXTURES / "users_48213.json").read_text())
        self.org = json.loads((FIXTURES / "organization_6001.json").read_text())
        self.texts = self._customer_texts()
        # about 4 updates per ticket over the run, so tickets get several versions but
        # concurrent requests rarely queue on one ticket's lock
        self.n_tickets = max(1, total // 4)

    def _customer_texts(self) -> list[str]:
        out: list[str] = []
        for p in sorted(DEMO.glob("*.case.json")):
            case = json.loads(p.read_text())
            for ev in case["ticket"].get("events", []):
                public = ev.get("visibility") == "public" and ev.get("body")
                if ev.get("author", {}).get("role") == "customer" and public:
                    out.extend(para.strip() for para in ev["body"].split("\n\n") if len(para.strip()) > 40)
        out.extend(c["body"].split("\n\n")[1] for c in self.comments if c["author_id"] in (9001, 9002)
                   and c.get("public") and "\n\n" in c["body"])
        return out or ["Any news on this? The exports are still stuck."]

    def delivery(self, n: int) -> tuple[str, bytes]:
        """(update id, request body) of the n-th new delivery: ticket n % n_tickets, a new comment."""
        t_index, version = n % self.n_tickets, n // self.n_tickets
        tid = TICKET_BASE + t_index
        update_id = f"bench-{self.tag}-{tid}-{version}"
        ticket = dict(self.ticket)
        ticket["id"] = tid
        ticket["url"] = f"https://lumen-example.zendesk.com/api/v2/tickets/{tid}.json"
        ticket["priority"] = self.rng.choice(("normal", "high", "high", "urgent"))
        minute = 40 + version  # the fixture's last comment is at 16:30
        at = f"2026-10-13T{16 + minute // 60:02d}:{minute % 60:02d}:00Z"
        ticket["updated_at"] = at
        author = self.rng.choice((9001, 9002))
        text = self.rng.choice(self.texts)
        comment = {
            "id": 10_000_000 + n, "type": "Comment", "author_id": author, "public": True,
            "body": f"{text}\n\n(update {version} of ticket {tid}, ref {self.rng.getrandbits(48):012x})",
            "attachments": [], "via": {"channel": "email"}, "created_at": at,
        }
        body = {"ticket": ticket, "comments": {"comments": [*self.comments, comment]}, "users": self.users,
                "organization": self.org, "update_id": update_id}
        return update_id, json.dumps(body).encode()


# ---------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def escalate_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "escalate"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "escalation.cli"]


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """kill -9 a process started with start_new_session=True and everything it forked, then reap it."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def stop_group(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    """SIGTERM the process group, kill -9 it if it does not stop in time."""
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
    except ProcessLookupError:
        pass


class Server:
    """`escalate serve` in its own process group, restartable on the same port."""

    def __init__(self, url: str, port: int, log: Path, workers: int = 1) -> None:
        self.url, self.port, self.log, self.workers = url, port, log, workers
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 60.0) -> float:
        """Start and wait for /healthz; returns the seconds it took."""
        t0 = time.monotonic()
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"--- start {self.starts}\n".encode())
            self.proc = subprocess.Popen(
                [*escalate_cmd(), "serve", "--database", self.url, "--sandbox", "--port", str(self.port),
                 *(["--workers", str(self.workers)] if self.workers > 1 else [])],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT)
        health = f"http://127.0.0.1:{self.port}/healthz"
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"escalate serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(health, timeout=1.0).status_code == 200:
                    return time.monotonic() - t0
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"escalate serve not healthy after {timeout:.0f} s:\n{self.tail()}")

    def kill(self) -> None:
        """kill -9 the whole process group (uvicorn and any worker) and reap it."""
        assert self.proc is not None
        kill_group(self.proc)

    def stop(self) -> None:
        stop_group(self.proc)

    def tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""


def create_user(url: str) -> str:
    r = subprocess.run([*escalate_cmd(), "user", "add", "bench-integration", "--role", "integration",
                        "--database", url], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0 or not r.stdout.strip():
        raise RuntimeError(f"escalate user add failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout.strip().splitlines()[-1]


class Database:
    """A fresh SQLite file or PostgreSQL database, removed afterwards."""

    def __init__(self, kind: str, pg_server: str, tmp: Path) -> None:
        self.kind = kind
        self.pg_server = pg_server
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp / 'bench.db'}"
            self.name = None
        else:
            self.name = f"esc_bench_{os.getpid()}"
            self.url = f"postgresql+psycopg://{pg_server}/{self.name}"

    def _admin(self) -> Any:
        import psycopg

        host, _, rest = self.pg_server.rpartition("@")
        user = host or "postgres"
        hostport = rest or "localhost:5432"
        h, _, p = hostport.partition(":")
        return psycopg.connect(host=h, port=int(p or 5432), user=user, dbname="postgres", autocommit=True)

    def create(self) -> None:
        if self.kind == "postgres":
            with self._admin() as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.name}"')
                c.execute(f'CREATE DATABASE "{self.name}"')

    def drop(self) -> None:
        if self.kind == "postgres":
            with self._admin() as c:
                c.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


# ---------------------------------------------------------------- load


@dataclass
class Result:
    update_id: str
    retry_of_original: bool  # an intentional exact repeat of an acknowledged delivery
    scheduled: float
    sent: float = 0.0
    done: float = 0.0
    status: int | None = None
    body: dict[str, Any] | None = None
    error: str | None = None
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Run:
    results: list[Result] = field(default_factory=list)
    acked: dict[str, Result] = field(default_factory=dict)  # update id -> first 2xx of a new delivery
    bodies: dict[str, bytes] = field(default_factory=dict)
    t0: float = 0.0
    kill_at: float | None = None
    outage: float | None = None
    restart_error: str | None = None


async def send(client: httpx.AsyncClient, sem: asyncio.Semaphore, run: Run, res: Result, body: bytes,
               retry: bool, retry_for: float) -> None:
    async with sem:
        loop = asyncio.get_running_loop()
        res.sent = loop.time()
        backoff = 0.1
        while True:
            res.attempts += 1
            try:
                r = await client.post("/webhooks/zendesk", content=body)
                res.status = r.status_code
                res.error = None if r.is_success else r.text[:200]
                if r.is_success:
                    res.body = r.json()
            except (httpx.HTTPError, OSError) as e:
                res.status, res.error = None, f"{type(e).__name__}: {e}"[:200]
            retriable = res.status is None or res.status >= 500
            if res.ok or not retry or not retriable or loop.time() - res.sent + backoff > retry_for:
                break
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
        res.done = loop.time()
        if res.ok and not res.retry_of_original:
            run.acked.setdefault(res.update_id, res)


async def load(base_url: str, key: str, workload: Workload, total: int, rate: float, concurrency: int,
               retry_share: float, seed: int, server: Server | None, kill_fraction: float, retry_for: float,
               run: Run) -> None:
    rng = random.Random(seed + 1)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60.0) as client:
        sem = asyncio.Semaphore(concurrency)
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        killer: asyncio.Future[None] | None = None
        run.t0 = t0 = loop.time()
        n_new = 0
        kill_index = int(total * kill_fraction) if server is not None else -1
        for i in range(total):
            target = t0 + i / rate
            delay = target - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == kill_index:
                killer = loop.run_in_executor(None, kill_and_restart, server, run, loop)
            if run.acked and rng.random() < retry_share:
                uid = rng.choice(sorted(run.acked))
                res, body = Result(uid, True, target), run.bodies[uid]
            else:
                uid, body = workload.delivery(n_new)
                n_new += 1
                run.bodies[uid] = body
                res = Result(uid, False, target)
            run.results.append(res)
            tasks.append(asyncio.create_task(send(client, sem, run, res, body, server is not None, retry_for)))
        await asyncio.gather(*tasks)
        if killer is not None:
            await killer


def kill_and_restart(server: Server | None, run: Run, loop: asyncio.AbstractEventLoop) -> None:
    assert server is not None
    t_kill = time.monotonic()
    run.kill_at = loop.time() - run.t0
    server.kill()
    try:
        server.start()
        run.outage = time.monotonic() - t_kill
    except RuntimeError as e:
        run.restart_error = str(e)


# ---------------------------------------------------------------- verification


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


def verify(url: str, run: Run, tag: str, kill: bool) -> dict[str, Any]:
    """Check the database against what the clients were told."""
    from escalation.store import AuditRow, CaseRow, EscalationRow, PacketRow

    engine = store.connect(url)
    problems: list[str] = []
    try:
        with Session(engine) as s:
            rows = s.execute(select(CaseRow.id, CaseRow.ticket_id, CaseRow.update_id, CaseRow.version)
                             .where(CaseRow.source == SOURCE, CaseRow.update_id.like(f"bench-{tag}-%"))).all()
            by_update: dict[str, list[int]] = {}
            for r in rows:
                by_update.setdefault(r.update_id, []).append(r.id)
            dup_keys = sum(len(v) - 1 for v in by_update.values() if len(v) > 1)
            dup_versions = sum(c - 1 for c in Counter((r.ticket_id, r.version) for r in rows).values() if c > 1)
            n_cases_all = s.scalar(select(func.count()).select_from(CaseRow)) or 0
            pkt = s.execute(select(PacketRow.id, PacketRow.case_id, PacketRow.escalation_id)).all()
            packets_per_case = Counter(p.case_id for p in pkt)
            dup_packets = sum(c - 1 for c in packets_per_case.values() if c > 1)
            packet_by_id = {p.id: p for p in pkt}
            escs = s.execute(select(EscalationRow.id, EscalationRow.source, EscalationRow.ticket_id,
                                    EscalationRow.current_packet_id)).all()
            dup_escs = sum(c - 1 for c in Counter((e.source, e.ticket_id) for e in escs).values() if c > 1)
            audit_counts = dict(s.execute(select(AuditRow.action, func.count()).group_by(AuditRow.action)).all())
    finally:
        engine.dispose()

    acked = run.acked
    lost = sorted(u for u in acked if u not in by_update)
    orphans = sorted(u for u in by_update if u not in acked)  # stored, but no client was told
    wrong_row = [u for u, r in acked.items() if u in by_update and r.body and r.body["case_row"] not in by_update[u]]
    if lost:
        problems.append(f"{len(lost)} acknowledged update(s) missing from the database, e.g. {lost[:3]}")
    if dup_keys or dup_versions:
        problems.append(f"duplicated case rows: {dup_keys} on (source, ticket, update), {dup_versions} on version")
    if orphans and not kill:
        problems.append(f"{len(orphans)} stored update(s) were never acknowledged, e.g. {orphans[:3]}")
    if len(by_update) != len(acked) and not kill:
        problems.append(f"case rows {len(by_update)} != acknowledged distinct update ids {len(acked)}")
    if wrong_row:
        problems.append(f"{len(wrong_row)} acknowledgement(s) name another case_row than the stored one")
    if dup_packets:
        problems.append(f"{dup_packets} extra packet(s): a case version has more than one packet")
    if dup_escs:
        problems.append(f"{dup_escs} duplicated escalation(s) for one ticket")
    # an acknowledgement that says 'escalated' names a packet of that escalation, and it exists
    bad_pkt = [u for u, r in acked.items() if r.body and r.body["escalated"] and (
        r.body["packet_id"] not in packet_by_id
        or packet_by_id[r.body["packet_id"]].escalation_id != r.body["escalation_id"])]
    if bad_pkt:
        problems.append(f"{len(bad_pkt)} escalated acknowledgement(s) name a missing or foreign packet")
    no_pkt = [e.id for e in escs if e.current_packet_id not in packet_by_id]
    if no_pkt:
        problems.append(f"{len(no_pkt)} escalation(s) without a current packet")
    # every ingest and packet run is audited in the same transaction as the row it records
    if audit_counts.get("case.ingest", 0) != n_cases_all:
        problems.append(f"audit case.ingest entries {audit_counts.get('case.ingest', 0)} != case rows {n_cases_all}")
    if audit_counts.get("packet.run", 0) != len(pkt):
        problems.append(f"audit packet.run entries {audit_counts.get('packet.run', 0)} != packets {len(pkt)}")
    # intentional repeats: 200, duplicate, same case_row as the original acknowledgement
    repeats = [x for x in run.results if x.retry_of_original and x.ok]
    bad_repeats = [x for x in repeats if x.status != 200 or not x.body or not x.body["duplicate"]
                   or x.body["case_row"] != acked[x.update_id].body["case_row"]]  # type: ignore[index]
    if bad_repeats:
        b = bad_repeats[0]
        problems.append(f"{len(bad_repeats)} repeat(s) not answered as 200 duplicate of the original, "
                        f"e.g. {b.update_id}: {b.status} {b.body}")
    escalated = sum(1 for c in packets_per_case.values() if c >= 1)
    return {"case_rows": len(rows), "acked": len(acked), "lost": len(lost), "orphans": len(orphans),
            "duplicated": dup_keys + dup_versions + dup_packets + dup_escs, "packets": len(pkt),
            "escalated_cases": escalated, "escalations": len(escs), "repeats_ok": len(repeats) - len(bad_repeats),
            "problems": problems}


def audit_verify(url: str) -> tuple[bool, str]:
    r = subprocess.run([*escalate_cmd(), "audit", "verify", "--database", url], capture_output=True, text=True,
                       cwd=ROOT)
    return r.returncode == 0, (r.stdout + r.stderr).strip()


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--rate", type=float, default=None, help="requests per second (default 20; 10 with --small)")
    ap.add_argument("--seconds", type=float, default=None, help="length of the load (default 60; 8 with --small)")
    ap.add_argument("--small", action="store_true", help="CI run: 8 s at 10 req/s")
    ap.add_argument("--kill", action="store_true", help="kill -9 the server at ~40%% of the run and restart it")
    ap.add_argument("--kill-at", type=float, default=0.4, help="fraction of the run at which to kill (default 0.4)")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    ap.add_argument("--concurrency", type=int, default=32, help="client pool size (default 32)")
    ap.add_argument("--repeat-share", type=float, default=0.10, help="share of exact repeats (default 0.10)")
    ap.add_argument("--retry-for", type=float, default=60.0,
                    help="--kill: retry a failed request for up to this many seconds (default 60)")
    ap.add_argument("--pg", default="postgres@localhost:5432", help="PostgreSQL USER@HOST:PORT (trust auth)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    args = ap.parse_args(argv)
    rate = args.rate or (10.0 if args.small else 20.0)
    seconds = args.seconds or (8.0 if args.small else 60.0)
    total = max(1, round(rate * seconds))
    tag = f"{os.getpid()}{int(time.time()) % 100000}"

    tmp = Path(tempfile.mkdtemp(prefix="esc-bench-"))
    db = Database(args.db, args.pg, tmp)
    server: Server | None = None
    run = Run()
    try:
        db.create()
        t_setup = time.monotonic()
        key = create_user(db.url)
        server = Server(db.url, free_port(), tmp / "server.log", args.workers)
        startup = server.start()
        base = f"http://127.0.0.1:{server.port}"
        # warm-up: the first request pays for lazy imports and the engine's first packet
        wl = Workload(total, tag, args.seed)
        warm_uid, warm_body = Workload(4, tag + "w", args.seed).delivery(0)
        r = httpx.post(f"{base}/webhooks/zendesk", content=warm_body, timeout=60,
                       headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        if r.status_code != 201:
            raise RuntimeError(f"warm-up delivery: {r.status_code} {r.text[:300]}")
        killing = f", kill -9 at ~{args.kill_at:.0%}" if args.kill else ""
        print(f"bench_service: {args.db}, {rate:g} req/s for {seconds:g} s ({total} requests, "
              f"{args.concurrency} clients, {args.workers} server worker(s)){killing}; "
              f"server up in {startup:.1f} s (setup {time.monotonic() - t_setup:.1f} s)", flush=True)

        asyncio.run(load(base, key, wl, total, rate, args.concurrency, args.repeat_share, args.seed,
                         server if args.kill else None, args.kill_at, args.retry_for, run))
        server.stop()
        if run.restart_error:
            print(f"restart failed: {run.restart_error}", file=sys.stderr)

        figures = report(args, rate, seconds, run, verify(db.url, run, tag, args.kill), audit_verify(db.url))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if figures["pass"] else 1
    except Exception as e:  # noqa: BLE001 - a bench reports and exits
        print(f"bench_service: {type(e).__name__}: {e}", file=sys.stderr)
        if server is not None:
            print(server.tail(), file=sys.stderr)
        return 2
    finally:
        if server is not None:
            server.stop()
        try:
            db.drop()
        except Exception as e:  # noqa: BLE001
            print(f"bench_service: could not drop {db.name}: {e}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)


def report(args: argparse.Namespace, rate: float, seconds: float, run: Run, check: dict[str, Any],
           audit: tuple[bool, str]) -> dict[str, Any]:
    res = run.results
    ok = [r for r in res if r.ok]
    errors = [r for r in res if not r.ok]
    repeats = [r for r in res if r.retry_of_original]
    lat = [(r.done - r.sent) * 1000 for r in ok]
    e2e = [(r.done - r.scheduled) * 1000 for r in ok]  # includes waiting for a free client
    last = max((r.done for r in res), default=run.t0)
    achieved = len(ok) / (last - run.t0) if last > run.t0 else 0.0
    retried = [r for r in res if r.attempts > 1]
    figures = {
        "db": args.db, "rate": rate, "seconds": seconds, "requests": len(res), "ok": len(ok),
        "dup_retries": sum(1 for r in repeats if r.ok and r.body and r.body["duplicate"]),
        "errors": len(errors), "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "p99_ms": pct(lat, 99),
        "max_ms": max(lat, default=float("nan")), "e2e_p95_ms": pct(e2e, 95), "achieved_rps": achieved,
        "lost": check["lost"], "duplicated": check["duplicated"], "audit_intact": audit[0],
        "created": sum(1 for r in ok if r.status == 201), "case_rows": check["case_rows"],
        "packets": check["packets"], "escalations": check["escalations"],
        "kill": args.kill, "kill_at_s": run.kill_at, "outage_s": run.outage,
        "retried_requests": len(retried), "retry_attempts": sum(r.attempts - 1 for r in retried),
        "acked_after_retry_as_duplicate": sum(1 for r in retried if r.ok and r.body and r.body["duplicate"]
                                              and not r.retry_of_original),
        "orphans": check["orphans"], "problems": check["problems"],
    }
    figures["pass"] = (not check["problems"] and audit[0] and not run.restart_error)

    cols = ["db", "rate", "secs", "reqs", "ok", "dup-retries", "errors", "p50 ms", "p95 ms", "p99 ms",
            "req/s", "lost", "duplicated", "audit"]
    vals = [args.db, f"{rate:g}", f"{seconds:g}", str(len(res)), str(len(ok)), str(figures["dup_retries"]),
            str(len(errors)), f"{figures['p50_ms']:.0f}", f"{figures['p95_ms']:.0f}", f"{figures['p99_ms']:.0f}",
            f"{achieved:.1f}", str(check["lost"]), str(check["duplicated"]),
            "intact" if audit[0] else "BROKEN"]
    widths = [max(len(c), len(v)) for c, v in zip(cols, vals, strict=True)]
    print()
    print("  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True)))
    print("  ".join(v.rjust(w) for v, w in zip(vals, widths, strict=True)))
    print()
    print(f"latency max {figures['max_ms']:.0f} ms; incl. waiting for a free client: "
          f"p95 {figures['e2e_p95_ms']:.0f} ms; "
          f"{figures['created']} created (201), case rows {check['case_rows']}, packets {check['packets']}, "
          f"escalations {check['escalations']}")
    if errors:
        kinds = Counter((r.status, (r.error or "")[:80]) for r in errors)
        for (status, err), n in kinds.most_common(3):
            print(f"  error x{n}: {status} {err}")
    if args.kill:
        outage = f"{run.outage:.2f} s" if run.outage is not None else "restart FAILED"
        print(f"kill -9 at {run.kill_at or 0:.1f} s; outage (kill -> healthy) {outage}; "
              f"{len(retried)} request(s) retried ({figures['retry_attempts']} extra attempts), "
              f"{figures['acked_after_retry_as_duplicate']} acknowledged as duplicate after retry "
              f"(committed before the kill, answer lost); {check['orphans']} stored but never acknowledged")
    if not audit[0]:
        print(f"audit verify: {audit[1]}")
    for p in check["problems"]:
        print(f"FAIL: {p}")
    print("PASS" if figures["pass"] else "FAIL")
    return figures


if __name__ == "__main__":
    sys.exit(main())
