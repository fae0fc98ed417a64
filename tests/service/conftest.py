"""Fixtures for the storage and audit tests: a fresh database per test, on SQLite and PostgreSQL.

PostgreSQL is the server at ESCALATE_TEST_PG_URL (default: postgres@localhost:5432, trust
auth). Each PostgreSQL test gets its own database, created and dropped around it; the
PostgreSQL half is skipped (with the reason) only when that server cannot be reached, and
fails instead when ESCALATE_REQUIRE_PG is set (as `.ci/run` does).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from escalation import store
from escalation.case import Case, load_case
from escalation.engine import run
from escalation.pack import Pack, load_pack

ROOT = Path(__file__).resolve().parents[2]
PG_ADMIN_URL = os.environ.get("ESCALATE_TEST_PG_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")


def pytest_configure(config: pytest.Config) -> None:
    """Give `conftest` back to tests/conftest.py.

    pytest imports every conftest.py outside a package as the module `conftest`, so loading
    this one would make other tests' `from conftest import ...` find this file instead.
    """
    top = ROOT / "tests" / "conftest.py"
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == top:
            sys.modules["conftest"] = plugin  # type: ignore[assignment]
            return


@cache
def _pg_unreachable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); asked once per test run."""
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as e:
        first = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        return f"PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string(hide_password=True)} unreachable: {first}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database: a temporary SQLite file, or a uniquely named PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'escalate.db'}"
        return
    reason = _pg_unreachable()
    if reason and os.environ.get("ESCALATE_REQUIRE_PG"):
        pytest.fail(reason + " (ESCALATE_REQUIRE_PG is set: CI must test PostgreSQL)")
    if reason:
        pytest.skip(reason)
    name = f"esc_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated engine on the fresh database, disposed after the test."""
    eng = store.connect(db_url)
    store.migrate(eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def lumen() -> Pack:
    return load_pack(ROOT / "src" / "escalation" / "packs" / "lumen")


@pytest.fixture(scope="session")
def demo_runs(lumen: Pack) -> list[tuple[Case, dict[str, Any], Any]]:
    """(case, packet as JSON, packet model) for every bundled demo case under the Lumen pack."""
    out = []
    for path in sorted((ROOT / "src" / "escalation" / "demo").glob("*.json")):
        case = load_case(path)
        packet = run(case, lumen)
        out.append((case, packet.model_dump(mode="json", by_alias=True), packet))
    return out
