"""The Batch API's tables in the store (migration 0013): files, batches and their lines."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, LargeBinary, MetaData, String, Table, Text

metadata = MetaData()

TIMES = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling",
         "cancelled")

batch_files = Table(
    "batch_files", metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64)),
    Column("filename", String(256), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("bytes", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("content", LargeBinary, nullable=False),
)

batches = Table(
    "batches", metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(64)),
    Column("key_id", String(16)),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(64), nullable=False),
    Column("completion_window", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("metadata", Text),
    Column("errors", Text),
    Column("output_file_id", String(64)),
    Column("error_file_id", String(64)),
    Column("total", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    *(Column(f"{name}_at", Float) for name in TIMES),
)

# state: pending -> claimed (claim token, lease_until) -> done (status_code, result)
batch_lines = Table(
    "batch_lines", metadata,
    Column("batch_id", String(64), primary_key=True),
    Column("idx", Integer, primary_key=True, autoincrement=False),
    Column("custom_id", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("state", String(12), nullable=False),
    Column("claim", String(32)),
    Column("lease_until", Float),
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("status_code", Integer),
    Column("result", Text),
)
