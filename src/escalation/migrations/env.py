"""Alembic environment: runs on the connection `escalation.store.migrate` passes in.

Run from `migrate()` only (the service has no alembic.ini); the connection comes through
`config.attributes["connection"]` so the upgrade happens inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from escalation.store import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from escalation.store import connect, database_url

        engine = connect(config.get_main_option("sqlalchemy.url") or database_url())
        with engine.begin() as conn:
            context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
            context.run_migrations()
        engine.dispose()
        return
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run escalation.store.migrate(engine)")
run_migrations_online()
