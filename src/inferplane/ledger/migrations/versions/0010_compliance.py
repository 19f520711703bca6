"""Serious incidents (EU AI Act Art. 73): the system, its kind, when someone became aware of
it, the deadline of its initial report, and the reports as they come in.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("system", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("detected_at", sa.Float(), nullable=False),
        sa.Column("due_at", sa.Float(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("opened_by", sa.String(128), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=False),
        sa.Column("initial_report", sa.Text()),
        sa.Column("initial_at", sa.Float()),
        sa.Column("final_report", sa.Text()),
        sa.Column("final_at", sa.Float()),
    )
    op.create_index("ix_incidents_system", "incidents", ["system", "detected_at"])


def downgrade() -> None:
    op.drop_index("ix_incidents_system", "incidents")
    op.drop_table("incidents")
