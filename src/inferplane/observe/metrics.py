"""The gateway's Prometheus metrics, served at ``GET /metrics`` in the text format.

Every finished request is observed once, when its record is written (:meth:`Metrics.observe`):
the usage counters (``usage.py``), the timing histograms (``latency.py``), its retries, and
each of its attempts by outcome. Its label values are bounded first (``labels.py``). The
label children of each label set are looked up once and kept, so observing a request is a few
additions. The engines' load, the breakers' states and the drift verdicts (``drift.py``) are
read when scraped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from inferplane.ledger.record import UsageRecord
from inferplane.observe.breakers import BreakerGauges
from inferplane.observe.budgets import BudgetGauges
from inferplane.observe.drift import DriftGauges
from inferplane.observe.engines import EngineGauges, Reporting
from inferplane.observe.governance import GovernanceGauges, GovernanceView
from inferplane.observe.incidents import IncidentGauges
from inferplane.observe.labels import Bounds
from inferplane.observe.latency import LatencyHistograms, LatencySeries
from inferplane.observe.usage import LABELS, Key, UsageCounters, UsageSeries
from inferplane.request_accounting import Timings
from inferplane.routing.health import DeploymentStats
from inferplane.tenancy.budget import BudgetStanding

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Series:
    """The label children of one label set."""

    __slots__ = ("latency", "retries", "usage")

    def __init__(self, usage: UsageSeries, latency: LatencySeries, retries: Counter) -> None:
        self.usage = usage
        self.latency = latency
        self.retries = retries


class Metrics:
    """``models``: the names a request may give (others count as ``unknown``);
    ``providers`` and ``stats``: the deployments, read at scrape time."""

    def __init__(self, models: Iterable[str] = (),
                 providers: Mapping[str, Reporting] | None = None,
                 stats: Mapping[str, DeploymentStats] | None = None,
                 registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry(auto_describe=True)
        self.bounds = Bounds(models)
        self.usage = UsageCounters(r)
        self.latency = LatencyHistograms(r)
        self.retries = Counter("inferplane_retries", "Attempts after a request's first, on "
                               "the same deployment or another.", LABELS, registry=r)
        self.attempts = Counter("inferplane_attempts", "Attempts at a deployment, by outcome "
                                "(ok, error, error_after_start).", ("deployment", "outcome"),
                                registry=r)
        self.cache = Counter("inferplane_cache_requests", "Requests of models with a response "
                             "cache, by outcome (hit-exact, hit-semantic, miss, bypass).",
                             ("model", "outcome"),
                             registry=r)
        self.cache_saved = Counter("inferplane_cache_saved_usd", "What the answers served from "
                                   "the response cache first cost, in US dollars.", ("model",),
                                   registry=r)
        self.engines = EngineGauges(providers or {})
        r.register(self.engines)
        r.register(BreakerGauges(stats or {}))
        self.incidents: list[tuple[str, float]] = []  # (system, deadline), set by the gateway
        r.register(IncidentGauges(lambda: self.incidents))
        self.drift = DriftGauges()  # its source set by the gateway where drift is on
        r.register(self.drift)
        self.governance: Callable[[], GovernanceView] = GovernanceView  # set by the gateway
        r.register(GovernanceGauges(lambda: self.governance()))
        self.budgets: list[BudgetStanding] = []  # set by the gateway
        r.register(BudgetGauges(lambda: self.budgets))
        self._series: dict[Key, _Series] = {}
        self._answered: dict[tuple[Key, int], Counter] = {}
        self._attempted: dict[tuple[str, str], Counter] = {}

    def _for(self, key: Key) -> _Series:
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = _Series(
                self.usage.children(key), self.latency.children(key),
                self.retries.labels(*key))
        return series

    def observe(self, rec: UsageRecord, timings: Timings) -> None:
        key: Key = (self.bounds.model(rec.model), rec.deployment or "", rec.provider or "",
                    rec.region or "", rec.tenant or "")
        answered = self._answered.get((key, rec.status))
        if answered is None:
            answered = self._answered[(key, rec.status)] = self.usage.requests.labels(
                *key, self.bounds.status(rec.status))
        answered.inc()
        series = self._for(key)
        self.latency.observe(series.latency, rec, timings)
        if len(timings.attempts) > 1:
            series.retries.inc(len(timings.attempts) - 1)
        for entry in timings.attempts:
            self._attempt(entry["deployment"], entry["outcome"]).inc()
        if rec.deployment is not None:
            self.usage.count(series.usage, key, rec)
        if rec.cache is not None:  # one of cache/policy.py's few outcomes
            self.cache.labels(key[0], rec.cache).inc()
            if rec.cache_saved_usd:
                self.cache_saved.labels(key[0]).inc(rec.cache_saved_usd)

    def _attempt(self, deployment: str, outcome: str) -> Counter:
        counter = self._attempted.get((deployment, outcome))
        if counter is None:
            counter = self._attempted[(deployment, outcome)] = self.attempts.labels(
                deployment, outcome)
        return counter

    async def refresh(self) -> None:
        """Read what is read at scrape time and must be awaited (the engines' load)."""
        await self.engines.refresh()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
