"""The tamper-evident audit log: its entries (the Merkle tree's leaves), the stored hashes of
complete subtrees, the one-row tree head every append updates, and the signed checkpoints.

The tree head starts empty: size 0, the root of the empty tree (SHA-256 of nothing), no
frontier.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import hashlib
import time

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("idx", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("leaf_input", sa.LargeBinary(), nullable=False),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_index("ix_audit_entries_kind_ts", "audit_entries", ["kind", "ts"])
    op.create_table(
        "audit_nodes",
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("idx", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    head = op.create_table(
        "audit_tree_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("frontier", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "size": 0, "root_hash": hashlib.sha256(b"").digest(),
                           "frontier": b"", "updated_at": time.time()}])
    op.create_table(
        "audit_checkpoints",
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(8), nullable=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("size", "key_id"),
    )


def downgrade() -> None:
    op.drop_table("audit_checkpoints")
    op.drop_table("audit_tree_head")
    op.drop_table("audit_nodes")
    op.drop_index("ix_audit_entries_kind_ts", "audit_entries")
    op.drop_table("audit_entries")
