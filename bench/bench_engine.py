#!/usr/bin/env python3
"""Engine bench: throughput, start-up, and the synthetic large case.

    .venv/bin/python bench/bench_engine.py [--repeat N] [--small] [--json PATH] [--profile]

1. Throughput, one process: the eval cases (`*.case.json` only; gold labels are never read)
   are loaded once, the pack once; after a warm-up on one case, each other case is run once
   ("first sight": new to the process, no cache entries yet), then every case `--repeat` times
   per `tone_check` mode ("facts", "text", "off"; process-wide caches warm, as in a service).
   Reports packets/s, packets per CPU-second and p50/p95/max ms per packet. It is one process
   and one thread, so packets/s per core is the same figure as packets/s.
2. Start-up: wall time of `escalate run <case> --policy examples/lumen --format json` as a
   subprocess (median of 5), and, in fresh interpreters (median of 5), the time to import
   `escalation.cli`, to load the pack, to load the case and to produce the first packet.
3. Synthetic large case, generated in memory from one eval case (never written to disk): its
   events plus filler events (customer / agent / internal note in turn, bodies made of the
   eval cases' own sentences, shuffled with a fixed seed) and a log attachment built from the
   eval logs' line shapes (fresh ids, timestamps, hosts, IPs) with a few error lines spread
   through it. Sizes 1x, 2x, 4x of (125 events, 1.25 MB) show whether cost is linear in input
   size; peak memory is measured for the largest. MB here is 10**6 bytes. Each size runs in a
   worker process with a per-packet timeout, and each repeat is a fresh variant (another seed),
   so no run is sped up by scans cached for an earlier one.

Only figures are printed; nothing about time is asserted and the exit status does not depend
on them. A compact summary block at the end has one line per figure, for CI logs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
if str(SRC) not in sys.path:
    sys.path.insert(0, str(SRC))

# Nothing from `escalation` is imported at module level: the start-up probe times that import.

EVAL_CASES = Path("/work/shared/eval/cases")
PACK_DIR = ROOT / "examples" / "lumen"
MODES = ("facts", "text", "off")
MB = 1_000_000
SEED = 20260301
BASE_CASE = "001-globex-export-sync"
FULL_SIZES = ((125, 1.25), (250, 2.5), (500, 5.0))
SMALL_SIZES = ((125, 1.25), (500, 5.0))
LARGE = (500, 5.0)
ERRORS_PER_MB = 2.4          # "a few" error lines: 12 in the 5 MB log, spread evenly
STARTUP_RUNS = 5

TARGETS = {
    "packets_per_s_per_core": 100.0,     # on eval-sized cases
    "large_case_s": 2.0,                 # 500 events, 5 MB log
    "escalate_run_wall_s": 1.0,          # one case, incl. start-up
}


# ----------------------------------------------------------------------------- helpers

def eval_case_paths(folder: Path) -> list[Path]:
    paths = sorted(p for p in folder.glob("*.case.json") if not p.name.endswith(".gold.json"))
    if not paths:
        sys.exit(f"no *.case.json files in {folder}")
    return paths


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    s = sorted(values)
    return s[max(0, math.ceil(q / 100 * len(s)) - 1)]


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def maxrss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def header(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 76 - len(title)), flush=True)


# ----------------------------------------------------------------------------- 1. throughput

def bench_throughput(cases: list[Any], pack: Any, repeat: int) -> dict[str, Any]:
    from escalation.engine import run

    header(f"1. throughput: {len(cases)} eval cases x {repeat} per mode, one process")
    # Warm-up on one case: the first packet of a process pays for lazy set-up (compiled
    # patterns, document index); the start-up section measures that.
    for mode in MODES:
        run(cases[0], pack, tone_check=mode)
    # First sight: each other case once, new to the process (no per-text cache entries yet),
    # as when a long-running service meets a new case. The repeats below reuse warm caches.
    out: dict[str, Any] = {}
    if len(cases) > 1:
        times = []
        for case in cases[1:]:
            t = time.perf_counter()
            run(case, pack, tone_check="facts")
            times.append(time.perf_counter() - t)
        out["first_sight_facts"] = {"packets": len(times), "packets_per_s": len(times) / sum(times),
                                    "p50_ms": statistics.median(times) * 1000,
                                    "p95_ms": percentile(times, 95) * 1000, "max_ms": max(times) * 1000}
        fs = out["first_sight_facts"]
        print(f"first sight (facts, each case once, new to the process): {fs['packets']} packets, "
              f"{fs['packets_per_s']:.1f} packets/s, p50 {fs['p50_ms']:.1f} / p95 {fs['p95_ms']:.1f} / "
              f"max {fs['max_ms']:.1f} ms")

    print(f"{'mode':<6} {'packets':>7} {'wall s':>7} {'pkt/s':>7} {'pkt/cpu-s':>9} "
          f"{'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}  slowest case")
    for mode in MODES:
        times: list[float] = []
        slowest = ("", 0.0)
        w0, c0 = time.perf_counter(), time.process_time()
        for case in cases:
            for _ in range(repeat):
                t = time.perf_counter()
                run(case, pack, tone_check=mode)
                dt = time.perf_counter() - t
                times.append(dt)
                if dt > slowest[1]:
                    slowest = (case.id, dt)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        r = {
            "packets": len(times),
            "wall_s": wall,
            "cpu_s": cpu,
            "packets_per_s": len(times) / wall,
            "packets_per_s_per_core": len(times) / wall,   # one process, one thread: same figure
            "packets_per_cpu_s": len(times) / cpu if cpu else float("nan"),
            "p50_ms": statistics.median(times) * 1000,
            "p95_ms": percentile(times, 95) * 1000,
            "max_ms": max(times) * 1000,
            "mean_ms": statistics.fmean(times) * 1000,
            "slowest_case": slowest[0],
        }
        out[mode] = r
        print(f"{mode:<6} {r['packets']:>7} {wall:>7.2f} {r['packets_per_s']:>7.1f} {r['packets_per_cpu_s']:>9.1f} "
              f"{r['p50_ms']:>7.1f} {r['p95_ms']:>7.1f} {r['max_ms']:>7.1f}  {slowest[0]}")
    print("packets/s per core = packets/s: one process, one thread (pkt/cpu-s is the same rate per CPU-second)")
    return out


# ----------------------------------------------------------------------------- 2. start-up

def startup_probe(case_path: str, pack_path: str) -> None:
    """Run in a fresh interpreter: time the stages of a cold `escalate run`, print JSON."""
    t0 = time.perf_counter()
    import escalation.cli  # noqa: F401
    t1 = time.perf_counter()
    from escalation.case import load_case
    from escalation.engine import run
    from escalation.pack import load_pack
    pack = load_pack(Path(pack_path))
    t2 = time.perf_counter()
    case = load_case(Path(case_path))
    t3 = time.perf_counter()
    packet = run(case, pack, tone_check="facts")
    t4 = time.perf_counter()
    packet.to_json()
    t5 = time.perf_counter()
    print(json.dumps({"import_cli_s": t1 - t0, "load_pack_s": t2 - t1, "load_case_s": t3 - t2,
                      "first_packet_s": t4 - t3, "to_json_s": t5 - t4}))


def find_escalate() -> str | None:
    for cand in (Path(sys.executable).parent / "escalate", ROOT / ".venv" / "bin" / "escalate"):
        if cand.exists():
            return str(cand)
    return shutil.which("escalate")


def bench_startup(case_path: Path, runs: int) -> dict[str, Any]:
    header(f"2. start-up: one case ({case_path.name}), median of {runs} fresh processes")
    out: dict[str, Any] = {"case": case_path.name, "runs": runs}
    exe = find_escalate()
    if exe is None:
        print("escalate executable not found; skipping the CLI wall time")
    else:
        cmd = [exe, "run", str(case_path), "--policy", str(PACK_DIR), "--format", "json"]
        walls, rcs = [], []
        for _ in range(runs):
            t = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            walls.append(time.perf_counter() - t)
            rcs.append(proc.returncode)
        out["escalate_run_wall_s"] = statistics.median(walls)
        out["escalate_run_wall_all_s"] = walls
        out["escalate_run_exit_codes"] = sorted(set(rcs))
        print(f"$ escalate run {case_path.name} --policy examples/lumen --format json")
        print(f"  wall: median {statistics.median(walls):.3f} s  min {min(walls):.3f}  max {max(walls):.3f}"
              f"  (exit codes {sorted(set(rcs))}; 0 ok, 1 = packet needs review under --strict only)")
        if any(rc not in (0, 1) for rc in rcs):
            print("  note: escalate failed:", proc.stderr.decode(errors="replace").strip()[:300])

    stages: dict[str, list[float]] = {}
    for _ in range(runs):
        proc = subprocess.run([sys.executable, __file__, "--startup-probe", str(case_path), str(PACK_DIR)],
                              cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            print("  start-up probe failed:", proc.stderr.strip()[-300:])
            return out
        for k, v in json.loads(proc.stdout.strip().splitlines()[-1]).items():
            stages.setdefault(k, []).append(v)
    print("  in-process breakdown (fresh interpreter each time, no -X importtime):")
    for k, vs in stages.items():
        out[k] = statistics.median(vs)
        print(f"    {k:<16} {statistics.median(vs) * 1000:8.1f} ms")
    total = sum(out[k] for k in stages)
    print(f"    {'sum':<16} {total * 1000:8.1f} ms  (the rest of the CLI wall is interpreter start-up and exit)")
    out["breakdown_sum_s"] = total
    return out


# ----------------------------------------------------------------------------- 3. synthetic case

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(])")
_LEAD_TS = re.compile(
    r"^\s*(\[?\d{4}-\d{2}-\d{2}[T ][\d:.,]+(?:Z|[+-]\d{2}:?\d{2})?(?:\s+(?!INFO|WARN|DEBUG)[A-Z]{2,4}\b)?\]?"
    r"|\d{2}-\d{2} [\d:.]+\s+\d+\s+\d+)\s*")
_INNER_TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2})?Z")
_IP = re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b")
_HOST = re.compile(r"\b([a-z]+(?:-[a-z]+)*)-\d+((?:\.[a-z0-9-]+)*\.(?:int|internal|local|example|corp))\b")
_HEX = re.compile(r"\b[0-9a-f]*\d[0-9a-f]*[a-f][0-9a-f]*\b|\b[0-9a-f]*[a-f][0-9a-f]*\d[0-9a-f]*\b")
_LONG_NUM = re.compile(r"\d{4,}")
_LEVEL = re.compile(r"^(INFO|WARN|WARNING|DEBUG|ERROR|FATAL|CRITICAL)\b\s*")


def _error_line_re() -> re.Pattern[str]:
    """What the engine counts as an error line; filler lines must not match it."""
    try:
        from escalation.logs import _ERROR_LINE
        return _ERROR_LINE
    except Exception:  # noqa: BLE001 - the engine moved it; a conservative copy will do
        return re.compile(r"\b(ERROR|FATAL|CRITICAL|E AndroidRuntime)\b|Exception\b|\bfailed\b|FAILED|"
                          r"status=5\d\d\b|->\s*5\d\d\b|\b5\d\d (?:Bad Gateway|internal_error)")


class Corpus:
    """Sentences and log-line shapes harvested from the eval cases."""

    def __init__(self, raw_cases: list[dict[str, Any]]) -> None:
        err = _error_line_re()
        self.sentences: dict[str, list[str]] = {"customer": [], "agent": [], "internal": []}
        self.normal_shapes: list[str] = []
        self.error_shapes: list[list[str]] = []     # an error line and its continuation lines
        for case in raw_cases:
            for ev in case["ticket"]["events"]:
                body = (ev.get("body") or "").strip()
                role, vis = ev["author"]["role"], ev["visibility"]
                if not body or role == "system":
                    continue
                pool = ("customer" if role == "customer" else "internal" if vis == "internal" else "agent")
                for s in _SENT_SPLIT.split(body.replace("\n", " ")):
                    s = s.strip()
                    if len(s) >= 20:
                        self.sentences[pool].append(s)
            for att in case["attachments"]:
                if att["kind"] != "log":
                    continue
                current: list[str] | None = None
                for line in att["text"].splitlines():
                    if not line.strip() or line.lstrip().startswith("#"):
                        current = None
                        continue
                    if line[:1].isspace():                   # stack frame / continuation
                        if current is not None:
                            current.append(line)
                        continue
                    shape = _LEAD_TS.sub("", line).strip()
                    if len(shape) < 12:                      # "..." and other elisions
                        current = None
                        continue
                    if err.search(line):
                        current = [shape]
                        self.error_shapes.append(current)
                    else:
                        current = None
                        self.normal_shapes.append(shape)
        self.err = err
        for pool in self.sentences.values():
            pool.sort()
        self.normal_shapes.sort()
        self.error_shapes.sort()

    # -- events

    def events(self, n: int, start: datetime, end: datetime, names: dict[str, str],
               rng: random.Random) -> list[dict[str, Any]]:
        pools = {k: v[:] for k, v in self.sentences.items()}
        for v in pools.values():
            rng.shuffle(v)
        cursor = {k: 0 for k in pools}
        kinds = (("customer", "customer", "public"), ("agent", "agent", "public"), ("internal", "agent", "internal"))
        step = (end - start) / (n + 1)
        out = []
        for i in range(n):
            pool, role, vis = kinds[i % 3]
            k = rng.randint(1, 4)
            sents = []
            for _ in range(k):
                sents.append(pools[pool][cursor[pool] % len(pools[pool])])
                cursor[pool] += 1
            author = names["customer"] if role == "customer" else (names["agent"] if rng.random() < 0.7
                                                                   else names["engineer"])
            out.append({
                "id": f"syn{i + 1}",
                "at": (start + step * (i + 1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "author": {"name": author, "role": role if pool != "internal" or author == names["agent"]
                           else "engineer"},
                "visibility": vis,
                "body": " ".join(sents),
            })
        return out

    # -- log

    def _vary(self, shape: str, ts: datetime, rng: random.Random) -> str:
        s = _INNER_TS.sub(lambda m: (ts - timedelta(minutes=rng.randint(1, 90))).strftime("%Y-%m-%dT%H:%M:%SZ"),
                          shape)
        s = _IP.sub(lambda m: f"10.{rng.randint(1, 99)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}", s)
        s = _HOST.sub(lambda m: f"{m.group(1)}-{rng.randint(1, 48)}{m.group(2)}", s)
        s = _HEX.sub(lambda m: "".join(rng.choice("0123456789abcdef") for _ in m.group(0)), s)
        s = _LONG_NUM.sub(lambda m: str(rng.randint(10 ** (len(m.group(0)) - 1), 10 ** len(m.group(0)) - 1)), s)
        return s

    def log(self, target_bytes: int, start: datetime, rng: random.Random) -> tuple[str, int]:
        n_errors = max(3, round(ERRORS_PER_MB * target_bytes / MB))
        error_at = {round((j + 1) * target_bytes / (n_errors + 1)) for j in range(n_errors)}
        next_errors = sorted(error_at)
        lines: list[str] = []
        size = 0
        ts = start
        placed = 0
        while size < target_bytes:
            ts += timedelta(milliseconds=rng.randint(5, 2500))
            stamp = ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z "
            if next_errors and size >= next_errors[0]:
                next_errors.pop(0)
                shape = rng.choice(self.error_shapes)
                block = [stamp + self._vary(shape[0], ts, rng)] + [self._vary(c, ts, rng) for c in shape[1:]]
                placed += 1
            else:
                while True:
                    line = stamp + self._vary(rng.choice(self.normal_shapes), ts, rng)
                    if not self.err.search(line):
                        break
                block = [line]
            for line in block:
                lines.append(line)
                size += len(line) + 1
        return "\n".join(lines) + "\n", placed


def synthetic_case(base: dict[str, Any], corpus: Corpus, n_events: int, log_mb: float,
                   seed: int = SEED) -> tuple[dict[str, Any], dict[str, Any]]:
    """The base case with `n_events` events in all and a `log_mb` MB log attachment added."""
    rng = random.Random(f"{seed}:{n_events}:{log_mb}")
    data = json.loads(json.dumps(base))
    t = data["ticket"]
    orig = t["events"]
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    start = parse(t["created_at"])
    end = max([parse(e["at"]) for e in orig] + [start + timedelta(hours=1)])
    names = {"customer": t["requester"]["name"],
             "agent": (t.get("assignee") or {}).get("name") or "Support Agent",
             "engineer": next((e["author"]["name"] for e in orig if e["author"]["role"] == "engineer"),
                              "On-call Engineer")}
    filler = corpus.events(max(0, n_events - len(orig)), start, end, names, rng)
    events = sorted(orig + filler, key=lambda e: parse(e["at"]))
    t["events"] = events
    info: dict[str, Any] = {"events": len(events), "log_mb": 0.0, "error_lines": 0}
    if log_mb > 0:
        text, placed = corpus.log(int(log_mb * MB), start - timedelta(days=1), rng)
        data["attachments"] = list(data["attachments"]) + [
            {"id": "synthetic-log", "kind": "log", "name": "export-worker-full.log", "text": text}]
        info.update(log_mb=len(text.encode()) / MB, log_lines=text.count("\n"), error_lines=placed)
    info["case_json_mb"] = len(json.dumps(data).encode()) / MB
    return data, info


# Each synthetic size runs in its own worker process, so that a packet slower than --timeout
# can be stopped (and its peak memory still read) without hanging the bench.

def synthetic_worker(params: dict[str, Any]) -> None:
    """Worker: build one synthetic case, time `repeat` packets, report JSON lines on stdout."""
    import signal

    from escalation.case import parse_case
    from escalation.engine import run
    from escalation.pack import load_pack

    def emit(**kw: Any) -> None:
        print(json.dumps(kw), flush=True)

    paths = eval_case_paths(Path(params["cases"]))
    raw_cases = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    base = next(c for c in raw_cases if c["id"] == params["base_case"])
    pack = load_pack(Path(params["pack"]))
    run(parse_case(base, "base"), pack, tone_check=params["mode"])          # warm-up (lazy set-up)
    corpus = Corpus(raw_cases)

    def fresh(i: int) -> tuple[Any, dict[str, Any]]:
        """Variant i: same size and shape, another seed, so no run reuses another's cached scans."""
        g0 = time.perf_counter()
        data, info = synthetic_case(base, corpus, params["events"], params["log_mb"], seed=SEED + i)
        g1 = time.perf_counter()
        case = parse_case(data, "synthetic")
        return case, {**info, "generate_s": g1 - g0, "parse_s": time.perf_counter() - g1}

    case, info = fresh(0)
    emit(event="ready", **info)
    for i in range(params["repeat"]):
        if i:
            case, _ = fresh(i)
            emit(event="next")
        t = time.perf_counter()
        run(case, pack, tone_check=params["mode"])
        emit(event="run", s=time.perf_counter() - t)
    if params.get("trace"):
        case, _ = fresh(params["repeat"])
        tracemalloc.start()
        run(case, pack, tone_check=params["mode"])
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        emit(event="trace", peak_mib=peak / 2**20)
    if params.get("profile"):
        import cProfile
        import io
        import pstats

        class _Stop(Exception):
            pass

        def _alarm(signum: int, frame: Any) -> None:
            raise _Stop

        case, _ = fresh(params["repeat"] + 1)
        limit = float(params.get("profile_seconds") or 0)
        if limit > 0:
            signal.signal(signal.SIGALRM, _alarm)
            signal.setitimer(signal.ITIMER_REAL, limit)
        prof = cProfile.Profile()
        complete = True
        prof.enable()
        try:
            run(case, pack, tone_check=params["mode"])
        except _Stop:
            complete = False
        finally:
            prof.disable()
            signal.setitimer(signal.ITIMER_REAL, 0)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(15)
        emit(event="profile", complete=complete, limit_s=limit, text=buf.getvalue())
    emit(event="done", maxrss_mib=maxrss_mb())


def _vm_hwm_mib(pid: int) -> float | None:
    """Peak RSS of a live process (Linux), read before stopping it."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def run_worker(params: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run one synthetic size in a worker; each packet gets `timeout` seconds."""
    import selectors

    proc = subprocess.Popen([sys.executable, __file__, "--synthetic-worker", json.dumps(params)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    res: dict[str, Any] = {"runs_s": [], "timed_out": False}
    waiting_for = "ready"
    slack = 300.0                                   # generating and parsing one variant
    budget = {"ready": slack, "next": slack, "run": timeout, "trace": 3 * timeout + slack,
              "profile": float(params.get("profile_seconds") or timeout) + slack, "done": 60.0}

    def after(ev: str) -> str:
        pending = len(res["runs_s"]) < params["repeat"]
        if ev in ("ready", "next") and pending:
            return "run"
        if ev == "run" and pending:
            return "next"
        if params.get("trace") and "peak_traced_mib" not in res:
            return "trace"
        if params.get("profile") and "profile" not in res:
            return "profile"
        return "done"

    deadline = time.monotonic() + budget[waiting_for]
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                res["timed_out"] = True
                res["timed_out_in"] = waiting_for
                res["vm_hwm_mib"] = _vm_hwm_mib(proc.pid)
                proc.kill()
                break
            line = proc.stdout.readline()
            if not line:
                break
            msg = json.loads(line)
            ev = msg.pop("event")
            if ev == "ready":
                res.update(msg)
            elif ev == "run":
                res["runs_s"].append(msg["s"])
            elif ev == "trace":
                res["peak_traced_mib"] = msg["peak_mib"]
            elif ev == "profile":
                res["profile"] = msg
            elif ev == "done":
                res["maxrss_mib"] = msg["maxrss_mib"]
                break
            waiting_for = after(ev)
            deadline = time.monotonic() + budget[waiting_for]
    finally:
        proc.wait()
        err = proc.stderr.read() if proc.stderr else ""
        if proc.returncode not in (0, -9) and err:
            res["error"] = err.strip()[-500:]
    return res


def bench_large(args: argparse.Namespace, sizes: tuple[tuple[int, float], ...], repeat: int, split: bool
                ) -> dict[str, Any]:
    mode, timeout = args.large_tone_check, args.timeout
    header(f"3. synthetic large case from {args.base_case} (tone_check={mode}, mean of {repeat}, "
           f"timeout {timeout:.0f} s per packet)")
    base_params = {"cases": str(args.cases), "pack": str(args.pack), "base_case": args.base_case, "mode": mode}
    out: dict[str, Any] = {"base_case": args.base_case, "tone_check": mode, "repeat": repeat,
                           "timeout_s": timeout, "sizes": []}
    unit_events, unit_mb = sizes[0]
    print(f"{'events':>6} {'log MB':>7} {'errors':>6} {'case MB':>7} {'gen s':>6} "
          f"{'ms/packet':>10} {'ms/MB log':>9} {'ms/100 ev':>9} {'x time':>7} {'x size':>6}  memory")
    first_ms: float | None = None
    first_row: dict[str, Any] = {}
    stop_larger = False

    def show(r: dict[str, Any]) -> None:
        ms = r.get("ms_per_packet")
        shown = f"{ms:10.1f}" if ms is not None else f"{'>' + format(timeout * 1000, '.0f'):>10}"
        gt = "" if ms is not None else ">"
        ratio = "-" if r is not first_row and first_row.get("ms_per_packet") is None else (
            gt + format(r["time_ratio"], ".2f"))
        mem = (f"peak traced {r['peak_traced_mib']:.0f} MiB, RSS {r['maxrss_mib']:.0f} MiB"
               if "peak_traced_mib" in r else
               f"RSS {r['vm_hwm_mib']:.0f} MiB at timeout" if r.get("vm_hwm_mib") else "")
        print(f"{r.get('events', r['requested_events']):>6} {r.get('log_mb', r['requested_log_mb']):>7.2f} "
              f"{r.get('error_lines', 0):>6} {r.get('case_json_mb', 0):>7.2f} {r.get('generate_s', 0):>6.2f} "
              f"{shown} {gt + format(r['ms_per_mb_log'], '.1f') if r.get('ms_per_mb_log') else '-':>9} "
              f"{gt + format(r['ms_per_100_events'], '.1f'):>9} {ratio:>7} "
              f"{r['size_ratio']:>6.2f}  {mem}", flush=True)

    for n_events, log_mb in sizes:
        row: dict[str, Any] = {"requested_events": n_events, "requested_log_mb": log_mb,
                               "size_ratio": log_mb / unit_mb}
        is_large = (n_events, log_mb) == LARGE
        if stop_larger and not is_large:    # the large size, the headline figure, is always tried
            row["skipped"] = "a smaller size timed out"
            out["sizes"].append(row)
            print(f"{n_events:>6} {log_mb:>7.2f}  skipped: a smaller size already exceeded the timeout")
            continue
        params = {**base_params, "events": n_events, "log_mb": log_mb, "repeat": repeat, "trace": is_large}
        w = run_worker(params, timeout)
        row.update({k: v for k, v in w.items() if k != "profile"})
        runs = w["runs_s"]
        if runs and not w["timed_out"]:
            ms = statistics.fmean(runs) * 1000
        else:
            ms = None
            stop_larger = True
        eff = ms if ms is not None else timeout * 1000   # a lower bound when timed out
        first_ms = first_ms or eff
        row.update(ms_per_packet=ms, lower_bound_ms=None if ms is not None else eff,
                   all_ms=[x * 1000 for x in runs], time_ratio=eff / first_ms,
                   ms_per_mb_log=eff / w["log_mb"] if w.get("log_mb") else None,
                   ms_per_100_events=eff / (w.get("events", n_events) / 100))
        out["sizes"].append(row)
        first_row = first_row or row
        show(row)
        if "error" in w:
            print("   worker error:", w["error"])
        if is_large:
            out["large"] = row
    done = [r for r in out["sizes"] if r.get("ms_per_packet") is not None]
    if len(done) >= 2:
        a, b = done[0], done[-1]
        marginal = (b["ms_per_packet"] - a["ms_per_packet"]) / (b["size_ratio"] - a["size_ratio"])
        out["linearity"] = {"time_ratio": b["time_ratio"], "size_ratio": b["size_ratio"],
                            "marginal_ms_per_unit": marginal, "unit": f"{unit_events} events + {unit_mb} MB log"}
        print(f"linearity: {b['size_ratio']:.0f}x the input took {b['time_ratio']:.2f}x the time "
              f"(linear: {b['size_ratio']:.2f}x); marginal cost {marginal:.1f} ms per "
              f"{unit_events} events + {unit_mb} MB log")
    timed = [r for r in out["sizes"] if r.get("lower_bound_ms") is not None]
    if done and timed:
        a, b = done[0], timed[0]
        out["linearity"] = {"time_ratio_at_least": b["time_ratio"], "size_ratio": b["size_ratio"],
                            "timed_out": True}
        print(f"linearity: {b['size_ratio']:.0f}x the input took more than {b['time_ratio']:.1f}x the time "
              f"(linear: {b['size_ratio']:.2f}x); it exceeded the {timeout:.0f} s timeout")

    if split:
        n_ev, mb = LARGE
        print("cost split at the large size (one factor at a time):")
        for key, label, ev, lm in (("events_only", f"{n_ev} events, no extra log", n_ev, 0.0),
                                   ("log_only", f"base events, {mb} MB log", 0, mb)):
            w = run_worker({**base_params, "events": ev, "log_mb": lm, "repeat": repeat}, timeout)
            ms = statistics.fmean(w["runs_s"]) * 1000 if w["runs_s"] and not w["timed_out"] else None
            out[key] = {**w, "ms_per_packet": ms}
            shown = f"{ms:9.1f} ms" if ms is not None else f"> {timeout * 1000:.0f} ms (timeout)"
            print(f"  {label:<28} {w.get('events', '?'):>4} events {w.get('log_mb', 0):5.2f} MB log  {shown}",
                  flush=True)

    if args.profile:
        n_ev, mb = LARGE
        limit = args.profile_seconds or timeout
        w = run_worker({**base_params, "events": n_ev, "log_mb": mb, "repeat": 0, "profile": True,
                        "profile_seconds": limit}, timeout)
        if "profile" not in w:
            print("profile: the worker did not finish", w.get("error", ""))
            return out
        p = out["profile"] = w["profile"]
        state = "complete" if p["complete"] else f"stopped after {p['limit_s']:.0f} s (partial)"
        print(f"cProfile of one large-case packet ({state}), top 15 by cumulative time:")
        print(p["text"].rstrip())
    return out


# ----------------------------------------------------------------------------- main

def summary(res: dict[str, Any]) -> list[str]:
    lines = []
    tp = res.get("throughput", {})
    for mode in MODES:
        if mode in tp:
            r = tp[mode]
            lines.append(f"packets/s ({mode}): {r['packets_per_s']:.1f}")
    for mode in MODES:
        if mode in tp:
            r = tp[mode]
            lines.append(f"packets/s per core ({mode}, one process): {r['packets_per_s_per_core']:.1f}"
                         + (f"  [target >= {TARGETS['packets_per_s_per_core']:.0f}]" if mode == "facts" else ""))
    for mode in MODES:
        if mode in tp:
            r = tp[mode]
            lines.append(f"ms/packet p50/p95/max ({mode}): {r['p50_ms']:.1f} / {r['p95_ms']:.1f} / {r['max_ms']:.1f}")
    if "first_sight_facts" in tp:
        r = tp["first_sight_facts"]
        lines.append(f"packets/s (facts, first sight of each case): {r['packets_per_s']:.1f}")
    st = res.get("startup", {})
    if "escalate_run_wall_s" in st:
        lines.append(f"escalate run wall s (median of {st['runs']}): {st['escalate_run_wall_s']:.3f}"
                     f"  [target < {TARGETS['escalate_run_wall_s']:.0f}]")
    for k, label in (("import_cli_s", "import escalation.cli ms"), ("load_pack_s", "load pack ms"),
                     ("load_case_s", "load case ms"), ("first_packet_s", "first packet ms")):
        if k in st:
            lines.append(f"{label}: {st[k] * 1000:.1f}")
    lg = res.get("large", {})

    def ms_txt(r: dict[str, Any]) -> str:
        return (f"{r['ms_per_packet']:.1f} ms" if r.get("ms_per_packet") is not None
                else f"> {lg['timeout_s'] * 1000:.0f} ms (timeout)")

    if "large" in lg:
        r = lg["large"]
        runs = f"mean of {len(r['all_ms'])}" if r.get("ms_per_packet") is not None else "first run"
        lines.append(f"large case ms/packet ({r.get('events', LARGE[0])} events, "
                     f"{r.get('log_mb', LARGE[1]):.2f} MB log, {lg['tone_check']}, {runs}): {ms_txt(r)}"
                     f"  [target < {TARGETS['large_case_s'] * 1000:.0f} ms]")
    for r in lg.get("sizes", []):
        label = f"size {r.get('events', r['requested_events'])} events/{r.get('log_mb', r['requested_log_mb']):.2f} MB"
        if r.get("skipped"):
            lines.append(f"{label}: skipped ({r['skipped']})")
            continue
        gt = "" if r.get("ms_per_packet") is not None else "> "
        per_mb = f"{gt}{r['ms_per_mb_log']:.1f} ms/MB, " if r.get("ms_per_mb_log") else ""
        lines.append(f"{label}: {ms_txt(r)}, {per_mb}{gt}{r['ms_per_100_events']:.1f} ms/100 events")
    li = lg.get("linearity")
    if li and li.get("timed_out"):
        lines.append(f"scaling {li['size_ratio']:.0f}x input -> time x > {li['time_ratio_at_least']:.1f} "
                     f"(linear = {li['size_ratio']:.2f}; timed out)")
    elif li:
        lines.append(f"scaling {li['size_ratio']:.0f}x input -> time x{li['time_ratio']:.2f} (linear = "
                     f"{li['size_ratio']:.2f})")
    for key, label in (("events_only", f"{LARGE[0]} events only"), ("log_only", f"{LARGE[1]} MB log only")):
        if key in lg:
            lines.append(f"cost split, {label}: {ms_txt(lg[key])}")
    r = lg.get("large", {})
    if "peak_traced_mib" in r:
        lines.append(f"large case peak traced memory MiB (one packet): {r['peak_traced_mib']:.1f}")
    if "maxrss_mib" in r:
        lines.append(f"large case worker max RSS MiB: {r['maxrss_mib']:.0f}")
    elif r.get("vm_hwm_mib"):
        lines.append(f"large case worker max RSS MiB (at timeout): {r['vm_hwm_mib']:.0f}")
    return lines


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--startup-probe":
        startup_probe(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) == 3 and sys.argv[1] == "--synthetic-worker":
        synthetic_worker(json.loads(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=None, help="runs per eval case per mode (default 5; 1 with --small)")
    ap.add_argument("--small", action="store_true",
                    help="CI mode: repeat 1, sizes (125, 1.25 MB) and (500, 5 MB) only, one large run")
    ap.add_argument("--cases", type=Path, default=EVAL_CASES, help="folder of *.case.json (default: eval cases)")
    ap.add_argument("--pack", type=Path, default=PACK_DIR, help="policy pack (default: examples/lumen)")
    ap.add_argument("--base-case", default=BASE_CASE, help=f"eval case the synthetic case grows from ({BASE_CASE})")
    ap.add_argument("--large-repeat", type=int, default=None,
                    help="runs per synthetic size (default 3; 1 with --small)")
    ap.add_argument("--large-tone-check", choices=MODES, default="facts", help="tone_check for the synthetic case")
    ap.add_argument("--skip", action="append", default=[], choices=("throughput", "startup", "large"),
                    help="skip a section (repeatable)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds one synthetic packet may take before it is stopped and reported as '> T' "
                         "(default 60; 10 with --small, 5x the 2 s target)")
    ap.add_argument("--profile", action="store_true",
                    help="cProfile one large-case packet (top 15 by cumulative time)")
    ap.add_argument("--profile-seconds", type=float, default=0,
                    help="stop the profiled packet after this many seconds and show the partial profile "
                         "(default: --timeout)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.small else 5)
    large_repeat = args.large_repeat or (1 if args.small else 3)
    sizes = SMALL_SIZES if args.small else FULL_SIZES
    args.timeout = args.timeout or (10.0 if args.small else 60.0)

    from escalation.case import load_case
    from escalation.pack import load_pack

    paths = eval_case_paths(args.cases)
    t0 = time.perf_counter()
    pack = load_pack(args.pack)
    pack_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cases = [load_case(p) for p in paths]
    load_s = time.perf_counter() - t0

    res: dict[str, Any] = {
        "python": sys.version.split()[0], "platform": sys.platform, "cpus": os.cpu_count(),
        "small": args.small, "repeat": repeat, "cases": len(cases), "pack": str(args.pack),
        "started": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_pack_warm_s": pack_s, "load_cases_ms_per_case": load_s / len(cases) * 1000,
    }
    print(f"engine bench: python {res['python']}, {res['cpus']} CPUs, {len(cases)} eval cases, "
          f"pack {args.pack}, repeat {repeat}{' (--small)' if args.small else ''}")
    print(f"pack loaded once in {pack_s * 1000:.0f} ms; cases loaded in {load_s / len(cases) * 1000:.1f} ms each")

    if "throughput" not in args.skip:
        res["throughput"] = bench_throughput(cases, pack, repeat)
    if "startup" not in args.skip:
        base_path = next((p for p in paths if p.name.startswith(args.base_case)), paths[0])
        res["startup"] = bench_startup(base_path, STARTUP_RUNS)
    if "large" not in args.skip:
        res["large"] = bench_large(args, sizes, large_repeat, split=not args.small)

    header("summary")
    lines = summary(res)
    for line in lines:
        print(line)
    res["summary"] = lines
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        print(f"(figures written to {args.json})")


if __name__ == "__main__":
    main()
