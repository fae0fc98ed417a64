"""Policy lifecycle governance: released packs only, packets tied to the release, an audited and verifiable trail."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from typer.testing import CliRunner

from escalation import audit, store
from escalation.cli import app as cli_app
from escalation.errors import PackError
from escalation.release import release_pack, released_versions
from escalation.service import Settings, create_app
from escalation.store import AuditRow, PacketRow

ROOT = Path(__file__).resolve().parents[2]
LUMEN = ROOT / "src" / "escalation" / "packs" / "lumen"
DEMO = sorted((ROOT / "src" / "escalation" / "demo").glob("*.case.json"))
APPROVER = "Olga Owner"


def escalate(*args: str | Path) -> Any:
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli_app, [str(a) for a in args])


@pytest.fixture
def draft_pack(tmp_path: Path) -> Path:
    dst = tmp_path / "lumen"
    shutil.copytree(LUMEN, dst, ignore=shutil.ignore_patterns("releases.jsonl"))
    return dst


@pytest.fixture
def released_pack(draft_pack: Path) -> Path:
    outcome = release_pack(draft_pack, approved_by=APPROVER)
    assert outcome.created
    return draft_pack


class Service:
    def __init__(self, db_url: str, pack: Path, users: bool = True) -> None:
        self.app = create_app(Settings(database_url=db_url, policy=pack))
        self.rt = self.app.state.runtime
        self.client = TestClient(self.app)
        self.keys: dict[str, str] = {}
        if users:
            with self.rt.session() as s:
                for name, role in (("sam", "support"), ("olga", "owner"), ("hook", "integration")):
                    _, self.keys[name] = store.create_user(s, name, role)

    def h(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}

    def entries(self, action: str | None = None) -> list[AuditRow]:
        with self.rt.session() as s:
            return audit.entries(s, action=action)

    def problems(self) -> list[str]:
        with self.rt.session() as s:
            return audit.verify(s)

    def close(self) -> None:
        self.rt.engine.dispose()


@pytest.fixture
def service(db_url: str, released_pack: Path) -> Iterator[Service]:
    svc = Service(db_url, released_pack)
    yield svc
    svc.close()


def full_flow(svc: Service) -> int:
    """Ingest the demo cases; on Nakatomi: a leaky edit (blocked), the fix, an override, approve, send."""
    for path in DEMO:
        assert svc.client.post("/cases", content=path.read_bytes(), headers=svc.h("sam")).status_code == 201
    queue = svc.client.get("/escalations", params={"severity": "Sev1"}, headers=svc.h("sam")).json()["escalations"]
    eid = queue[0]["id"]

    def review(**body: Any) -> Any:
        return svc.client.post(f"/escalations/{eid}/review", json=body, headers=svc.h("sam"))

    draft = svc.client.get(f"/escalations/{eid}", headers=svc.h("sam")).json()["escalation"]["draft_update"]
    assert review(action="start").status_code == 200
    assert review(action="edit", text=draft + "\nWe are restarting db-shard-17.int.lumen.example.").status_code == 200
    assert review(action="approve").status_code == 422
    assert review(action="edit", text=draft + "\nWe are restarting the affected service.").status_code == 200
    assert review(action="override", level="Sev2", reason="one workspace only").status_code == 200
    assert review(action="approve").status_code == 200
    assert svc.client.post(f"/escalations/{eid}/send", headers=svc.h("sam")).status_code == 200
    return int(eid)


# ---------------------------------------------------------------- releases


def test_the_service_refuses_an_unreleased_pack_unless_sandbox(db_url: str, draft_pack: Path) -> None:
    with pytest.raises(PackError) as e:
        create_app(Settings(database_url=db_url, policy=draft_pack))
    message = str(e.value)
    assert "escalate policy release" in message and "--sandbox" in message and "not a released version" in message
    app = create_app(Settings(database_url=db_url, policy=draft_pack, sandbox=True))
    rt = app.state.runtime
    with rt.session() as s:
        _, key = store.create_user(s, "olga", "owner")
    r = TestClient(app).get("/pack", headers={"Authorization": f"Bearer {key}"})
    assert r.json()["status"] == "draft (sandbox)" and r.json()["release"] is None
    with rt.session() as s:
        loads = [e.detail for e in audit.entries(s, action="pack.load")]
    assert [d["status"] for d in loads] == ["draft (sandbox)"]
    rt.engine.dispose()


def test_a_changed_released_pack_is_unreleased_again(db_url: str, released_pack: Path) -> None:
    with (released_pack / "skill.yaml").open("a", encoding="utf-8") as f:
        f.write("\n# an unreviewed change\n")
    with pytest.raises(PackError, match="not a released version"):
        create_app(Settings(database_url=db_url, policy=released_pack))


def test_a_released_pack_runs_and_every_packet_names_its_release(service: Service, released_pack: Path) -> None:
    (record,) = released_versions(released_pack)
    r = service.client.get("/pack", headers=service.h("sam"))
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "released" and body["release"]["approved_by"] == APPROVER
    assert body["content_hash"] == record.content_hash and body["version"] == record.version == "3.2.0"
    for path in DEMO:
        service.client.post("/cases", content=path.read_bytes(), headers=service.h("hook"))
    with service.rt.session() as s:
        packets = list(s.scalars(select(PacketRow)))
    assert len(packets) == 4
    assert {(p.pack_name, p.pack_version, p.pack_hash) for p in packets} == {
        ("lumen-support-escalation", "3.2.0", record.content_hash)}
    runs = service.entries("packet.run")
    assert len(runs) == 4 and all(e.detail["pack_hash"] == record.content_hash for e in runs)
    assert all(e.detail["pack_status"] == "released" for e in runs)


def test_releases_are_audited_once_and_every_start_is_audited(db_url: str, released_pack: Path) -> None:
    first = Service(db_url, released_pack, users=False)
    first.close()
    second = Service(db_url, released_pack, users=False)
    releases = second.entries("pack.release")
    (record,) = released_versions(released_pack)
    assert len(releases) == 1
    assert (releases[0].actor, releases[0].subject) == (APPROVER, "lumen-support-escalation 3.2.0")
    assert releases[0].detail["content_hash"] == record.content_hash
    loads = second.entries("pack.load")
    assert len(loads) == 2
    assert all(e.detail == {"content_hash": record.content_hash, "status": "released", "approved_by": APPROVER}
               for e in loads)
    assert second.problems() == []
    second.close()


# ---------------------------------------------------------------- the audit trail


def test_every_step_is_audited_with_its_actor(service: Service) -> None:
    eid = full_flow(service)
    got = [(e.actor, e.action) for e in service.entries() if e.action not in ("pack.release", "pack.load")]
    ingests = [("sam", "case.ingest")] * 5
    assert got.count(("sam", "case.ingest")) == 5 and got.count(("skill", "packet.run")) == 4
    reviews = [x for x in got if x[1].startswith(("review.", "update."))]
    assert reviews == [("sam", "review.start"), ("sam", "review.edit"), ("sam", "review.edit"),
                       ("sam", "review.override"), ("sam", "review.approve"), ("sam", "update.send")]
    assert len(got) == len(ingests) + 4 + len(reviews)  # the refused approve wrote nothing
    subjects = {e.subject for e in service.entries() if e.action.startswith(("review.", "update."))}
    assert subjects == {f"escalation:{eid}"}
    r = service.client.get("/audit", headers=service.h("olga"))
    assert r.status_code == 200 and r.json()["intact"] is True
    assert r.json()["entries"][0]["action"] == "update.send"


def test_tampering_is_found_by_verify_and_the_cli(service: Service, db_url: str) -> None:
    full_flow(service)
    assert service.problems() == []
    ok = escalate("audit", "verify", "--database", db_url)
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    seq = service.entries("review.override")[0].seq
    with service.rt.engine.begin() as conn:
        conn.execute(text("UPDATE audit SET detail = :d WHERE seq = :seq"),
                     {"d": json.dumps({"reason": "nothing to see"}), "seq": seq})
    assert service.problems() == [f"entry {seq}: content does not match its hash (edited)"]
    bad = escalate("audit", "verify", "--database", db_url)
    assert bad.exit_code == 1
    assert f"entry {seq}" in bad.output
    r = service.client.get("/audit", headers=service.h("olga"))
    assert r.json()["intact"] is False and r.json()["problems"] == [f"entry {seq}: content does not match its hash "
                                                                    "(edited)"]


def test_user_add_prints_a_key_that_authenticates(service: Service, db_url: str) -> None:
    r = escalate("user", "add", "petra", "--role", "support", "--database", db_url)
    assert r.exit_code == 0, r.output
    keys = re.findall(r"esk_[A-Za-z0-9_-]+", r.stdout)
    assert len(keys) == 1
    got = service.client.get("/escalations", headers={"Authorization": f"Bearer {keys[0]}"})
    assert got.status_code == 200
    assert service.client.get("/escalations", headers={"Authorization": "Bearer esk_wrong"}).status_code == 401
    (created,) = service.entries("user.create")
    assert (created.actor, created.subject, created.detail["role"]) == ("cli", "user:petra", "support")
    again = escalate("user", "add", "petra", "--role", "support", "--database", db_url)
    assert again.exit_code != 0 and "exists" in again.output


# ---------------------------------------------------------------- signals


def _metric(text_: str, name: str, labels: str = "") -> float:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text_, re.MULTILINE)
    assert m, f"{name}{labels} not in /metrics"
    return float(m.group(1))


def test_signals_and_metrics_after_a_flow(service: Service) -> None:
    full_flow(service)
    r = service.client.get("/signals", headers=service.h("olga"))
    assert r.status_code == 200
    sig = r.json()
    assert sig["escalations"] == 4 and sig["packets"] == 4
    assert sig["leaks_blocked"] == {"in_drafts": 0, "in_reviewer_edits": 1, "total": 1}
    assert sig["severity_overrides"]["count"] == 1 and sig["severity_overrides"]["direction"] == {"down": 1}
    assert sig["severity_overrides"]["rate"] == 0.25
    assert sig["update_edit_distance"]["count"] == 1 and sig["update_edit_distance"]["median"] > 0
    assert sig["time_to_approved_update_hours"]["count"] == 1
    assert sig["packets_per_trigger"] == {"incident_update": 1, "severity_change": 2, "unclear_handoff": 1,
                                          "vip_account": 1}

    m = service.client.get("/metrics", headers=service.h("olga"))
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    for trigger, n in sig["packets_per_trigger"].items():
        assert _metric(m.text, "escalation_packets_per_trigger", f'{{trigger="{trigger}"}}') == n
    assert _metric(m.text, "escalation_leaks_blocked", '{where="draft"}') == sig["leaks_blocked"]["in_drafts"]
    assert _metric(m.text, "escalation_leaks_blocked", '{where="reviewer_edit"}') == 1
    assert _metric(m.text, "escalation_severity_overrides", '{direction="down"}') == 1
    assert _metric(m.text, "escalation_update_edit_distance_median") == sig["update_edit_distance"]["median"]
