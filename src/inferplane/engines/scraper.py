"""Reads an engine server's own metrics every interval into the readings the router ranks by
(``routing/engine_load.py``) and the engine gauges and ``/readyz`` show (``observe/engines.py``).

One task per engine whose kind is known: the one its provider names (a managed engine while it
serves, an application on Ray Serve: ``Provider.load_scraper``), or an unmanaged one named by
``engine_metrics``. A failed or late read drops the engine's reading: a policy then falls back
on the gateway's own in-flight count rather than act on stale numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

import orjson

from inferplane.engines.engine_metrics import SOURCES, EngineLoad, EngineReading
from inferplane.engines.http_get import get
from inferplane.engines.step_log import StepLog
from inferplane.providers.http_client import Pool

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig
    from inferplane.providers.base import Provider

log = logging.getLogger("inferplane.engine")

HISTORY = 4  # queue lengths kept for the "queue growing" test


class EngineScraper:
    """``base_url()``: the server's root while it can be read, else ``None``. ``answered``:
    whether the server has once said it can serve: a reading where it does (a replica up,
    where it has several), or 404 (it is up, with no load to report)."""

    def __init__(self, deployment: str, kind: str, base_url: Callable[[], str | None],
                 interval_s: float, readings: MutableMapping[str, EngineReading],
                 steps: StepLog | None = None) -> None:
        self.deployment = deployment
        self.steps = steps  # where decode step times go, for the planner's calibration
        self.source = SOURCES[kind]
        self.base_url = base_url
        self.interval_s = interval_s
        self.readings = readings
        self.answered = False
        self._waiting: deque[float] = deque(maxlen=HISTORY)
        self._task: asyncio.Task[None] | None = None
        self._pool: Pool | None = None

    def start(self) -> None:
        self._pool = Pool()
        self._task = asyncio.create_task(self._loop(), name=f"scrape-{self.deployment}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.steps is not None:
            self.steps.write()
        if self._pool is not None:
            await self._pool.close()

    async def read(self, url: str) -> EngineLoad:
        """One reading of the server at ``url``."""
        assert self._pool is not None
        timeout = self.source.timeout_s or max(0.5, self.interval_s)
        status, body = await get(self._pool, url + self.source.metrics_path, timeout)
        self.answered = self.answered or status == 404
        if status != 200:
            raise OSError(f"{url}{self.source.metrics_path} answered {status}")
        slots: Any = None
        if self.source.slots_path is not None:
            slots_status, slots_body = await get(self._pool, url + self.source.slots_path,
                                                 timeout)
            if slots_status == 200:
                with contextlib.suppress(orjson.JSONDecodeError):
                    slots = orjson.loads(slots_body)
        return self.source.parse(body.decode(errors="replace"), slots)

    async def _loop(self) -> None:
        failing = False
        while True:
            url = self.base_url()
            if url is None:
                self._drop()
            else:
                try:
                    load = await self.read(url)
                except (OSError, TimeoutError, ValueError) as exc:
                    if not failing:
                        log.warning("reading %s's metrics failed: %s", self.deployment, exc)
                    failing = True
                    self._drop()
                else:
                    failing = False
                    self.answered = self.answered or load.serving
                    self.readings[self.deployment] = EngineReading(
                        load, time.monotonic(), self.interval_s, tuple(self._waiting))
                    self._waiting.append(load.waiting)
                    if self.steps is not None:
                        self.steps.observe(load)
            await asyncio.sleep(self.interval_s)

    def _drop(self) -> None:
        self.readings.pop(self.deployment, None)
        self._waiting.clear()
        if self.steps is not None:
            self.steps.forget()


def engine_scrapers(deployments: list[DeploymentConfig], providers: Mapping[str, Provider],
                    readings: MutableMapping[str, EngineReading]) -> list[EngineScraper]:
    """A reader for each engine whose load can be read: the one its provider names, else the
    one its ``engine_metrics`` name; all fill ``readings``."""
    scrapers = []
    for d in deployments:
        scraper = providers[d.name].load_scraper(readings)
        if scraper is None and d.engine_metrics is not None:
            m = d.engine_metrics
            scraper = EngineScraper(d.name, m.kind, constant(m.url), m.interval_s, readings)
        if scraper is not None:
            scrapers.append(scraper)
    return scrapers


def constant(url: str) -> Callable[[], str | None]:
    return lambda: url
