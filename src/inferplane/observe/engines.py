"""Gauges of the embedded engines' load, read from each provider's status at scrape time.

Named and meant like vLLM's, so the same dashboards and endpoint pickers read both:

- ``inferplane_engine_num_requests_running`` (``vllm:num_requests_running``): sequences in
  the running batch, each holding a slot;
- ``inferplane_engine_num_requests_waiting`` (``vllm:num_requests_waiting``): sequences
  queued for a slot;
- ``inferplane_engine_kv_cache_usage_perc`` (``vllm:kv_cache_usage_perc``): the share of the
  KV cache's positions the running sequences hold, 0 to 1 (1 is full); a free slot's cached
  prefix is reusable and not counted, as vLLM does not count its cached free blocks;
- ``inferplane_engine_prefix_cache_queries_total`` / ``..._hits_total``
  (``vllm:prefix_cache_queries`` / ``vllm:prefix_cache_hits``): prompt tokens looked up in
  the prefix cache, and those found; the hit rate is the ratio of their rates;
- ``inferplane_engine_idle_joules_total``: a managed engine's measured GPU energy in the
  intervals no request was open (``metering/interval_energy.py``), charged to no request: the
  requests' joules plus these are the GPUs' counters' delta.

An engine server Inferplane starts (or reads, ``engine_metrics``) reports them from its own
metrics (``engines/engine_metrics.py``: vLLM's, SGLang's, llama-server's names; a Ray Serve
application's ``/load``), read by the scrapers into :attr:`EngineGauges.readings`; where a
provider's status has no reading, that one is shown. A deployment with neither (a remote API)
has none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from inferplane.engines.engine_metrics import EngineReading

GAUGES = (("running", "num_requests_running", "Requests in the engine's running batch."),
          ("waiting", "num_requests_waiting", "Requests waiting for an engine slot."),
          ("kv_cache_usage", "kv_cache_usage_perc",
           "KV-cache usage of running requests: 1 means 100 percent."),
          ("prefix_cache_hit_rate", "prefix_cache_hit_rate",
           "Prefix-cache hit rate an engine reports as a rate only (SGLang)."))
COUNTERS = (("prefix_cache_queries", "prefix_cache_queries",
             "Prompt tokens looked up in the prefix cache."),
            ("prefix_cache_hits", "prefix_cache_hits",
             "Prompt tokens found in the prefix cache."),
            ("energy_idle_j", "idle_joules",
             "Measured energy of an engine's GPUs while it had no request open, in joules."))
STATUS_TIMEOUT_S = 2.0


class Reporting(Protocol):
    async def status(self) -> dict[str, Any]: ...


class EngineGauges(Collector):
    """Reads the providers' status on :meth:`refresh`; serves the last reading."""

    def __init__(self, providers: Mapping[str, Reporting]) -> None:
        self.providers = providers
        self.readings: Mapping[str, EngineReading] = {}
        self._last: dict[str, dict[str, Any]] = {}

    async def refresh(self) -> None:
        async def one(provider: Reporting) -> dict[str, Any]:
            with contextlib.suppress(Exception):  # a slow or failing engine has no reading
                async with asyncio.timeout(STATUS_TIMEOUT_S):
                    return await provider.status()
            return {}

        names = list(self.providers)
        readings = await asyncio.gather(*(one(self.providers[n]) for n in names))
        last = {name: reading for name, reading in zip(names, readings, strict=True)
                if "running" in reading or "energy_idle_j" in reading}
        for name, scraped in self.readings.items():  # the status's own figures first
            last[name] = {**scraped.load.as_status(), **last.get(name, {})}
        self._last = last

    def collect(self) -> Iterable[Metric]:
        last = self._last
        for key, name, doc in GAUGES:
            gauge = GaugeMetricFamily(f"inferplane_engine_{name}", doc, labels=["deployment"])
            for deployment, reading in last.items():
                if key in reading:
                    gauge.add_metric([deployment], float(reading[key]))
            yield gauge
        for key, name, doc in COUNTERS:
            counter = CounterMetricFamily(f"inferplane_engine_{name}", doc,
                                          labels=["deployment"])
            for deployment, reading in last.items():
                if key in reading:
                    counter.add_metric([deployment], float(reading[key]))
            yield counter

    def describe(self) -> Iterable[Metric]:
        return ()
