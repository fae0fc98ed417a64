"""Shared test support for real databases: a fresh PostgreSQL database per test or module.

PostgreSQL is the server at ESCALATE_TEST_PG_URL (default: postgres@localhost:5432, trust
auth). A database is created with a unique name and dropped afterwards. When the server is
unreachable the PostgreSQL half of a test is skipped with the reason, or fails when
ESCALATE_REQUIRE_PG is set (as `.ci/run` does, so CI cannot silently skip PostgreSQL).

Also `give_conftest_back`: pytest imports every conftest.py outside a package as the module
`conftest`, so a folder's own conftest.py would make `from conftest import ...` in other
tests find it instead of tests/conftest.py; a folder conftest calls this in pytest_configure.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

PG_ADMIN_URL = os.environ.get("ESCALATE_TEST_PG_URL", "postgresql+psycopg://postgres@localhost:5432/postgres")
TOP_CONFTEST = Path(__file__).resolve().parent / "conftest.py"


@cache
def pg_unreachable() -> str | None:
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


def need_pg() -> None:
    """Skip (or, with ESCALATE_REQUIRE_PG, fail) when PostgreSQL is unreachable."""
    reason = pg_unreachable()
    if reason and os.environ.get("ESCALATE_REQUIRE_PG"):
        pytest.fail(reason + " (ESCALATE_REQUIRE_PG is set: CI must test PostgreSQL)")
    if reason:
        pytest.skip(reason)


@contextmanager
def fresh_pg_database(prefix: str = "esc_test") -> Iterator[str]:
    """The URL of a new, uniquely named PostgreSQL database, dropped on exit."""
    need_pg()
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def give_conftest_back(config: pytest.Config) -> None:
    """Point the module name `conftest` back at tests/conftest.py (see the module docstring)."""
    for plugin in config.pluginmanager.get_plugins():
        path = getattr(plugin, "__file__", None)
        if path and Path(path).resolve() == TOP_CONFTEST:
            sys.modules["conftest"] = plugin  # type: ignore[assignment]
            return
