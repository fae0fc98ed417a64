"""`escalate serve --demo` loads real data through the API: users per role, the demo cases, audit."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from escalation import audit, permissions, store
from escalation.cli import BUNDLED_PACK, DEMO_CASES, _seed_demo
from escalation.pack import load_pack
from escalation.service import Settings


def test_demo_seed_creates_one_user_per_role_and_ingests_the_demo_cases(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    settings = Settings(database_url=url, policy=BUNDLED_PACK, sandbox=True)
    _seed_demo(settings, "127.0.0.1", 8000)
    engine = store.connect(url)
    pack = load_pack(BUNDLED_PACK)
    with Session(engine) as s:
        users = {role: store.user_by_name(s, role) for role in permissions.roles(pack)}
        assert all(u is not None and u.role == role for role, u in users.items())
        owner_accounts = users["account_owner"].accounts  # type: ignore[union-attr]
        assert len(owner_accounts) == 1
        escalations = store.list_escalations(s)
        assert 1 <= len(escalations) <= len(list(DEMO_CASES.glob("*.case.json")))
        assert owner_accounts[0] in {e.account_id for e in escalations}
        assert [e.action for e in audit.entries(s, action="case.ingest")].count("case.ingest") == len(
            list(DEMO_CASES.glob("*.case.json")))
        assert audit.verify(s) == []
    # a second start leaves the data alone (keys cannot be shown again)
    _seed_demo(settings, "127.0.0.1", 8000)
    with Session(engine) as s:
        assert len(audit.entries(s, action="case.ingest")) == len(list(DEMO_CASES.glob("*.case.json")))
