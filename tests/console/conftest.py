"""Fixtures for the console tests: a service app over a fresh SQLite database with the demo cases
ingested through the JSON API and one user per Lumen role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from escalation import store
from escalation.service import Settings, create_app
from pg import give_conftest_back

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "escalation" / "demo"
NOW = datetime(2026, 10, 6, 2, 45, tzinfo=UTC)
"""The service's clock in these tests: just after the demo cases' as_of, so SLA targets lie ahead."""

ROLES = ("owner", "support", "success", "engineering_triage", "account_owner")
OWN_ACCOUNT = "acc-1018"  # Nakatomi Trading, the account of demo case 01


def pytest_configure(config: pytest.Config) -> None:
    give_conftest_back(config)


@dataclass
class World:
    """The app, its users' API keys by role, and the escalation ids by demo case."""

    app: FastAPI
    keys: dict[str, str]
    names: dict[str, str]
    escalations: dict[str, int] = field(default_factory=dict)

    def client(self, role: str | None = None) -> TestClient:
        """A TestClient, signed in to the console as the user of `role` (none: signed out)."""
        c = TestClient(self.app)
        if role is not None:
            r = c.post("/ui/login", data={"name": self.names[role], "api_key": self.keys[role], "next": "/ui"},
                       follow_redirects=False)
            assert r.status_code == 303, r.text
        return c

    def api(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}


def make_world(db: Path, **settings: Any) -> World:
    app = create_app(Settings(database_url=f"sqlite:///{db}", sandbox=True, clock=lambda: NOW, **settings))
    keys: dict[str, str] = {}
    names: dict[str, str] = {}
    with app.state.runtime.session() as s:
        for role in ROLES:
            accounts = [OWN_ACCOUNT] if role == "account_owner" else []
            row, key = store.create_user(s, f"{role}-user", role, accounts)
            keys[role], names[role] = key, row.name
    world = World(app=app, keys=keys, names=names)
    with TestClient(app) as c:
        for path in sorted(DEMO.glob("*.case.json")):
            r = c.post("/cases", content=path.read_bytes(), headers=world.api("support"))
            assert r.status_code == 201, r.text
            if r.json()["escalated"]:
                world.escalations[path.name.split("-")[0]] = r.json()["escalation_id"]
    return world


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """A fresh app and database per test (ingesting the demo cases takes well under a second)."""
    w = make_world(tmp_path / "console.db")
    yield w
    w.app.state.runtime.engine.dispose()


@pytest.fixture(scope="session")
def world_factory() -> Any:
    """`make_world(db_path)` for fixtures of a wider scope (the browser tests share one server)."""
    return make_world
