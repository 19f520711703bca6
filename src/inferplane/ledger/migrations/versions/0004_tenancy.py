"""Tenants, API keys (hashes only), the admin event record, a revision counter that tells
every gateway process when keys changed, and the key of each usage record.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _limits() -> tuple[sa.Column[object], ...]:
    return (
        sa.Column("rpm", sa.Integer()),
        sa.Column("tpm", sa.BigInteger()),
        sa.Column("budget_usd", sa.Float()),
        sa.Column("budget_period", sa.String(8)),
    )


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("name", sa.String(64), primary_key=True),
        *_limits(),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("tenant", sa.String(64), sa.ForeignKey("tenants.name"), nullable=False),
        sa.Column("name", sa.String(128)),
        sa.Column("secret_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(128), nullable=False),
        sa.Column("models", sa.Text()),
        sa.Column("residency", sa.Text()),
        *_limits(),
        sa.Column("expires_at", sa.Float()),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float()),
    )
    op.create_index("ix_api_keys_tenant", "api_keys", ["tenant"])
    op.create_table(
        "admin_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(128), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(128)),
        sa.Column("tenant", sa.String(64)),
        sa.Column("details", sa.Text()),
    )
    op.create_index("ix_admin_events_ts", "admin_events", ["ts"])
    op.create_table(
        "tenancy_revision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("revision", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO tenancy_revision (id, revision) VALUES (1, 0)")
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("key_id", sa.String(16)))
        batch.create_index("ix_usage_records_key_ts", ["key_id", "ts"])


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_index("ix_usage_records_key_ts")
        batch.drop_column("key_id")
    op.drop_table("tenancy_revision")
    op.drop_index("ix_admin_events_ts", "admin_events")
    op.drop_table("admin_events")
    op.drop_index("ix_api_keys_tenant", "api_keys")
    op.drop_table("api_keys")
    op.drop_table("tenants")
