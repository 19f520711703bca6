"""Create usage_records (one row per request) and ledger_checkpoint (what the store has taken).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_records",
        sa.Column("id", sa.String(), primary_key=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("endpoint", sa.String(), nullable=False),
        sa.Column("model", sa.String(), nullable=False),
        sa.Column("deployment", sa.String()),
        sa.Column("provider", sa.String()),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("ttft_ms", sa.Float()),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_type", sa.String()),
        sa.Column("finish_reason", sa.String()),
        sa.Column("stream", sa.Boolean(), nullable=False),
        sa.Column("engine_seconds", sa.Float(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
    )
    op.create_index("ix_usage_records_ts", "usage_records", ["ts"])
    op.create_index("ix_usage_records_model_ts", "usage_records", ["model", "ts"])
    op.create_table(
        "ledger_checkpoint",
        sa.Column("wal_id", sa.String(64), primary_key=True),
        sa.Column("segment", sa.BigInteger(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ledger_checkpoint")
    op.drop_index("ix_usage_records_model_ts", table_name="usage_records")
    op.drop_index("ix_usage_records_ts", table_name="usage_records")
    op.drop_table("usage_records")
