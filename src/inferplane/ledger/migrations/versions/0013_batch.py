"""The Batch API: uploaded files, batches, each line's state (pending, claimed with a lease,
done with its result), and the batch a usage record's line belongs to.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batch_files",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64)),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_batch_files_tenant", "batch_files", ["tenant", "created_at"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("tenant", sa.String(64)),
        sa.Column("key_id", sa.String(16)),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_file_id", sa.String(64), nullable=False),
        sa.Column("completion_window", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metadata", sa.Text()),
        sa.Column("errors", sa.Text()),
        sa.Column("output_file_id", sa.String(64)),
        sa.Column("error_file_id", sa.String(64)),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        *(sa.Column(f"{name}_at", sa.Float()) for name in (
            "in_progress", "finalizing", "completed", "failed", "expired", "cancelling",
            "cancelled")),
    )
    op.create_index("ix_batches_tenant", "batches", ["tenant", "created_at"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(64), primary_key=True),
        sa.Column("idx", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("custom_id", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("claim", sa.String(32)),
        sa.Column("lease_until", sa.Float()),
        sa.Column("tries", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("status_code", sa.Integer()),
        sa.Column("result", sa.Text()),
    )
    op.create_index("ix_batch_lines_state", "batch_lines", ["batch_id", "state"])
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("batch_id")
    op.drop_index("ix_batch_lines_state", "batch_lines")
    op.drop_table("batch_lines")
    op.drop_index("ix_batches_status", "batches")
    op.drop_table("batches")
    op.drop_index("ix_batch_files_tenant", "batch_files")
    op.drop_table("batch_files")
