"""Fixtures for the storage and audit tests: a fresh database per test, on SQLite and PostgreSQL.

PostgreSQL is the server at ESCALATE_TEST_PG_URL (default: postgres@localhost:5432, trust
auth). Each PostgreSQL test gets its own database, created and dropped around it; the
PostgreSQL half is skipped (with the reason) only when that server cannot be reached, and
fails instead when ESCALATE_REQUIRE_PG is set (as `.ci/run` does).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from escalation import store
from escalation.case import Case, load_case
from escalation.engine import run
from escalation.pack import Pack
from pg import fresh_pg_database, give_conftest_back

ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    give_conftest_back(config)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database: a temporary SQLite file, or a uniquely named PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'escalate.db'}"
        return
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on the fresh database, disposed after the test."""
    eng = store.connect(db_url)
    store.migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def demo_runs(lumen: Pack) -> list[tuple[Case, dict[str, Any], Any]]:
    """(case, packet as JSON, packet model) for every bundled demo case under the Lumen pack."""
    out = []
    for path in sorted((ROOT / "src" / "escalation" / "demo").glob("*.json")):
        case = load_case(path)
        packet = run(case, lumen)
        out.append((case, packet.model_dump(mode="json", by_alias=True), packet))
    return out
