#!/usr/bin/env python3
"""Engine bench: throughput, start-up, and the synthetic large case.

    .venv/bin/python bench/bench_engine.py [--repeat N] [--small] [--json PATH] [--profile]

1. Throughput, one process: the eval cases (`*.case.json` only; gold labels are never read)
   are loaded once, the pack once, then every case is run `--repeat` times per `tone_check`
   mode ("facts", "text", "off"), after one untimed warm-up pass. Reports packets/s, packets
   per CPU-second and p50/p95/max ms per packet. It is one process and one thread, so
   packets/s per core is the same figure as packets/s.
2. Start-up: wall time of `escalate run <case> --policy examples/lumen --format json` as a
   subprocess (median of 5), and, in fresh interpreters (median of 5), the time to import
   `escalation.cli`, to load the pack, to load the case and to produce the first packet.
3. Synthetic large case, generated in memory from one eval case (never written to disk): its
   events plus filler events (customer / agent / internal note in turn, bodies made of the
   eval cases' own sentences, shuffled with a fixed seed) and a log attachment built from the
   eval logs' line shapes (fresh ids, timestamps, hosts, IPs) with a few error lines spread
   through it. Sizes 1x, 2x, 4x of (125 events, 1.25 MB) show whether cost is linear in input
   size; peak memory is measured for the largest. MB here is 10**6 bytes.

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
    # Warm-up: the first packet pays for lazy set-up (compiled patterns, document index).
    t0 = time.perf_counter()
    for case in cases:
        run(case, pack, tone_check="text")
    print(f"warm-up pass (untimed in the figures): {len(cases)} packets in {time.perf_counter() - t0:.2f} s")

    out: dict[str, Any] = {}
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


def time_packet(case: Any, pack: Any, mode: str, repeat: int) -> list[float]:
    from escalation.engine import run
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        run(case, pack, tone_check=mode)
        out.append(time.perf_counter() - t)
    return out


def bench_large(raw_cases: list[dict[str, Any]], base_id: str, pack: Any, sizes: tuple[tuple[int, float], ...],
                repeat: int, mode: str, split: bool, profile: bool) -> dict[str, Any]:
    from escalation.case import parse_case

    base = next((c for c in raw_cases if c["id"] == base_id), None)
    if base is None:
        sys.exit(f"base case {base_id!r} is not among the eval cases")
    corpus = Corpus(raw_cases)
    header(f"3. synthetic large case from {base_id} (tone_check={mode}, mean of {repeat})")
    print(f"corpus: {sum(map(len, corpus.sentences.values()))} sentences "
          f"({', '.join(f'{k} {len(v)}' for k, v in corpus.sentences.items())}), "
          f"{len(corpus.normal_shapes)} log line shapes, {len(corpus.error_shapes)} error shapes")
    out: dict[str, Any] = {"base_case": base_id, "tone_check": mode, "repeat": repeat, "sizes": []}
    unit_events, unit_mb = sizes[0]
    print(f"{'events':>6} {'log MB':>7} {'errors':>6} {'case MB':>7} {'gen s':>6} {'parse s':>7} "
          f"{'ms/packet':>9} {'ms/MB log':>9} {'ms/100 ev':>9} {'x time':>6} {'x size':>6}")
    first_ms = None
    large_case = None
    for n_events, log_mb in sizes:
        g0 = time.perf_counter()
        data, info = synthetic_case(base, corpus, n_events, log_mb)
        g1 = time.perf_counter()
        case = parse_case(data, "synthetic")
        g2 = time.perf_counter()
        times = time_packet(case, pack, mode, repeat)
        ms = statistics.fmean(times) * 1000
        first_ms = first_ms or ms
        row = {**info, "requested_events": n_events, "requested_log_mb": log_mb, "generate_s": g1 - g0,
               "parse_s": g2 - g1, "ms_per_packet": ms, "all_ms": [x * 1000 for x in times],
               "ms_per_mb_log": ms / info["log_mb"], "ms_per_100_events": ms / (info["events"] / 100),
               "time_ratio": ms / first_ms, "size_ratio": log_mb / unit_mb}
        out["sizes"].append(row)
        print(f"{info['events']:>6} {info['log_mb']:>7.2f} {info['error_lines']:>6} {info['case_json_mb']:>7.2f} "
              f"{g1 - g0:>6.2f} {g2 - g1:>7.2f} {ms:>9.1f} {row['ms_per_mb_log']:>9.1f} "
              f"{row['ms_per_100_events']:>9.1f} {row['time_ratio']:>6.2f} {row['size_ratio']:>6.2f}")
        if (n_events, log_mb) == LARGE:
            large_case = case
            out["large"] = row
    rows = out["sizes"]
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        marginal = (b["ms_per_packet"] - a["ms_per_packet"]) / (b["size_ratio"] - a["size_ratio"])
        out["linearity"] = {"time_ratio": b["time_ratio"], "size_ratio": b["size_ratio"],
                            "marginal_ms_per_unit": marginal, "unit": f"{unit_events} events + {unit_mb} MB log",
                            "fixed_ms_estimate": a["ms_per_packet"] - marginal}
        print(f"linearity: {b['size_ratio']:.0f}x the input took {b['time_ratio']:.2f}x the time "
              f"(linear: {b['size_ratio']:.2f}x); marginal cost {marginal:.1f} ms per "
              f"{unit_events} events + {unit_mb} MB log, fixed part ~{a['ms_per_packet'] - marginal:.0f} ms")

    if split:
        n_ev, mb = LARGE
        print("cost split at the large size (one factor at a time):")
        for label, ev, lm in ((f"{n_ev} events, no extra log", n_ev, 0.0),
                              (f"base events, {mb} MB log", 0, mb)):
            data, info = synthetic_case(base, corpus, ev, lm)
            case = parse_case(data, "synthetic")
            ms = statistics.fmean(time_packet(case, pack, mode, repeat)) * 1000
            key = "events_only" if lm == 0 else "log_only"
            out[key] = {**info, "ms_per_packet": ms}
            print(f"  {label:<28} {info['events']:>4} events {info['log_mb']:5.2f} MB log  {ms:9.1f} ms")

    if large_case is not None:
        from escalation.engine import run
        if split:   # the other tone modes, once each, at the large size
            out["large_by_mode_ms"] = {}
            for m in MODES:
                t = time.perf_counter()
                run(large_case, pack, tone_check=m)
                out["large_by_mode_ms"][m] = (time.perf_counter() - t) * 1000
            print("large case by tone_check (one run each): " +
                  ", ".join(f"{m} {v:.0f} ms" for m, v in out["large_by_mode_ms"].items()))
        tracemalloc.start()
        run(large_case, pack, tone_check=mode)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["large_peak_traced_mb"] = peak / 2**20
        out["max_rss_mb"] = maxrss_mb()
        print(f"large case memory: peak traced by one packet {peak / 2**20:.1f} MiB (tracemalloc, beyond the "
              f"parsed case); process max RSS {out['max_rss_mb']:.0f} MiB (whole bench so far)")
        if profile:
            import cProfile
            import pstats
            print("cProfile of one large-case packet, top 15 by cumulative time:")
            prof = cProfile.Profile()
            prof.enable()
            run(large_case, pack, tone_check=mode)
            prof.disable()
            pstats.Stats(prof, stream=sys.stdout).sort_stats("cumulative").print_stats(15)
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
    st = res.get("startup", {})
    if "escalate_run_wall_s" in st:
        lines.append(f"escalate run wall s (median of {st['runs']}): {st['escalate_run_wall_s']:.3f}"
                     f"  [target < {TARGETS['escalate_run_wall_s']:.0f}]")
    for k, label in (("import_cli_s", "import escalation.cli ms"), ("load_pack_s", "load pack ms"),
                     ("load_case_s", "load case ms"), ("first_packet_s", "first packet ms")):
        if k in st:
            lines.append(f"{label}: {st[k] * 1000:.1f}")
    lg = res.get("large", {})
    if "large" in lg:
        r = lg["large"]
        lines.append(f"large case ms/packet ({r['events']} events, {r['log_mb']:.2f} MB log, "
                     f"{lg['tone_check']}, mean of {lg['repeat']}): {r['ms_per_packet']:.1f}"
                     f"  [target < {TARGETS['large_case_s'] * 1000:.0f}]")
    for r in lg.get("sizes", []):
        lines.append(f"size {r['events']} events/{r['log_mb']:.2f} MB: {r['ms_per_packet']:.1f} ms, "
                     f"{r['ms_per_mb_log']:.1f} ms/MB, {r['ms_per_100_events']:.1f} ms/100 events")
    if "linearity" in lg:
        li = lg["linearity"]
        lines.append(f"scaling {li['size_ratio']:.0f}x input -> time x{li['time_ratio']:.2f} (linear = "
                     f"{li['size_ratio']:.2f})")
    if "large_peak_traced_mb" in lg:
        lines.append(f"large case peak traced memory MiB: {lg['large_peak_traced_mb']:.1f}")
        lines.append(f"process max RSS MiB: {lg['max_rss_mb']:.0f}")
    return lines


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--startup-probe":
        startup_probe(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=None, help="runs per eval case per mode (default 5; 1 with --small)")
    ap.add_argument("--small", action="store_true",
                    help="CI mode: repeat 1, sizes (125, 1.25 MB) and (500, 5 MB) only, one large run")
    ap.add_argument("--cases", type=Path, default=EVAL_CASES, help="folder of *.case.json (default: eval cases)")
    ap.add_argument("--pack", type=Path, default=PACK_DIR, help="policy pack (default: examples/lumen)")
    ap.add_argument("--base-case", default=BASE_CASE, help=f"eval case the synthetic case grows from ({BASE_CASE})")
    ap.add_argument("--large-repeat", type=int, default=None, help="runs per synthetic size (default 3; 1 with --small)")
    ap.add_argument("--large-tone-check", choices=MODES, default="facts", help="tone_check for the synthetic case")
    ap.add_argument("--skip", action="append", default=[], choices=("throughput", "startup", "large"),
                    help="skip a section (repeatable)")
    ap.add_argument("--profile", action="store_true", help="cProfile one large-case packet (top 15, cumulative)")
    ap.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.small else 5)
    large_repeat = args.large_repeat or (1 if args.small else 3)
    sizes = SMALL_SIZES if args.small else FULL_SIZES

    from escalation.case import load_case
    from escalation.pack import load_pack

    paths = eval_case_paths(args.cases)
    t0 = time.perf_counter()
    pack = load_pack(args.pack)
    pack_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    cases = [load_case(p) for p in paths]
    load_s = time.perf_counter() - t0
    raw_cases = [json.loads(p.read_text(encoding="utf-8")) for p in paths]

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
        res["large"] = bench_large(raw_cases, args.base_case, pack, sizes, large_repeat,
                                   args.large_tone_check, split=not args.small, profile=args.profile)

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
