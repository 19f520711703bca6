"""Record how each request was accounted: usage source, cost method, energy, carbon, water,
and the tenant.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _columns() -> tuple[sa.Column[object], ...]:
    """Fresh column objects: a Column belongs to one table once added."""
    return (
        sa.Column("usage_source", sa.String(), nullable=False, server_default="reported"),
        sa.Column("cost_method", sa.String()),
        sa.Column("energy_j", sa.Float()),
        sa.Column("energy_method", sa.String()),
        sa.Column("co2_g", sa.Float()),
        sa.Column("water_l", sa.Float()),
        sa.Column("tenant", sa.String()),
    )


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for column in _columns():
            batch.add_column(column)
        batch.create_index("ix_usage_records_tenant_ts", ["tenant", "ts"])


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_index("ix_usage_records_tenant_ts")
        for column in reversed(_columns()):
            batch.drop_column(column.name)
