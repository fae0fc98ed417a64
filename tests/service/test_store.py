"""The storage layer on SQLite and PostgreSQL: migrations, idempotent ingestion, packets, queries, users."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, inspect, select, text
from sqlalchemy.orm import Session

from escalation import store
from escalation.case import Case
from escalation.errors import InputError
from escalation.pack import Pack
from escalation.store import CaseRow, EscalationRow, PacketRow, UserRow

T0 = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
Run = tuple[Case, dict[str, Any], Any]
T = TypeVar("T")


def some(value: T | None) -> T:
    """The value, asserting it is there (a lookup that must find a row)."""
    assert value is not None
    return value


def ingest(s: Session, case: Case, update_id: str = "u1", *, source: str = "api",
           at: datetime = T0) -> tuple[CaseRow, bool]:
    return store.ingest_case(s, source=source, ticket_id=str(case.ticket.id), update_id=update_id,
                             body=case.model_dump(mode="json", by_alias=True), account_id=case.account.id,
                             received_at=at)


def record(s: Session, row: CaseRow, run: Run, pack: Pack, *, pack_hash: str | None = None,
           draft: str | None = None) -> tuple[PacketRow, EscalationRow, bool]:
    _, body, packet = run
    return store.record_packet(
        s, case_row=row, packet=body, pack_name=pack.name, pack_version=pack.version,
        pack_hash=pack_hash or pack.content_hash, severity=packet.severity.level,
        checks_passed=not packet.needs_review, triggers=[t.key for t in packet.triggers],
        product_area=packet.product_area,
        sla_due_at=datetime.fromisoformat(packet.sla.due_at) if packet.sla else None,
        draft_update=draft if draft is not None else packet.customer_update)


def run_threads(n: int, target: Any) -> list[Any]:
    """Run target(i) in n threads released together; re-raise the first failure."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as e:  # noqa: BLE001 - reported to the test below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]
    return results


# ---------------------------------------------------------------- engine and migrations


def test_migrate_is_idempotent_and_at_head(db_url: str) -> None:
    eng = store.connect(db_url)
    try:
        assert store.current_revision(eng) is None
        store.migrate(eng)
        store.migrate(eng)
        assert store.current_revision(eng) == store.head_revision() == "0001"
        tables = set(inspect(eng).get_table_names())
        assert {"users", "cases", "escalations", "packets", "reviews", "audit", "alembic_version"} <= tables
    finally:
        eng.dispose()


def test_models_match_the_migrated_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        assert compare_metadata(ctx, store.Base.metadata) == []
        # and the comparison is not vacuous: a column the migration lacks is reported
        extra = MetaData()
        for table in store.Base.metadata.sorted_tables:
            table.to_metadata(extra)
        extra.tables["users"].append_column(Column("nickname", Integer))
        diff = compare_metadata(ctx, extra)
        assert [d[0] for d in diff] == ["add_column"]


def test_migrations_are_inside_the_package() -> None:
    from importlib import resources
    mig = resources.files("escalation") / "migrations"
    assert (mig / "env.py").is_file() and (mig / "script.py.mako").is_file()
    assert (mig / "versions" / "0001_initial.py").is_file()


def test_sqlite_engine_pragmas(tmp_path: Any) -> None:
    eng = store.connect(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        with eng.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        eng.dispose()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError
    with pytest.raises(IntegrityError):
        with store.sessions(engine).begin() as s:
            s.add(store.ReviewRow(escalation_id=999, actor="a", action="start", detail={}, at=T0))
            s.flush()


@pytest.mark.parametrize("url, fragment", [
    ("not a url", "cannot parse"),
    ("mysql://u@h/db", "unsupported"),
    ("postgresql+psycopg2://u:secret@h/db", "unsupported"),
    ("postgresql+psycopg://u:secret@h", "names no database"),
])
def test_bad_urls_are_input_errors_naming_the_variable(url: str, fragment: str) -> None:
    with pytest.raises(InputError) as e:
        store.connect(url)
    assert "ESCALATE_DATABASE_URL" in str(e.value) and fragment in str(e.value)
    assert "secret" not in str(e.value)


def test_database_url_from_environment() -> None:
    assert store.database_url({}) == store.DEFAULT_URL == "sqlite:///escalate.db"
    assert store.database_url({"ESCALATE_DATABASE_URL": "postgresql://x@y/z"}) == "postgresql://x@y/z"
    assert store.connect("postgresql://x@localhost/z").dialect.driver == "psycopg"


# ---------------------------------------------------------------- cases


def test_ingest_is_idempotent_on_update_id(engine: Engine, demo_runs: list[Run]) -> None:
    case = demo_runs[0][0]
    sm = store.sessions(engine)
    with sm.begin() as s:
        first, created = ingest(s, case)
        assert created and first.version == 1
    with sm.begin() as s:
        again, created = ingest(s, case)
        assert not created and again.id == first.id and again.version == 1
        assert some(store.find_case(s, source="api", ticket_id=str(case.ticket.id), update_id="u1")).id == first.id
        assert store.find_case(s, source="api", ticket_id=str(case.ticket.id), update_id="nope") is None
        assert some(store.get_case(s, first.id)).body["id"] == case.id
        assert some(s.scalar(select(CaseRow).where(CaseRow.id == first.id))).body == case.model_dump(
            mode="json", by_alias=True)


def test_concurrent_identical_ingests_store_one_row(engine: Engine, demo_runs: list[Run]) -> None:
    case = demo_runs[1][0]
    sm = store.sessions(engine)

    def one(_: int) -> tuple[int, bool]:
        with sm.begin() as s:
            row, created = ingest(s, case, "same-update")
            return row.id, created

    results = run_threads(8, one)
    assert len({r[0] for r in results}) == 1
    assert sum(created for _, created in results) == 1
    with sm() as s:
        assert len(store.case_versions(s, "api", str(case.ticket.id))) == 1


def test_versions_count_updates_per_ticket(engine: Engine, demo_runs: list[Run]) -> None:
    a, b = demo_runs[0][0], demo_runs[1][0]
    sm = store.sessions(engine)
    with sm.begin() as s:
        assert [ingest(s, a, f"a{i}")[0].version for i in range(3)] == [1, 2, 3]
        assert ingest(s, b, "b0")[0].version == 1
        assert ingest(s, a, "a0", source="zendesk")[0].version == 1  # another source is another ticket
        assert ingest(s, a, "a1")[0].version == 2  # a repeat keeps its version
    with sm() as s:
        assert [(c.version, c.update_id) for c in store.case_versions(s, "api", str(a.ticket.id))] == [
            (1, "a0"), (2, "a1"), (3, "a2")]


def test_concurrent_distinct_updates_get_distinct_versions(engine: Engine, demo_runs: list[Run]) -> None:
    case = demo_runs[2][0]
    sm = store.sessions(engine)

    def one(i: int) -> int:
        with sm.begin() as s:
            return ingest(s, case, f"upd-{i}")[0].version

    assert sorted(run_threads(8, one)) == list(range(1, 9))


def test_timestamps_come_back_timezone_aware_utc(engine: Engine, demo_runs: list[Run]) -> None:
    case = demo_runs[0][0]
    tokyo = datetime(2026, 11, 2, 18, 30, 15, 123456, tzinfo=timezone(timedelta(hours=9)))
    sm = store.sessions(engine)
    with sm.begin() as s:
        row_id = ingest(s, case, at=tokyo)[0].id
    with sm() as s:
        got = s.get(CaseRow, row_id)
        assert got is not None
        assert got.received_at == tokyo and got.received_at.utcoffset() == timedelta(0)
        assert got.received_at.tzinfo is UTC
    with pytest.raises(Exception, match="naive"):
        with sm.begin() as s:
            ingest(s, case, "naive", at=datetime(2026, 1, 1))


# ---------------------------------------------------------------- packets and escalations


def test_record_packet_is_idempotent_and_makes_the_new_packet_current(
        engine: Engine, demo_runs: list[Run], lumen: Pack) -> None:
    run = demo_runs[0]
    sm = store.sessions(engine)
    with sm.begin() as s:
        row1, _ = ingest(s, run[0], "u1")
        p1, esc, created = record(s, row1, run, lumen)
        assert created and esc.current_packet_id == p1.id and esc.state == "draft"
        assert esc.severity == run[2].severity.level and esc.triggers == [t.key for t in run[2].triggers]
        assert esc.account_id == run[0].account.id and esc.triggered_at is not None
        again, esc2, created = record(s, row1, run, lumen)
        assert not created and again.id == p1.id and esc2.id == esc.id
        assert some(store.escalation_for_case(s, row1)).id == esc.id
    with sm.begin() as s:
        row2, _ = ingest(s, run[0], "u2")
        p2, esc3, created = record(s, row2, run, lumen)
        assert created and esc3.id == esc.id and esc3.current_packet_id == p2.id
        p3, _, created = record(s, row1, run, lumen, pack_hash="sha256:other")  # same case, new pack
        assert created and p3.id not in (p1.id, p2.id)
    with sm() as s:
        assert [p.id for p in store.packets_for(s, esc.id)] == [p1.id, p2.id, p3.id]
        assert some(store.get_escalation(s, esc.id)).current_packet_id == p3.id
        assert some(store.get_packet(s, p1.id)).body == run[1]
        assert s.scalar(select(text("count(*)")).select_from(EscalationRow)) == 1


def test_concurrent_record_packet_runs_the_job_once(engine: Engine, demo_runs: list[Run], lumen: Pack) -> None:
    run = demo_runs[1]
    sm = store.sessions(engine)
    with sm.begin() as s:
        row_id = ingest(s, run[0])[0].id

    def one(_: int) -> bool:
        with sm.begin() as s:
            row = store.get_case(s, row_id)
            assert row is not None
            return record(s, row, run, lumen)[2]

    assert sum(run_threads(6, one)) == 1
    with sm() as s:
        assert s.scalar(select(text("count(*)")).select_from(PacketRow)) == 1


@pytest.mark.parametrize("state", ["in_review", "approved", "sent", "rejected"])
def test_a_new_packet_sends_the_escalation_back_to_draft(
        engine: Engine, demo_runs: list[Run], lumen: Pack, state: str) -> None:
    run = demo_runs[0]
    sm = store.sessions(engine)
    with sm.begin() as s:
        row1, _ = ingest(s, run[0], "u1")
        p1, esc, _ = record(s, row1, run, lumen, draft="first draft")
        changes: dict[str, Any] = {"state": state, "final_update": "edited", "severity_override": "Sev2",
                                   "override_reason": "customer revenue at stake"}
        if state in ("approved", "sent"):
            changes["approved_at"] = T0
        if state == "sent":
            changes["sent_at"] = T0 + timedelta(minutes=5)
        store.apply_review(s, esc, actor="ann", action="override", changes=changes, packet_id=p1.id,
                           reason="because")
    with sm.begin() as s:
        row2, _ = ingest(s, run[0], "u2")
        p2, esc, _ = record(s, row2, run, lumen, draft="second draft")
        assert esc.state == "draft" and esc.current_packet_id == p2.id
        assert esc.draft_update == "second draft" and esc.final_update is None and esc.approved_at is None
        assert esc.severity_override == "Sev2" and esc.effective_severity == "Sev2"  # a human decision stays
        assert esc.sent_at == (T0 + timedelta(minutes=5) if state == "sent" else None)
        assert [r.action for r in store.reviews_for(s, esc.id)] == ["override"]


def test_reviews_and_review_changes(engine: Engine, demo_runs: list[Run], lumen: Pack) -> None:
    run = demo_runs[0]
    sm = store.sessions(engine)
    with sm.begin() as s:
        row, _ = ingest(s, run[0])
        pkt, esc, _ = record(s, row, run, lumen)
        store.add_review(s, escalation_id=esc.id, packet_id=pkt.id, actor="ann", action="start", at=T0)
        store.apply_review(s, esc, actor="ann", action="approve", changes={"state": "approved", "approved_at": T0},
                           packet_id=pkt.id, detail={"note": "ok"}, now=T0 + timedelta(minutes=1))
        with pytest.raises(InputError, match="cannot change severity"):
            store.apply_review(s, esc, actor="ann", action="edit", changes={"severity": "Sev1"})
        with pytest.raises(InputError, match="unknown escalation state"):
            store.apply_review(s, esc, actor="ann", action="edit", changes={"state": "done"})
        with pytest.raises(InputError, match="unknown review action"):
            store.add_review(s, escalation_id=esc.id, actor="ann", action="bless")
    with sm() as s:
        reviews = store.reviews_for(s, esc.id)
        assert [(r.action, r.actor, r.packet_id) for r in reviews] == [("start", "ann", pkt.id),
                                                                        ("approve", "ann", pkt.id)]
        assert reviews[1].detail == {"note": "ok"} and reviews[1].at.tzinfo is UTC
        assert [r.action for r in store.all_reviews(s, actions=("approve",))] == ["approve"]
        got = store.get_escalation(s, esc.id)
        assert got is not None and got.state == "approved" and got.approved_at == T0
        assert got.updated_at == T0 + timedelta(minutes=1)


def test_list_escalations_filters(engine: Engine, demo_runs: list[Run], lumen: Pack) -> None:
    sm = store.sessions(engine)
    ids: dict[str, int] = {}
    with sm.begin() as s:
        for i, run in enumerate(demo_runs):
            row, _ = ingest(s, run[0], at=T0 + timedelta(minutes=i))
            ids[run[0].account.id] = record(s, row, run, lumen)[1].id
        first = demo_runs[0][0].account.id
        esc = store.get_escalation(s, ids[first])
        assert esc is not None
        esc.state = "in_review"
    by_account = {r[0].account.id: r[2] for r in demo_runs}
    with sm() as s:
        def accounts(**kw: Any) -> set[str]:
            return {e.account_id for e in store.list_escalations(s, **kw)}

        assert accounts() == set(by_account)
        assert accounts(account_ids=[]) == set()
        assert accounts(account_ids=[first, "acc-nobody"]) == {first}
        assert accounts(states=["in_review"]) == {first}
        assert accounts(states=["draft"]) == set(by_account) - {first}
        for level in {p.severity.level for p in by_account.values()}:
            assert accounts(severity=level) == {a for a, p in by_account.items() if p.severity.level == level}
        for key in {t.key for p in by_account.values() for t in p.triggers}:
            assert accounts(trigger=key) == {a for a, p in by_account.items() if key in [t.key for t in p.triggers]}
        assert accounts(trigger="no_such_trigger") == set()
        for area in {p.product_area for p in by_account.values()}:
            assert accounts(product_area=area) == {a for a, p in by_account.items() if p.product_area == area}
        for team in {p.owner.team for p in by_account.values()}:
            assert accounts(owner=team) == {a for a, p in by_account.items() if p.owner.team == team}
        sev1 = [a for a, p in by_account.items() if p.severity.level == "Sev1"]
        assert accounts(account_ids=sev1, states=["in_review", "draft"], severity="Sev1") == set(sev1)
        assert len(store.list_escalations(s, limit=2)) == 2
        assert len(list(store.current_packet_bodies(s))) == len(demo_runs)
        store.ping(s)
    with sm.begin() as s:  # an override changes which severity the filter sees
        esc = store.get_escalation(s, ids[first])
        assert esc is not None
        esc.severity_override = "Sev4"
    with sm() as s:
        assert first in {e.account_id for e in store.list_escalations(s, severity="Sev4")}
        assert first not in {e.account_id for e in store.list_escalations(s, severity=by_account[first].severity.level)}


# ---------------------------------------------------------------- users


def test_users_and_api_keys(engine: Engine, lumen: Pack) -> None:
    sm = store.sessions(engine)
    roles = [r.key for r in lumen.skill.roles]
    with sm.begin() as s:
        user, key = store.create_user(s, "olga", "account_owner", ["acc-1018"], known_roles=roles)
        other, key2 = store.create_user(s, "sam", "support")
        assert key != key2 and len(key) > 40
        assert user.api_key_hash == store.hash_api_key(key) and key not in user.api_key_hash
        with pytest.raises(InputError, match="already exists"):
            store.create_user(s, "olga", "support")
        with pytest.raises(InputError, match="unknown role"):
            store.create_user(s, "eve", "god", known_roles=roles)
    with sm() as s:
        found = store.user_by_api_key(s, key)
        assert found is not None and found.name == "olga" and found.accounts == ["acc-1018"]
        assert found.created_at.tzinfo is UTC
        assert store.user_by_api_key(s, key + "x") is None and store.user_by_api_key(s, "") is None
        assert some(store.user_by_name(s, "sam")).role == "support"
        assert s.scalar(select(text("count(*)")).select_from(UserRow)) == 2
    with engine.connect() as conn:  # the key is in no column of any row
        for row in conn.execute(text("SELECT * FROM users")):
            assert all(key not in str(v) and key2 not in str(v) for v in row)


def test_apply_outcome_stores_a_review_decision_with_its_timestamps(engine: Engine, demo_runs: list[Run],
                                                                    lumen: Pack) -> None:
    from escalation import review as rv

    with store.sessions(engine).begin() as s:
        row, _ = ingest(s, demo_runs[0][0])
        pkt, esc, _ = record(s, row, demo_runs[0], lumen)
        actor = rv.Actor(name="ann", role="support")
        started = rv.apply(rv.context_of(esc, pkt.body), "start", actor, lumen)
        store.apply_outcome(s, esc, started, actor="ann", action="start", packet_id=pkt.id, now=T0)
        assert esc.state == "in_review" and esc.updated_at == T0
        approved = rv.apply(rv.context_of(esc, pkt.body), "approve", actor, lumen)
        later = T0 + timedelta(minutes=5)
        review = store.apply_outcome(s, esc, approved, actor="ann", action="approve", packet_id=pkt.id, now=later)
        assert esc.state == "approved" and esc.approved_at == later
        assert review.at == later and review.detail == approved.audit_detail


def test_the_queue_puts_the_nearest_sla_target_first(engine: Engine, demo_runs: list[Run], lumen: Pack) -> None:
    with store.sessions(engine).begin() as s:
        for i, run in enumerate(demo_runs):
            row, _ = ingest(s, run[0], f"u{i}")
            record(s, row, run, lumen)
        rows = store.list_escalations(s)
        dues = [e.sla_due_at for e in rows]
        timed = [d for d in dues if d is not None]
        assert len(timed) >= 2 and timed == sorted(timed)
        assert dues[:len(timed)] == timed  # escalations without an SLA target come last
