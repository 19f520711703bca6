"""The registry as one gateway process serves from it: versions registered at start, then a
snapshot in memory, replaced whenever the registry's revision moves (polled every
``governance.poll_interval_ms``). The router reads only the precomputed ``held_back`` map:
no SQL on a request's path."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Collection

from inferplane.config import Config
from inferplane.governance.holdback import Snapshot, held_back, killed
from inferplane.governance.registry import Registry
from inferplane.polling import poll_forever
from inferplane.routing.router import Router

log = logging.getLogger("inferplane.governance")


def config_actor() -> str:
    """Who registers the versions a configuration names: the configuration, on this host."""
    return f"config:{socket.gethostname()}"


class LiveRegistry:
    def __init__(self, config: Config, registry: Registry, router: Router,
                 on_change: Callable[[Collection[str]], None] | None = None) -> None:
        """``on_change``: told the deployments held back after each new snapshot (the response
        cache keys its entries by what serves)."""
        self._config = config
        self.registry = registry
        self._router = router
        self._on_change = on_change
        self.snapshot = Snapshot()
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Register the configuration's versions (those new to the store), read the registry
        and start following it."""
        versions = {d.version_name: d.model for d in self._config.deployments}
        made = await asyncio.to_thread(self.registry.register, versions, config_actor())
        if made:
            log.info("registered model versions: %s", ", ".join(made))
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="inferplane-governance-revision")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        self.registry.close()

    async def refresh(self) -> None:
        """Read the registry again if its revision moved since the last look."""
        revision = await asyncio.to_thread(self.registry.revision)
        if revision != self.snapshot.revision:
            self.apply(await asyncio.to_thread(self.registry.snapshot))

    def apply(self, snapshot: Snapshot) -> None:
        """Serve from ``snapshot`` from now on."""
        self.snapshot = snapshot
        self._router.held_back = held_back(
            self._config.deployments, snapshot,
            require_approval=self._config.governance.require_approval)
        self._router.killed = killed(self._config.deployments, snapshot)
        if self._on_change is not None:
            self._on_change(self._router.held_back.keys())

    async def _poll(self) -> None:
        await poll_forever(self._config.governance.poll_interval_ms / 1000, self.refresh,
                           "model registry changes", log)
