"""Fixtures for the queue tests: a fresh PostgreSQL database each, worker subprocesses.

PostgreSQL only (the queue lives in it): skipped with the reason when the server at
ESCALATE_TEST_PG_URL cannot be reached, a failure instead when ESCALATE_REQUIRE_PG is set.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from queue_support import WorkerProc
from sqlalchemy import Engine

from escalation import store
from pg import fresh_pg_database, give_conftest_back


def pytest_configure(config: pytest.Config) -> None:
    give_conftest_back(config)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped afterwards."""
    with fresh_pg_database("esc_wtest") as url:
        yield url


@pytest.fixture
def engine(pg_url: str) -> Iterator[Engine]:
    eng = store.connect(pg_url)
    store.migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def workers_started(pg_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProc]]:
    """Start `escalate worker` subprocesses on the test database; all are stopped afterwards."""
    procs: list[WorkerProc] = []

    def start(**env: str) -> WorkerProc:
        w = WorkerProc(pg_url, tmp_path / f"worker{len(procs)}.log", **env).start()
        procs.append(w)
        return w

    yield start
    for w in procs:
        w.stop()
