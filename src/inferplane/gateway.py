"""The gateway's long-lived parts, started and stopped together: ledger, providers, router."""

from __future__ import annotations

import asyncio
import logging

from inferplane.config import Config, expand_path
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger
from inferplane.metering.intensity import intensity_source
from inferplane.metering.meter import build_meters
from inferplane.observe.metrics import Metrics
from inferplane.providers.base import Provider, create
from inferplane.routing.router import Router

log = logging.getLogger("inferplane")


class Gateway:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.providers: dict[str, Provider] = {d.name: create(d) for d in config.deployments}
        intensity = intensity_source(config.accounting.intensity_source)
        self.router = Router(config, self.providers, meters=build_meters(config, intensity))
        self.metrics = Metrics()
        self._ledger: Ledger | None = None

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("the gateway is not started")
        return self._ledger

    def account(self, record: UsageRecord) -> None:
        """A request ended: its record goes to the ledger (durable) and into the metrics."""
        self.ledger.append(record)
        self.metrics.observe(record)

    async def start(self) -> None:
        ledger = self.config.ledger
        self._ledger = await asyncio.to_thread(
            Ledger.open, self.config.store.url, str(expand_path(ledger.dir)),
            commit_interval_ms=ledger.commit_interval_ms, commit_batch=ledger.commit_batch,
            fsync=ledger.fsync, fsync_interval_ms=ledger.fsync_interval_ms,
        )
        for provider in self.providers.values():
            await provider.start()

    async def stop(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.stop()
            except Exception:
                log.exception("stopping %s failed", provider.deployment.name)
        if self._ledger is not None:
            await asyncio.to_thread(self._ledger.close)

    @property
    def ready(self) -> bool:
        """Every model has at least one ready deployment."""
        return all(
            any(t.provider.ready for t in self.router.targets(name))
            for name in self.router.model_names()
        )
