"""Real public tickets through the importers and the engine: no crash, and every failure says why.

Reads ../shared at test time only (Mozilla Bugzilla bugs from bugbug's fixtures, Apache
Hadoop Jira issues from GitBugs); nothing from them is copied into the repository, and
no name from them is printed. Skipped when ../shared is absent.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from escalation.connectors import bugzilla, jira
from escalation.connectors.ticket import to_case
from escalation.engine import run
from escalation.pack import Pack
from escalation.packet import Packet

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared"
TICKETS = SHARED / "data" / "tickets"
BUGS = TICKETS / "mozilla_bugzilla_bugbug" / "bugs.jsonl"
HADOOP_CSV = TICKETS / "gitbugs_cc_by" / "hadoop" / "hadoop_bugs.csv"
HADOOP_TRACES = TICKETS / "gitbugs_cc_by" / "hadoop_bugs_with_stacktraces.jsonl"
SAMPLE_ROWS = 200

sys.path.insert(0, str(ROOT / "bench"))
from import_real_tickets import hadoop_issue  # noqa: E402 - the wrapping is the benchmark's, shared, not copied

_FRAME = re.compile(r"^\s*at [\w$.<>/]+\([\w$.]*(?::\d+)?\)\s*$")


def need(path: Path) -> Path:
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder is not next to the repository)")
    return path


def read_hadoop_csv(limit: int | None = None) -> list[dict[str, str]]:
    csv.field_size_limit(sys.maxsize)
    with need(HADOOP_CSV).open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return rows[:limit] if limit is not None else rows


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in need(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def failures(packet: Packet) -> list[tuple[str, list[str]]]:
    return [(c.key, c.details) for c in packet.checks if not c.passed]


def report(label: str, packets: list[Packet]) -> Counter[str]:
    per_check: Counter[str] = Counter(k for p in packets for k, _ in failures(p))
    passing = sum(1 for p in packets if not failures(p))
    print(f"\n{label}: {len(packets)} packets, {passing} pass every check; failures per check: {dict(per_check)}")
    return per_check


def test_every_real_bugzilla_bug_imports_and_runs(lumen: Pack) -> None:
    bugs = read_jsonl(BUGS)
    assert len(bugs) == 58
    mapping = lumen.connectors.bugzilla
    packets = []
    for bug in bugs:
        t = bugzilla.parse(bug)
        assert t.events[0]["id"] == "description" and t.events[0]["author"]["role"] == "customer"
        assert sum(1 for e in t.events if not e.get("changes")) == len(bug["comments"])
        assert all(e["visibility"] == "internal" for e in t.events if e.get("changes"))
        case, _ = to_case(t, mapping, lumen)
        packet = run(case, lumen)
        for key, details in failures(packet):
            assert details, f"bug {bug['id']}: check {key} failed without saying why"
        packets.append(packet)
    assert len(packets) == 58
    report("bugzilla (bugbug, 58 bugs)", packets)


def test_a_sample_of_real_hadoop_jira_issues_imports_and_runs(lumen: Pack) -> None:
    records = [hadoop_issue(r) for r in read_hadoop_csv(SAMPLE_ROWS)] + \
        [hadoop_issue(r) for r in read_jsonl(HADOOP_TRACES)]
    assert len(records) == SAMPLE_ROWS + 214
    mapping = lumen.connectors.jira
    packets = []
    for issue in records:
        t = jira.parse(issue)
        case, _ = to_case(t, mapping, lumen)
        packet = run(case, lumen)
        for key, details in failures(packet):
            assert details, f"{issue['key']}: check {key} failed without saying why"
        packets.append(packet)
    report(f"jira (Hadoop, first {SAMPLE_ROWS} rows + 214 with stack traces)", packets)


def test_stack_traces_in_real_descriptions_survive_the_wiki_conversion() -> None:
    """Every Java frame line of a description is in the case text as written: logs are evidence."""
    traces = read_jsonl(HADOOP_TRACES)
    checked = 0
    for row in traces:
        raw = (row.get("description") or "").replace("\r\n", "\n")
        frames = [line.strip() for line in raw.split("\n") if _FRAME.match(line)]
        body_lines = {line.strip() for line in jira.rich_text(raw).split("\n")}
        missing = [f for f in frames if f not in body_lines]
        assert not missing, f"HADOOP-{row['issue_id']}: {len(missing)} frame lines changed, e.g. {missing[0]!r}"
        checked += len(frames)
    assert checked > 1000
