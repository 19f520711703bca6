"""Counters of what the ledger records: requests, tokens, cost, energy, carbon, water.

Every usage record is counted under the labels a report groups by (model, deployment,
provider, region, tenant), so a dashboard and ``inferplane report`` agree.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from inferplane.ledger.record import UsageRecord

LABELS = ("model", "deployment", "provider", "region", "tenant")
TOKEN_KINDS = ("prompt", "completion", "cached", "cache_write", "reasoning")
Key = tuple[str, str, str, str, str]
UsageSeries = tuple[Counter, ...]  # the label children of one label set


class UsageCounters:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
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

    def children(self, key: Key) -> UsageSeries:
        return (*(self.tokens.labels(*key, kind) for kind in TOKEN_KINDS),
                self.cost.labels(*key), self.co2.labels(*key), self.water.labels(*key))

    def count(self, series: UsageSeries, key: Key, rec: UsageRecord) -> None:
        """What a request that reached a deployment used."""
        prompt, completion, cached, written, reasoning, cost, co2, water = series
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
