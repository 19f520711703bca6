"""Prometheus metrics of what the ledger records: requests, tokens, cost, energy, carbon, water.

Every usage record the gateway writes is also counted here, under the labels a report groups
by (model, deployment, provider, region, tenant), so a dashboard and ``inferplane report``
agree. Served at ``GET /metrics`` in the Prometheus text format. The label children of each
label set are looked up once and kept, so counting a request is a few additions.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from inferplane.ledger.record import UsageRecord

CONTENT_TYPE = CONTENT_TYPE_LATEST
LABELS = ("model", "deployment", "provider", "region", "tenant")
TOKEN_KINDS = ("prompt", "completion", "cached", "cache_write", "reasoning")
_Key = tuple[str, str, str, str, str]


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("inferplane_requests", "Requests answered, by HTTP status.",
                                (*LABELS, "status"), registry=r)
        self.tokens = Counter("inferplane_tokens", "Tokens used, by kind (prompt includes "
                              "cached and cache_write; completion includes reasoning).",
                              (*LABELS, "kind"), registry=r)
        self.cost = Counter("inferplane_cost_usd", "Cost in US dollars.", LABELS, registry=r)
        self.energy = Counter("inferplane_energy_joules", "Energy in joules, by method "
                              "(measured, modelled, estimated).", (*LABELS, "method"), registry=r)
        self.co2 = Counter("inferplane_co2_grams", "Carbon dioxide in grams.", LABELS,
                           registry=r)
        self.water = Counter("inferplane_water_litres", "Water in litres.", LABELS, registry=r)
        self.cache = Counter("inferplane_cache_requests", "Requests of models with a response "
                             "cache, by outcome (hit-exact, miss, bypass).", ("model", "outcome"),
                             registry=r)
        self.cache_saved = Counter("inferplane_cache_saved_usd", "What the answers served from "
                                   "the response cache first cost, in US dollars.", ("model",),
                                   registry=r)
        self._children: dict[_Key, tuple[Counter, ...]] = {}
        self._answered: dict[tuple[_Key, int], Counter] = {}

    def _for(self, key: _Key) -> tuple[Counter, ...]:
        children = self._children.get(key)
        if children is None:
            children = (*(self.tokens.labels(*key, kind) for kind in TOKEN_KINDS),
                        self.cost.labels(*key), self.co2.labels(*key), self.water.labels(*key))
            self._children[key] = children
        return children

    def observe(self, rec: UsageRecord) -> None:
        key: _Key = (rec.model, rec.deployment or "", rec.provider or "", rec.region or "",
                     rec.tenant or "")
        answered = self._answered.get((key, rec.status))
        if answered is None:
            answered = self._answered[(key, rec.status)] = self.requests.labels(
                *key, str(rec.status))
        answered.inc()
        if rec.cache is not None:
            self.cache.labels(rec.model, rec.cache).inc()
            if rec.cache_saved_usd:
                self.cache_saved.labels(rec.model).inc(rec.cache_saved_usd)
        if rec.deployment is None:
            return
        prompt, completion, cached, written, reasoning, cost, co2, water = self._for(key)
        for counter, n in ((prompt, rec.prompt_tokens), (completion, rec.completion_tokens),
                           (cached, rec.cached_tokens), (written, rec.cache_write_tokens),
                           (reasoning, rec.reasoning_tokens)):
            if n:
                counter.inc(n)
        if rec.cost_usd:
            cost.inc(rec.cost_usd)
        if rec.energy_j is not None:
            self.energy.labels(*key, rec.energy_method or "").inc(rec.energy_j)
            co2.inc(rec.co2_g or 0.0)
            water.inc(rec.water_l or 0.0)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
