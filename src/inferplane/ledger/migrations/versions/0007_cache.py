"""Record what the response cache did for each request, and what a hit saved.

Revision ID: 0007
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def _columns() -> tuple[sa.Column[object], ...]:
    """Fresh column objects: a Column belongs to one table once added."""
    return (
        sa.Column("cache", sa.String(16)),
        sa.Column("cache_saved_usd", sa.Float(), nullable=False, server_default="0"),
        sa.Column("cache_saved_energy_j", sa.Float()),
        sa.Column("cache_saved_co2_g", sa.Float()),
    )


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
