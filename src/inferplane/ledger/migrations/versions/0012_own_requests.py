"""The gateway's own requests made for a client request (the semantic cache's embeddings and
judge calls): what for, and for which request.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("purpose", sa.String(32)))
        batch.add_column(sa.Column("on_behalf_of", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("on_behalf_of")
        batch.drop_column("purpose")
