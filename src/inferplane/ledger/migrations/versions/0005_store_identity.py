"""Give the store an identity: one row holding a random id, made when this migration runs, that
a WAL directory notes (``STORE_ID``) so that its records never go to another store.

Runs inside ``store.migrate``'s transaction, which on PostgreSQL holds the migration advisory
lock: of several processes migrating one database at once, exactly one makes the id.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import time
import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "ledger_store_identity",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),  # always 1
        sa.Column("store_id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.bulk_insert(table, [{"id": 1, "store_id": uuid.uuid4().hex, "created_at": time.time()}])


def downgrade() -> None:
    op.drop_table("ledger_store_identity")
