#!/usr/bin/env python3
"""Replay benchmark: N synthetic stored cases under the Lumen pack and a changed copy of it.

The cases are generated in a temporary folder from the eval cases (never committed): ids,
timestamps (shifted by whole weeks, so business-hour clocks keep their shape), accounts and
workspace names varied with a fixed seed. The changed pack drops the VIP uplift rule (§2.5), a
change that leaves extraction untouched, so facts are extracted once and assessed twice.
Prints cases/s and the wall time for 1 and 2 worker processes. Target: 10,000 cases < 60 s.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from escalation.pack import load_pack  # noqa: E402
from escalation.replay import replay  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval" / "cases"
DEMO = ROOT / "src" / "escalation" / "demo"


def _shift(value: str, weeks: int) -> str:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00")) + timedelta(weeks=weeks)
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def synthesise(out: Path, n: int, seed: int = 7) -> None:
    """n case files varied from the eval (or demo) cases."""
    sources = sorted(EVAL.glob("*.case.json")) or sorted(DEMO.glob("*.case.json"))
    bases = [json.loads(p.read_text(encoding="utf-8")) for p in sources]
    with (ROOT / "examples" / "lumen" / "context" / "accounts.csv").open() as f:
        accounts = list(csv.DictReader(f))
    rng = random.Random(seed)
    for i in range(n):
        c = json.loads(json.dumps(bases[i % len(bases)]))
        weeks = rng.randint(-40, 40)
        acc = rng.choice(accounts)
        c["id"] = f"replay-{i:05d}"
        c["as_of"] = _shift(c["as_of"], weeks)
        t = c["ticket"]
        t["id"] = str(900000 + i)
        t["created_at"] = _shift(t["created_at"], weeks)
        for ev in t["events"]:
            ev["at"] = _shift(ev["at"], weeks)
        for r in c["related_tickets"]:
            r["created_at"] = _shift(r["created_at"], weeks)
            if r["account_id"] == c["account"]["id"]:
                r["account_id"] = acc["account_id"]
        if c.get("incident") and c["incident"].get("next_update_due"):
            c["incident"]["next_update_due"] = _shift(c["incident"]["next_update_due"], weeks)
        c["account"] = {"id": acc["account_id"], "name": acc["name"], "tier": acc["tier"],
                        "owner": {"name": acc["csm_name"], "email": acc["csm_email"], "role": "csm"},
                        "timezone": acc["timezone"]}
        (out / f"{c['id']}.case.json").write_text(json.dumps(c), encoding="utf-8")


def changed_pack(dst: Path) -> Path:
    shutil.copytree((ROOT / "examples" / "lumen").resolve(), dst)
    sev = dst / "severity.yaml"
    text = sev.read_text()
    start = text.index("  - id: sev2-vip-uplift")
    end = text.index("  - id: sev3-core-workaround")
    sev.write_text(text[:start] + text[end:])
    skill = dst / "skill.yaml"
    skill.write_text(skill.read_text().replace('version: "3.2.0"', 'version: "3.3.0-no-vip-uplift"'))
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--small", action="store_true", help="1,000 cases (CI)")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    args = ap.parse_args()
    n = 1_000 if args.small else args.cases
    old = load_pack(ROOT / "examples" / "lumen")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "cases"
        folder.mkdir()
        t0 = time.perf_counter()
        synthesise(folder, n)
        gen = time.perf_counter() - t0
        new = load_pack(changed_pack(Path(tmp) / "pack"))
        paths = sorted(folder.glob("*.case.json"))
        print(f"generated {n} cases in {gen:.1f} s; replay {old.version} -> {new.version}")
        lines = []
        for w in args.workers:
            r = replay(paths, old, new, workers=w)
            rate = r.cases / r.seconds if r.seconds else 0.0
            lines.append(f"replay {r.cases} cases, {w} worker(s): {r.seconds:.1f} s, {rate:.0f} cases/s; "
                         f"{len(r.changed)} changed (severity down {r.severity_down}, up {r.severity_up}, "
                         f"triggers {r.triggers_changed}); facts shared: {r.facts_shared}")
            print(lines[-1], flush=True)
        if n < 10_000:
            best = max(r.cases / r.seconds for r in [replay(paths[:200], old, new)])
            print(f"projected 10,000 cases at the 1-worker rate: {10_000 / best:.0f} s")
    print("== summary")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
