"""Measured energy per request of a managed engine on NVIDIA GPUs: NVML's counters of its GPUs
read at each request's start and end and every ``tick_s``, split by ``metering/interval_energy.py``.

Where NVML or the GPUs are not there, :func:`engine_energy` returns ``None`` and requests carry
no measured energy: the meter estimates it as for any deployment without a counter.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from inferplane.errors import CounterUnavailable
from inferplane.metering.energy_counters import GpuCounters
from inferplane.metering.interval_energy import IntervalEnergy

log = logging.getLogger("inferplane.engine")


class EngineEnergy:
    """The counter, its split, and the task that reads it every ``tick_s``."""

    method = "measured"

    def __init__(self, counter: Callable[[], float], tick_s: float = 1.0) -> None:
        self.counter = counter
        self.split = IntervalEnergy(counter())
        self.tick_s = tick_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._tick(), name="engine-energy")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self.split.reading(self.counter())

    def open(self, request_id: str) -> None:
        self.split.open(request_id, self.counter())

    def started(self, request_id: str, prompt_tokens: int) -> None:
        self.split.started(request_id, prompt_tokens)

    def tokens(self, request_id: str, count: int) -> None:
        self.split.tokens(request_id, count)

    def close(self, request_id: str, remaining_tokens: float) -> float:
        return self.split.close(request_id, self.counter(), remaining_tokens)

    def abandon(self, request_id: str) -> float:
        return self.split.abandon(request_id, self.counter())


def engine_energy(gpus: list[int]) -> EngineEnergy | None:
    """Measured energy over ``gpus``, or ``None`` where NVML cannot read them."""
    try:
        return EngineEnergy(GpuCounters(gpus))
    except CounterUnavailable as exc:
        log.info("no measured energy for GPUs %s: %s", gpus, exc)
        return None
