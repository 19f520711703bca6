"""The registry's tables (migrations 0006 and 0007): versions and their stage and card,
approvals, evaluation results, staged rollouts and their gates, active kills, every lifecycle
event, and the revision every gateway process polls."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

model_versions = Table(
    "model_versions", metadata,
    Column("version", String(128), primary_key=True),
    Column("model", String(128), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("registered_by", String(128), nullable=False),
    Column("registered_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("card", Text),
    Column("card_by", Text),  # comma-separated: every identity that wrote the card
    Column("card_at", Float),
)
version_approvals = Table(
    "version_approvals", metadata,
    Column("version", String(128), primary_key=True),
    Column("approver", String(128), primary_key=True),
    Column("ts", Float, nullable=False),
    Column("comment", Text),
)
version_evaluations = Table(
    "version_evaluations", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("version", String(128), nullable=False),
    Column("suite", String(256), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("score", Float, nullable=False),
    Column("threshold", Float),
    Column("passed", Boolean, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("ts", Float, nullable=False),
    Column("details", Text),
    Index("ix_version_evaluations_version", "version", "ts"),
)
# A version's staged rollout: its share of requests while in shadow or canary, when the watcher
# promotes it, and the latest verdict of its gates (kept after it leaves, for `models show`).
version_rollouts = Table(
    "version_rollouts", metadata,
    Column("version", String(128), primary_key=True),
    Column("percent", Float),
    Column("promote_after_s", Float),
    Column("started_at", Float, nullable=False),
    Column("started_by", String(128), nullable=False),
    Column("gate_outcome", String(8)),  # pass, fail, wait
    Column("gate_reasons", Text),  # JSON list
    Column("gate_at", Float),  # when the gates were last judged
    Column("gate_since", Float),  # since when the outcome has been the same
)
governance_kills = Table(
    "governance_kills", metadata,
    Column("kind", String(16), primary_key=True),
    Column("name", String(128), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("ts", Float, nullable=False),
)
governance_events = Table(
    "governance_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # version, deployment, model, provider
    Column("target", String(128), nullable=False),
    Column("model", String(128)),
    Column("from_stage", String(16)),
    Column("to_stage", String(16)),
    Column("reason", Text),
    Column("details", Text),
    Index("ix_governance_events_model_ts", "model", "ts"),
)
governance_revision = Table(
    "governance_revision", metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)
