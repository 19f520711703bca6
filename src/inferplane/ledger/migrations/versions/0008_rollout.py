"""Staged rollout (docs/governance.md): each version's rollout (its percent in shadow or
canary, its promotion schedule, its gates' latest verdict), and the primary request a shadow
record mirrors.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "version_rollouts",
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("percent", sa.Float()),
        sa.Column("promote_after_s", sa.Float()),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("started_by", sa.String(128), nullable=False),
        sa.Column("gate_outcome", sa.String(8)),
        sa.Column("gate_reasons", sa.Text()),
        sa.Column("gate_at", sa.Float()),
        sa.Column("gate_since", sa.Float()),
    )
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("shadow_of", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("shadow_of")
    op.drop_table("version_rollouts")
