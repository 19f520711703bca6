"""The ledger's Alembic migrations, run in code by :func:`inferplane.ledger.store.migrate`.

Their version is kept in ``ledger_alembic_version``, so other modules may keep Alembic
histories of their own in the same database.
"""
