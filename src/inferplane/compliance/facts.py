"""What the store holds about one AI system, gathered once for its documentation and exports:
the registry's versions, cards, approvals, evaluations, kills and events; the ledger's usage
and live service levels; the system's incidents; the audit entries that concern it, with a
signed checkpoint covering them. The I/O shell of ``annex_iv``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from inferplane.audit.entries import LEDGER_BATCH, decode
from inferplane.audit.log import AuditLog
from inferplane.compliance.incidents import Incident, Incidents
from inferplane.compliance.monitoring import Plan
from inferplane.compliance.scope import Scope
from inferplane.compliance.slo import Slo, summarize
from inferplane.config import Config
from inferplane.governance.registry import Registry
from inferplane.ledger.store import Store

USAGE_COLUMNS = ("id", "ts", "model", "deployment", "provider", "tenant", "version", "status",
                 "ttft_ms", "prompt_tokens", "completion_tokens", "engine_seconds", "energy_j",
                 "co2_g", "water_l", "cost_usd", "region", "error_type")


@dataclass(frozen=True, slots=True)
class Usage:
    """One deployment's totals over the period."""

    requests: int = 0
    tokens: int = 0
    engine_seconds: float = 0.0
    energy_j: float = 0.0
    co2_g: float = 0.0
    water_l: float = 0.0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class Facts:
    config: Config
    scope: Scope
    generated_at: float
    versions: list[dict[str, Any]]  # Version.to_dict() plus its card text
    events: list[dict[str, Any]]  # the registry's lifecycle events of the system's models
    kills: list[dict[str, Any]]
    usage: dict[str, Usage]  # per deployment
    slo: dict[str, Slo]  # per model
    incidents: list[Incident]
    audit: list[dict[str, Any]]  # entries concerning the system (ledger batches counted only)
    ledger_batches: int
    checkpoint: str | None  # the signed note covering ``audit``
    tree_size: int
    plan: Plan | None = None  # from the Prometheus rules, when given
    first_record: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def usage_records(config: Config, scope: Scope, since: float | None, until: float | None
                  ) -> Iterator[dict[str, Any]]:
    """The system's usage records with ``since <= ts < until``, oldest first."""
    store = Store.open(config.store.url)
    try:
        for row in store.records(since, until, USAGE_COLUMNS):
            record = {str(k): v for k, v in row.items()}
            if scope.covers(record):
                yield record
    finally:
        store.close()


def audit_entries(log: AuditLog, scope: Scope, size: int, since: float | None = None,
                  until: float | None = None) -> Iterator[dict[str, Any]]:
    """The entries below ``size`` that concern the system, within ``[since, until)``."""
    for row in log.rows():
        if row.index >= size:
            return
        if (since is not None and row.ts < since) or (until is not None and row.ts >= until):
            continue
        entry = decode(row.leaf_input)
        if scope.covers_entry(entry.data, entry.kind):
            yield {"index": row.index, "ts": entry.ts, "kind": entry.kind,
                   "actor": entry.actor, "data": dict(entry.data),
                   "leaf_hash": row.leaf_hash.hex()}


def covering_checkpoint(log: AuditLog) -> tuple[str | None, int]:
    """A checkpoint signed now when this machine has the key, else the newest kept one."""
    if log.signer is not None:
        signed = log.checkpoint()
        return signed.text, signed.checkpoint.size
    kept = log.stored_checkpoints()
    if not kept:
        return None, 0
    last = max(kept, key=lambda c: c.checkpoint.size)
    return last.text, last.checkpoint.size


def _totals(records: list[dict[str, Any]]) -> dict[str, Usage]:
    out: dict[str, Usage] = {}
    for r in records:
        u = out.get(r["deployment"] or "-", Usage())
        out[r["deployment"] or "-"] = Usage(
            u.requests + 1, u.tokens + r["prompt_tokens"] + r["completion_tokens"],
            u.engine_seconds + r["engine_seconds"], u.energy_j + (r["energy_j"] or 0.0),
            u.co2_g + (r["co2_g"] or 0.0), u.water_l + (r["water_l"] or 0.0),
            u.cost_usd + r["cost_usd"])
    return out


def gather(config: Config, scope: Scope, log: AuditLog, plan: Plan | None) -> Facts:
    checkpoint, size = covering_checkpoint(log)
    now = time.time()
    registry = Registry.open(config.store.url)
    try:
        versions = []
        for v in registry.versions():
            if v.model in scope.models:
                full = registry.version(v.version)
                versions.append({**full.to_dict(), "card": full.card})
        events = [e for m in scope.models for e in registry.events(model=m, limit=None)]
        events.sort(key=lambda e: (e["ts"], e["id"]))
        kills = [k.to_dict() for k in registry.kills()]
        incidents = Incidents(registry.engine).all(scope.system.name)
    finally:
        registry.close()
    records = list(usage_records(config, scope, None, now))
    entries = list(audit_entries(log, scope, size))
    batches = sum(1 for e in entries if e["kind"] == LEDGER_BATCH)
    return Facts(config, scope, now, versions, events, kills, _totals(records),
                 summarize(records), incidents,
                 [e for e in entries if e["kind"] != LEDGER_BATCH], batches, checkpoint, size,
                 plan, records[0]["ts"] if records else None)
