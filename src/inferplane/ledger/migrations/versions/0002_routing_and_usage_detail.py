"""Record cached, cache-write and reasoning tokens, the region, and how each request was routed.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def _columns() -> tuple[sa.Column[object], ...]:
    """Fresh column objects: a Column belongs to one table once added."""
    return (
        sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("reasoning_tokens", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("region", sa.String()),
        sa.Column("routing_policy", sa.String()),
        sa.Column("routing_reason", sa.Text()),
        sa.Column("attempts", sa.Text()),
        sa.Column("attempt_count", sa.Integer(), nullable=False, server_default="1"),
    )


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for column in _columns():
            batch.add_column(column)


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        for column in reversed(_columns()):
            batch.drop_column(column.name)
