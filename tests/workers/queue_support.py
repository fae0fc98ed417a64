"""Helpers of the queue tests (tests/workers): synthetic cases, worker subprocesses, waiting.

PostgreSQL only (the queue lives in it): skipped with the reason when the server at
ESCALATE_TEST_PG_URL cannot be reached, a failure instead when ESCALATE_REQUIRE_PG is set.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from escalation import store
from escalation.case import parse_case
from escalation.engine import run
from escalation.pack import load_pack

ROOT = Path(__file__).resolve().parents[2]
BUNDLED = ROOT / "src" / "escalation" / "packs" / "lumen"
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def triggering_templates() -> list[dict[str, Any]]:
    """Demo and eval cases (as JSON) whose packet under the bundled pack has a trigger: each makes one packet."""
    pack = load_pack(BUNDLED)
    paths = sorted((ROOT / "src" / "escalation" / "demo").glob("*.case.json"))
    eval_dir = ROOT.parent / "shared" / "eval" / "cases"
    if eval_dir.is_dir():
        paths += sorted(eval_dir.glob("*.case.json"))
    out = []
    for p in paths:
        body = json.loads(p.read_text(encoding="utf-8"))
        if run(parse_case(body, where=str(p)), pack).triggers:
            out.append(body)
    return out


def synthetic(i: int) -> dict[str, Any]:
    """The i-th synthetic case: a triggering template with its own case and ticket id."""
    templates = triggering_templates()
    body = copy.deepcopy(templates[i % len(templates)])
    body["id"] = f"{body['id']}-w{i}"
    body["ticket"]["id"] = f"{body['ticket']['id']}-w{i}"
    return body


def store_cases(engine: Engine, n: int, *, start: int = 0, received: datetime = EPOCH,
                step: timedelta = timedelta(minutes=1)) -> list[int]:
    """Store n synthetic case versions (received one `step` apart); their case row ids."""
    ids = []
    with Session(engine) as s, s.begin():
        for i in range(start, start + n):
            body = synthetic(i)
            row, _ = store.ingest_case(s, source="api", ticket_id=body["ticket"]["id"], update_id=f"w{i}",
                                       body=body, account_id=body["account"]["id"],
                                       received_at=received + step * (i - start))
            ids.append(row.id)
    return ids


def packets_per_case(engine: Engine, pack_hash: str | None = None) -> dict[int, int]:
    with Session(engine) as s:
        q = select(store.PacketRow.case_id, func.count()).group_by(store.PacketRow.case_id)
        if pack_hash:
            q = q.where(store.PacketRow.pack_hash == pack_hash)
        return {int(c): int(n) for c, n in s.execute(q)}


def wait_until(pred: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def escalate_exe() -> list[str]:
    exe = Path(sys.executable).parent / "escalate"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "escalation.cli"]


class WorkerProc:
    """`escalate worker` in its own process group (so kill -9 reaches only it)."""

    def __init__(self, url: str, log: Path, **env: str) -> None:
        self.url, self.log, self.env = url, log, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProc:
        env = {**os.environ, "ESCALATE_DATABASE_URL": self.url, "ESCALATE_SANDBOX": "1",
               "ESCALATE_WORKER_HEARTBEAT": "0.5", "ESCALATE_WORKER_STALLED_AFTER": "2",
               "ESCALATE_RECONCILE_INTERVAL": "0", **self.env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen([*escalate_exe(), "worker"], stdout=out, stderr=subprocess.STDOUT,
                                         env=env, cwd=ROOT, start_new_session=True)
        return self

    def kill9(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
