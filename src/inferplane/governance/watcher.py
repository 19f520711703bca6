"""The rollout watcher: in each gateway process, every ``governance.rollout.check_interval_s``,
each model's candidate (shadow or canary) is judged against its production incumbent on the
ledger's records of the last ``window_s`` (``gate_window.tally``, ``rollout_gates.judge``). A
failing gate rolls the candidate back at once; a canary whose gates have passed for its
``--promote-after`` is promoted. Both go through the registry as ``rollout-watcher``, bump the
revision (every process stops or starts sending within its poll interval) and are idempotent:
with several processes watching, the first moves the version and the others find it moved.
A process that finds a candidate failing stops sending it requests itself first (``hold``),
before the rollback is recorded: no request it routes after that moment reaches it.
The latest verdict is kept in the registry (``models show``) and here (``verdicts``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from inferplane.config import Config
from inferplane.governance import usage
from inferplane.governance.canary import Split
from inferplane.governance.gate_window import Sides, tally
from inferplane.governance.registry import Registry
from inferplane.governance.rollout_gates import (
    GateConfig,
    Outcome,
    Verdict,
    WindowStats,
    judge,
    promotion_due,
)
from inferplane.governance.stages import Stage

log = logging.getLogger("inferplane.governance")
WATCHER = "rollout-watcher"


def gate_config(config: Config) -> GateConfig:
    r = config.governance.rollout
    return GateConfig(window_s=r.window_s, min_requests=r.min_requests,
                      max_error_rate=r.max_error_rate,
                      max_error_rate_increase=r.max_error_rate_increase,
                      max_ttft_p95_ratio=r.max_ttft_p95_ratio, max_cost_ratio=r.max_cost_ratio)


def _summary(stats: WindowStats) -> dict[str, object]:
    return {"requests": stats.requests, "errors": stats.errors,
            "ttft_p95_ms": stats.ttft_p95(), "cost_per_mtok": stats.cost_per_mtok}


class Watcher:
    def __init__(self, config: Config, registry: Registry, hold: Callable[[str], None]) -> None:
        self._config = config
        self._registry = registry
        self._hold = hold  # stop routing to a version in this process, at once
        self._gates = gate_config(config)
        self._models = {d.version_name: d.model for d in config.deployments}
        self._names = {m.name: [m.name, *m.aliases] for m in config.models}
        self.verdicts: dict[str, Verdict] = {}  # version -> its latest verdict here

    async def round(self, stages: Mapping[str, Stage],
                    candidates: Mapping[Stage, Mapping[str, Split]]) -> bool:
        """Judge each candidate once; whether any moved (the caller reads the registry)."""
        moved = False
        for stage, splits in candidates.items():
            for model, split in splits.items():
                incumbents = frozenset(v for v, s in stages.items() if s is Stage.PRODUCTION
                                       and self._models.get(v) == model)
                sides = Sides(split.version, split.deployments, stage is Stage.SHADOW,
                              incumbents)
                moved |= await self._judge(model, sides, stage)
        return moved

    async def _judge(self, model: str, sides: Sides, stage: Stage) -> bool:
        now = time.time()
        rows = await asyncio.to_thread(
            usage.window, self._registry.engine, now - self._gates.window_s,
            [sides.candidate, *sides.incumbents], self._names.get(model, [model]))
        candidate, incumbent = tally(rows, sides)
        verdict = judge(candidate, incumbent, self._gates)
        self.verdicts[sides.candidate] = verdict
        kept = await asyncio.to_thread(self._registry.judged, sides.candidate,
                                       verdict.outcome.value, verdict.reasons)
        settings = self._config.governance
        if verdict.outcome is Outcome.FAIL:
            self._hold(sides.candidate)
            details = {"verdict": list(verdict.reasons), "candidate": _summary(candidate),
                       "incumbent": _summary(incumbent), "window_s": self._gates.window_s}
            moves = await asyncio.to_thread(
                self._registry.rollback_candidate, sides.candidate, WATCHER,
                f"{stage} gates failed: {verdict.text()}", settings, details)
            if moves:
                log.warning("rolled %s back from %s: %s", sides.candidate, stage,
                            verdict.text())
            return bool(moves)
        if kept is not None and stage is Stage.CANARY and promotion_due(
                verdict.outcome, kept[0], kept[1], now):
            moves = await asyncio.to_thread(
                self._registry.promote, sides.candidate, WATCHER,
                f"canary gates passed for {kept[1]:g} s", settings)
            if moves:
                log.info("promoted %s to production", sides.candidate)
            return bool(moves)
        return False
