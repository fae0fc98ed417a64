#!/usr/bin/env python3
"""Real public tickets through the Jira and Bugzilla importers and the engine: how many import, run and pass.

    .venv/bin/python bench/import_real_tickets.py [--pack DIR] [--shared DIR] [--limit N]

Sources (read from ../shared/data/tickets, never copied into the repository):
  - Mozilla Bugzilla: mozilla_bugzilla_bugbug/bugs.jsonl, 58 bugs with comments and history (Bugzilla REST form).
  - Apache Hadoop Jira: gitbugs_cc_by/hadoop/hadoop_bugs.csv (2,503 issues, description only) and
    hadoop_bugs_with_stacktraces.jsonl (214 issues); each row is wrapped as a Jira API v2 issue.

For each source it prints records read, imported (parse + to_case), packets run, packets passing every check,
failing packets per check key, refusals (InputError) by message, and milliseconds per record for import and
for the engine. Only figures and ticket ids are printed, never names or ticket text. The exit status does
not depend on the figures.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from escalation.connectors import bugzilla, jira
from escalation.connectors.mapping import VendorMapping
from escalation.connectors.ticket import ImportedTicket, to_case
from escalation.engine import run
from escalation.errors import InputError
from escalation.pack import Pack, load_pack

ROOT = Path(__file__).resolve().parent.parent


def jira_time(gitbugs: str) -> str:
    """GitBugs' "15/Sep/21 08:34" (Jira's export format, time zone not stated: taken as UTC) in API form."""
    return datetime.strptime(gitbugs.strip(), "%d/%b/%y %H:%M").strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def hadoop_issue(row: dict[str, str]) -> dict[str, Any]:
    """A GitBugs Hadoop row (CSV columns or the JSON-lines keys) wrapped as a Jira API v2 issue."""
    def col(*names: str) -> str:
        return next((row[n] for n in names if row.get(n)), "")
    issue_id = col("Issue id", "issue_id")
    versions = [v.strip() for v in col("Affects Version/s", "affects_versions").split(",") if v.strip()]
    resolution = col("Resolution", "resolution")
    return {
        "id": issue_id,
        "key": f"HADOOP-{issue_id}",
        "fields": {
            "summary": col("Summary", "summary"),
            "description": col("Description", "description") or None,
            "status": {"name": col("Status", "status")},
            "priority": {"name": col("Priority", "priority")},
            "resolution": {"name": resolution} if resolution else None,
            "versions": [{"name": v} for v in versions],
            "created": jira_time(col("Created", "created")),
            "issuetype": {"name": "Bug"},
        },
    }


@dataclass
class Tally:
    label: str
    read: int = 0
    imported: int = 0
    ran: int = 0
    passing: int = 0
    per_check: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    crashed: list[str] = field(default_factory=list)
    import_ms: list[float] = field(default_factory=list)
    engine_ms: list[float] = field(default_factory=list)
    warnings: Counter[str] = field(default_factory=Counter)
    events: int = 0
    internal_events: int = 0

    def print(self) -> None:
        print(f"\n== {self.label}")
        print(f"records read          {self.read}")
        print(f"imported              {self.imported}  (events {self.events}, internal {self.internal_events})")
        print(f"packets run           {self.ran}")
        print(f"passing every check   {self.passing}" + (f"  ({100 * self.passing / self.ran:.1f}%)" if self.ran
                                                         else ""))
        print(f"failing, per check    {dict(self.per_check.most_common()) or '-'}")
        if self.refused:
            print(f"refused (InputError)  {sum(self.refused.values())}: {dict(self.refused.most_common(5))}")
        if self.crashed:
            print(f"CRASHED               {len(self.crashed)}: {self.crashed[:5]}")
        if self.warnings:
            print(f"mapping warnings      {dict(self.warnings.most_common(5))}")
        for name, ms in (("import", self.import_ms), ("engine", self.engine_ms)):
            if ms:
                q = statistics.quantiles(ms, n=20) if len(ms) > 1 else [ms[0]] * 19
                print(f"{name} ms/record      mean {statistics.fmean(ms):.2f}  p50 {statistics.median(ms):.2f}  "
                      f"p95 {q[18]:.2f}  max {max(ms):.2f}")
        total = sum(self.import_ms) + sum(self.engine_ms)
        if self.read:
            print(f"total ms/record       {total / self.read:.2f}")


def bench(label: str, records: Iterable[tuple[str, Any]], parse: Callable[[Any], ImportedTicket],
          mapping: VendorMapping, pack: Pack) -> Tally:
    tally = Tally(label)
    for rid, record in records:
        tally.read += 1
        t0 = time.perf_counter()
        try:
            case, warnings = to_case(parse(record), mapping, pack)
        except InputError as e:
            tally.refused[str(e).split(":", 1)[-1].strip()[:80]] += 1
            continue
        except Exception as e:  # a defect: count it, name the record, keep going
            tally.crashed.append(f"{rid}: {type(e).__name__}")
            continue
        t1 = time.perf_counter()
        tally.import_ms.append((t1 - t0) * 1000)
        tally.imported += 1
        tally.events += len(case.ticket.events)
        tally.internal_events += sum(1 for e in case.ticket.events if e.visibility == "internal")
        for w in warnings:
            tally.warnings[w.split(":", 1)[0]] += 1
        try:
            packet = run(case, pack)
        except Exception as e:
            tally.crashed.append(f"{rid}: engine {type(e).__name__}")
            continue
        tally.engine_ms.append((time.perf_counter() - t1) * 1000)
        tally.ran += 1
        bad = [c.key for c in packet.checks if not c.passed]
        tally.passing += not bad
        tally.per_check.update(bad)
    return tally


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pack", type=Path, default=ROOT / "src" / "escalation" / "packs" / "lumen")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--limit", type=int, default=None, help="at most N records per source (default: all)")
    args = ap.parse_args(argv)
    tickets = args.shared / "data" / "tickets"
    bugs_path = tickets / "mozilla_bugzilla_bugbug" / "bugs.jsonl"
    csv_path = tickets / "gitbugs_cc_by" / "hadoop" / "hadoop_bugs.csv"
    traces_path = tickets / "gitbugs_cc_by" / "hadoop_bugs_with_stacktraces.jsonl"
    missing = [p for p in (bugs_path, csv_path, traces_path) if not p.is_file()]
    if missing:
        print(f"shared data not found: {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    pack = load_pack(args.pack)
    print(f"pack {pack.name} {pack.version} loaded in {(time.perf_counter() - t0) * 1000:.0f} ms")
    lim = args.limit

    bugs = read_jsonl(bugs_path)[:lim]
    csv.field_size_limit(sys.maxsize)
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:lim]
    traces = read_jsonl(traces_path)[:lim]

    tallies = [
        bench("Bugzilla: mozilla_bugzilla_bugbug/bugs.jsonl", ((str(b.get("id")), b) for b in bugs),
              bugzilla.parse, pack.connectors.bugzilla, pack),
        bench("Jira: gitbugs hadoop/hadoop_bugs.csv (as API v2 issues)",
              ((r.get("Issue id", "?"), hadoop_issue(r)) for r in rows), jira.parse, pack.connectors.jira, pack),
        bench("Jira: gitbugs hadoop_bugs_with_stacktraces.jsonl (as API v2 issues)",
              ((r.get("issue_id", "?"), hadoop_issue(r)) for r in traces), jira.parse, pack.connectors.jira, pack),
    ]
    for t in tallies:
        t.print()
    print("\n== summary")
    for t in tallies:
        print(f"{t.label.split(':')[0]:8} {t.label.split(': ', 1)[1][:40]:40} read {t.read:5} imported {t.imported:5} "
              f"ran {t.ran:5} pass {t.passing:5} crashed {len(t.crashed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
