"""Alembic environment: runs on the connection ``store.migrate`` hands over; no alembic.ini."""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "ledger_alembic_version"


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the ledger's migrations with inferplane.ledger.store.migrate()")
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
