"""The gateway's Prometheus metrics: bounded labels, timing histograms, attempts, engine and
breaker gauges."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferplane.ledger.record import UsageRecord
from inferplane.observe.engines import Reporting
from inferplane.observe.latency import OVERHEAD_BUCKETS, TTFT_BUCKETS
from inferplane.observe.metrics import Metrics
from inferplane.request_accounting import Timings
from inferplane.routing.health import BreakerConfig, CircuitBreaker, DeploymentStats

NO_ATTEMPT = Timings(0.0, None, [])


def record(model: str = "m", *, deployment: str | None = "d1", status: int = 200,
           ttft_ms: float | None = 100.0, latency_ms: float = 500.0, completion: int = 5,
           tenant: str | None = None) -> UsageRecord:
    return UsageRecord(
        id="r", ts=0.0, endpoint="chat.completions", model=model, deployment=deployment,
        provider="openai" if deployment else None, prompt_tokens=10,
        completion_tokens=completion, ttft_ms=ttft_ms, latency_ms=latency_ms, status=status,
        error_type=None, finish_reason="stop", stream=True, engine_seconds=0.0, cost_usd=0.0,
        region="eu-west-1" if deployment else None, tenant=tenant)


def upstream(seconds: float, *outcomes: tuple[str, str]) -> Timings:
    entries = [{"deployment": d, "outcome": o} for d, o in outcomes or (("d1", "ok"),)]
    return Timings(0.002, seconds, entries)


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(metrics: Metrics, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(metrics).items() if n == name and wanted <= ls)


def test_unknown_models_share_one_label_and_the_series_stop_growing() -> None:
    metrics = Metrics(["m", "alias"])
    metrics.observe(record("junk-0", deployment=None, status=404, ttft_ms=None), NO_ATTEMPT)
    before = len(samples(metrics))
    for i in range(1, 1000):
        metrics.observe(record(f"junk-{i}", deployment=None, status=404, ttft_ms=None),
                        NO_ATTEMPT)
    after = samples(metrics)
    assert len(after) == before
    assert not any("junk" in v for _, labels in after for _, v in labels)
    assert value(metrics, "inferplane_requests_total", model="unknown", status="404") == 1000


def test_known_models_and_statuses_keep_their_own_labels() -> None:
    metrics = Metrics(["m", "alias"])
    metrics.observe(record("alias"), upstream(0.4))
    metrics.observe(record("m", status=418), upstream(0.4))
    metrics.observe(record("m", status=99999), upstream(0.4))
    assert value(metrics, "inferplane_requests_total", model="alias", status="200") == 1
    assert value(metrics, "inferplane_requests_total", model="m", status="4xx") == 1
    assert value(metrics, "inferplane_requests_total", model="m", status="other") == 1


def test_histograms_observe_the_records_timings() -> None:
    metrics = Metrics(["m"])
    # 100 ms to the first token, 500 ms in all, 5 tokens: 100 ms per token after the first;
    # 499.2 ms upstream: 0.8 ms of the gateway's own
    metrics.observe(record(ttft_ms=100.0, latency_ms=500.0, completion=5), upstream(0.4992))
    series = {"model": "m", "deployment": "d1"}

    def bucket(name: str, le: float) -> float:
        return value(metrics, f"inferplane_{name}_bucket", le=repr(le), **series)

    sums = {"time_to_first_token": 0.1, "time_per_output_token": 0.1,
            "request_duration": 0.5, "upstream_duration": 0.4992, "gateway_overhead": 0.0008,
            "request_queue_time": 0.002}
    for name, expected in sums.items():
        got = value(metrics, f"inferplane_{name}_seconds_sum", **series)
        assert got == pytest.approx(expected), name
    assert bucket("gateway_overhead_seconds", 0.00075) == 0
    assert bucket("gateway_overhead_seconds", 0.001) == 1
    assert bucket("time_to_first_token_seconds", 0.075) == 0
    assert bucket("time_to_first_token_seconds", 0.1) == 1
    assert OVERHEAD_BUCKETS[0] < 0.001 and TTFT_BUCKETS[-1] >= 60


def test_a_request_without_tokens_or_attempts_has_only_a_duration() -> None:
    metrics = Metrics(["m"])
    metrics.observe(record(deployment=None, status=400, ttft_ms=None, completion=0),
                    NO_ATTEMPT)
    metrics.observe(record(ttft_ms=50.0, completion=1), upstream(0.4))
    assert value(metrics, "inferplane_request_duration_seconds_count") == 2
    assert value(metrics, "inferplane_time_to_first_token_seconds_count") == 1
    assert value(metrics, "inferplane_time_per_output_token_seconds_count") == 0
    assert value(metrics, "inferplane_upstream_duration_seconds_count") == 1
    assert value(metrics, "inferplane_gateway_overhead_seconds_count") == 1


def test_attempts_by_outcome_and_retries() -> None:
    metrics = Metrics(["m"])
    metrics.observe(record(deployment="d2"),
                    upstream(1.0, ("d1", "error"), ("d1", "error"), ("d2", "ok")))
    metrics.observe(record(), upstream(1.0))
    assert value(metrics, "inferplane_attempts_total", deployment="d1", outcome="error") == 2
    assert value(metrics, "inferplane_attempts_total", deployment="d2", outcome="ok") == 1
    assert value(metrics, "inferplane_attempts_total", deployment="d1", outcome="ok") == 1
    assert value(metrics, "inferplane_retries_total", deployment="d2") == 2
    assert value(metrics, "inferplane_retries_total", deployment="d1") == 0


class Engine:
    def __init__(self, status: dict[str, Any]) -> None:
        self.reading = status

    async def status(self) -> dict[str, Any]:
        return self.reading


class Stuck:
    async def status(self) -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")


def test_engine_gauges_read_the_engines_status(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inferplane.observe.engines.STATUS_TIMEOUT_S", 0.05)
    engine = Engine({"ready": True, "running": 3, "waiting": 2, "kv_cache_usage": 0.25,
                     "prefix_cache_queries": 400, "prefix_cache_hits": 120})
    providers: dict[str, Reporting] = {"local": engine, "hosted": Engine({"ready": True}),
                                       "stuck": Stuck()}
    metrics = Metrics(["m"], providers)
    asyncio.run(metrics.refresh())
    local = {"deployment": "local"}
    assert value(metrics, "inferplane_engine_num_requests_running", **local) == 3
    assert value(metrics, "inferplane_engine_num_requests_waiting", **local) == 2
    assert value(metrics, "inferplane_engine_kv_cache_usage_perc", **local) == 0.25
    assert value(metrics, "inferplane_engine_prefix_cache_queries_total", **local) == 400
    assert value(metrics, "inferplane_engine_prefix_cache_hits_total", **local) == 120
    engines = {dict(ls).get("deployment") for (n, ls) in samples(metrics)
               if n.startswith("inferplane_engine_")}
    assert engines == {"local"}  # a remote API and an engine that did not answer: none
    engine.reading = {"ready": False}
    asyncio.run(metrics.refresh())
    assert value(metrics, "inferplane_engine_num_requests_running", **local) == 0


def test_breaker_state_is_one_hot_per_deployment() -> None:
    tripping = CircuitBreaker(BreakerConfig(window=2, min_requests=1, cooldown_s=3600.0,
                                            max_cooldown_s=3600.0))
    failing = DeploymentStats(breaker=tripping)
    now = time.monotonic()  # the router's clock
    failing.start(now)
    failing.end(now, ok=False)  # opens it, for an hour
    metrics = Metrics(["m"], stats={"bad": failing, "good": DeploymentStats()})
    open_ = {(dict(ls)["deployment"], dict(ls)["state"]): v for (n, ls), v
             in samples(metrics).items() if n == "inferplane_circuit_breaker_state"}
    assert open_ == {("bad", "open"): 1, ("bad", "closed"): 0, ("bad", "half-open"): 0,
                     ("good", "open"): 0, ("good", "closed"): 1, ("good", "half-open"): 0}
