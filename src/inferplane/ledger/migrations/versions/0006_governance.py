"""The model registry (docs/governance.md): versions with their stage and model card,
approvals, evaluation results, kills, every lifecycle event, a revision counter every gateway
process polls; and the version that served each usage record.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("registered_by", sa.String(128), nullable=False),
        sa.Column("registered_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("card", sa.Text()),
        sa.Column("card_by", sa.Text()),
        sa.Column("card_at", sa.Float()),
    )
    op.create_table(
        "version_approvals",
        sa.Column("version", sa.String(128), primary_key=True),
        sa.Column("approver", sa.String(128), primary_key=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text()),
    )
    op.create_table(
        "version_evaluations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("suite", sa.String(256), nullable=False),
        sa.Column("metric", sa.String(64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float()),
        sa.Column("passed", sa.Boolean(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("details", sa.Text()),
    )
    op.create_index("ix_version_evaluations_version", "version_evaluations", ["version", "ts"])
    op.create_table(
        "governance_kills",
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("ts", sa.Float(), nullable=False),
    )
    op.create_table(
        "governance_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("target", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128)),
        sa.Column("from_stage", sa.String(16)),
        sa.Column("to_stage", sa.String(16)),
        sa.Column("reason", sa.Text()),
        sa.Column("details", sa.Text()),
    )
    op.create_index("ix_governance_events_model_ts", "governance_events", ["model", "ts"])
    op.create_table(
        "governance_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO governance_revision (id, revision) VALUES (1, 0)")
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("version", sa.String(128)))
        batch.create_index("ix_usage_records_version_ts", ["version", "ts"])


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_index("ix_usage_records_version_ts")
        batch.drop_column("version")
    op.drop_table("governance_revision")
    op.drop_index("ix_governance_events_model_ts", "governance_events")
    op.drop_table("governance_events")
    op.drop_table("governance_kills")
    op.drop_index("ix_version_evaluations_version", "version_evaluations")
    op.drop_table("version_evaluations")
    op.drop_table("version_approvals")
    op.drop_table("model_versions")
