"""What ``inferplane models`` and ``/admin/v1/models`` show, read from the registry and the
ledger: a version's rendered card, and a model's history at a moment."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferplane.governance import cards, usage
from inferplane.governance.history import state_at
from inferplane.governance.registry import Registry

DEFAULT_WINDOW_S = 300.0


def card(registry: Registry, version: str, required: Sequence[str]) -> dict[str, Any]:
    """The version's card rendered (environmental impact from the ledger, evaluations as its
    model-index) and the required fields it lacks."""
    found = registry.version(version)
    parsed = None if found.card is None else cards.parse(found.card)
    results = [cards.EvalResult(e["suite"], e["metric"], e["score"], e["passed"])
               for e in found.evaluations]
    text = cards.render(parsed, version, usage.footprint(registry.engine, version), results)
    return {"version": version, "model": found.model, "card": text,
            "stored": found.card is not None, "missing": cards.missing(parsed, required)}


def history(registry: Registry, model: str, at: float, tenant: str | None = None,
            window_s: float = DEFAULT_WINDOW_S) -> dict[str, Any]:
    """Which versions of ``model`` were in which stage at ``at``, the kills in force then,
    and which versions the ledger shows serving it (the latest request at or before ``at``,
    and the requests of the ``window_s`` before; of ``tenant`` when given)."""
    events = registry.events(model=model, until=at, limit=None)
    kills = [e for e in registry.events(actions=("kill", "unkill"), until=at, limit=None)
             if e["kind"] != "model"]  # a model's kills are in its own events already
    state = state_at(sorted([*events, *kills], key=lambda e: (e["ts"], e["id"])), at)
    versions = [v.version for v in registry.versions(model)]
    ledger = usage.served(registry.engine, versions, at, window_s, tenant) if versions else {
        "window_s": window_s, "in_window": [], "last": None}
    return {"model": model, "at": at, "tenant": tenant, "stages": dict(state.stages),
            "production": state.production, "rollouts": dict(state.percents),
            "kills": dict(state.kills), "served": ledger}
