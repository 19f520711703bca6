"""The registry as one gateway process serves from it: versions registered at start, then a
snapshot in memory, replaced whenever the registry's revision moves (polled every
``governance.poll_interval_ms``). The router reads only the precomputed ``held_back`` and
``canaries`` maps, the shadow sender ``shadows``: no SQL on a request's path. The rollout
watcher (``watcher.py``) judges the candidates every ``governance.rollout.check_interval_s``."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Collection
from dataclasses import replace

from inferplane.config import Config
from inferplane.governance.canary import Split
from inferplane.governance.holdback import Snapshot, candidates, held_back, killed
from inferplane.governance.registry import Registry
from inferplane.governance.stages import Stage
from inferplane.governance.watcher import Watcher
from inferplane.observe.governance import GovernanceView
from inferplane.polling import poll_forever
from inferplane.routing.router import Router

log = logging.getLogger("inferplane.governance")


def config_actor() -> str:
    """Who registers the versions a configuration names: the configuration, on this host."""
    return f"config:{socket.gethostname()}"


class LiveRegistry:
    def __init__(self, config: Config, registry: Registry, router: Router,
                 on_change: Callable[[Collection[str], Collection[str]], None] | None = None
                 ) -> None:
        """``on_change``: told the deployments held back and the models with a canary after each
        new snapshot (the response cache keys its entries by what serves)."""
        self._config = config
        self.registry = registry
        self._router = router
        self._on_change = on_change
        self.snapshot = Snapshot()
        self.canaries: dict[str, Split] = {}  # model -> its canary
        self.shadows: dict[str, Split] = {}  # model -> its shadow version
        self.watcher = Watcher(config, registry, self.hold)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Register the configuration's versions (those new to the store), read the registry
        and start following it."""
        versions = {d.version_name: d.model for d in self._config.deployments}
        made = await asyncio.to_thread(self.registry.register, versions, config_actor())
        if made:
            log.info("registered model versions: %s", ", ".join(made))
        await self.refresh()
        self._tasks = [
            asyncio.create_task(self._poll(), name="inferplane-governance-revision"),
            asyncio.create_task(self._watch(), name="inferplane-rollout-watcher")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self.registry.close()

    async def refresh(self) -> None:
        """Read the registry again if its revision moved since the last look."""
        revision = await asyncio.to_thread(self.registry.revision)
        if revision != self.snapshot.revision:
            self.apply(await asyncio.to_thread(self.registry.snapshot))

    def apply(self, snapshot: Snapshot) -> None:
        """Serve from ``snapshot`` from now on."""
        deployments = self._config.deployments
        self.snapshot = snapshot
        self.canaries = candidates(deployments, snapshot, Stage.CANARY)
        self.shadows = candidates(deployments, snapshot, Stage.SHADOW)
        self._router.held_back = held_back(
            deployments, snapshot, require_approval=self._config.governance.require_approval)
        self._router.canaries = self.canaries
        self._router.killed = killed(deployments, snapshot)
        if self._on_change is not None:
            self._on_change(self._router.held_back.keys(), self.canaries.keys())

    def view(self) -> GovernanceView:
        """What the metrics show of the registry: kills in force and rollbacks made."""
        snapshot = self.snapshot
        return GovernanceView(tuple(m.name for m in self._config.models),
                              tuple((str(k.kind), k.name) for k in snapshot.kills),
                              snapshot.rollbacks)

    def hold(self, version: str) -> None:
        """Serve as if ``version`` had left its rollout, until the registry says more (its
        revision unchanged, the next change read replaces this view)."""
        stages = {**self.snapshot.stages, version: Stage.APPROVED}
        self.apply(replace(self.snapshot, stages=stages))

    async def _poll(self) -> None:
        await poll_forever(self._config.governance.poll_interval_ms / 1000, self.refresh,
                           "model registry changes", log)

    async def check(self) -> None:
        """Judge the candidates once; serve from what the watcher moved at once."""
        if not (self.canaries or self.shadows):
            return
        rollouts = {Stage.CANARY: self.canaries, Stage.SHADOW: self.shadows}
        if await self.watcher.round(self.snapshot.stages, rollouts):
            await self.refresh()

    async def _watch(self) -> None:
        await poll_forever(self._config.governance.rollout.check_interval_s, self.check,
                           "the ledger for the rollout gates", log)
