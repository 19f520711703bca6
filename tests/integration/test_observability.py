"""/metrics under a real Prometheus: what it computes over the histograms agrees with the
ledger, and no client can multiply the series."""

from __future__ import annotations

import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from inferplane.observe.latency import TTFT_BUCKETS
from tests.upstream.process import UpstreamProcess

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway
from .prometheus_proc import Prometheus, running_prometheus

KEY = "sk-upstream-observability"
SLOW, FAST = 1200, 120  # injected milliseconds before the first token


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("obs", api_key=KEY) as up:
        yield up


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamProcess
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("observability"))
    config = (ledger_yaml(root) + "models:\n  - name: chat\n"
              "deployments:\n"
              f"  - {{name: hosted-1, model: chat, provider: openai, api_key: 'env:UPSTREAM_KEY',\n"
              f"     base_url: '{upstream.url}/v1', upstream_model: echo-1}}\n")
    with running_gateway(root, config, env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


def series(gateway: GatewayProc) -> set[tuple[str, frozenset[tuple[str, str]]]]:
    text = httpx.get(gateway.url + "/metrics", timeout=10).text
    return {(s.name, frozenset(s.labels.items()))
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_unknown_model_names_add_no_series(gateway: GatewayProc) -> None:
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        def ask(model: str) -> int:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            return client.post("/v1/chat/completions", json=body).status_code

        assert ask("junk-0") == 404
        before = series(gateway)
        assert {ask(f"junk-{i}") for i in range(1, 1001)} == {404}
    after = series(gateway)
    assert after == before
    assert not any("junk" in value for _, labels in after for _, value in labels)


def stream(gateway: GatewayProc, n: int) -> list[str]:
    """``n`` streamed chat requests, eight at a time; their request ids."""
    def one(i: int) -> str:
        body = {"model": "chat", "stream": True, "max_tokens": 8,
                "messages": [{"role": "user", "content": f"tell me about the sea {i}"}]}
        with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body,
                          timeout=30) as r:
            assert r.status_code == 200
            for _ in r.iter_bytes():
                pass
            return r.headers["x-request-id"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(n)))


def bucket_of(value: float, bounds: tuple[float, ...]) -> tuple[float, float]:
    """The histogram bucket (lower, upper] that ``value`` falls in."""
    lower = 0.0
    for upper in (*bounds, math.inf):
        if value <= upper:
            return lower, upper
        lower = upper
    raise AssertionError(value)


def nearest_rank(values: list[float], q: float) -> float:
    return sorted(values)[math.ceil(q * len(values)) - 1]


def test_promql_over_the_histograms_agrees_with_the_ledger(
        gateway: GatewayProc, upstream: UpstreamProcess, tmp_path: Path) -> None:
    counted = "sum(inferplane_time_to_first_token_seconds_count)"
    with running_prometheus(tmp_path / "prometheus", f"127.0.0.1:{gateway.port}") as prom:
        upstream.add_faults({"kind": "slow_first_token", "delay_ms": FAST, "count": 10})
        stream(gateway, 10)  # a first batch, scraped before the second starts
        prom.wait_for(counted, 10)
        # 5 slow in 40: the 95th percentile is among the slow ones, the median a fast one
        upstream.add_faults({"kind": "slow_first_token", "delay_ms": SLOW, "count": 5},
                            {"kind": "slow_first_token", "delay_ms": FAST, "count": 35})
        ids = set(stream(gateway, 40))
        prom.wait_for(counted, 50)
        rows = [gateway.ledger_row(i) for i in ids]
        ttft = [r["ttft_ms"] / 1000 for r in rows]
        for q in (0.95, 0.5):
            promql = (f"histogram_quantile({q}, sum by (le) "
                      "(rate(inferplane_time_to_first_token_seconds_bucket[1m])))")
            estimate = prom.scalar(promql)
            assert estimate is not None
            lower, upper = bucket_of(estimate, TTFT_BUCKETS)
            truth = nearest_rank(ttft, q)
            assert lower <= truth <= upper, (q, estimate, truth, sorted(ttft))
        assert nearest_rank(ttft, 0.95) >= SLOW / 1000 > nearest_rank(ttft, 0.5)
        check_timings(prom, rows)


def check_timings(prom: Prometheus, rows: list[dict[str, Any]]) -> None:
    """The upstream time holds the injected delay, and the gateway's overhead is what the
    request took besides: together they are the request's duration (of the requests that
    reached the deployment)."""
    def total(name: str) -> float:
        value = prom.scalar(f'sum(inferplane_{name}_sum{{deployment="hosted-1"}})')
        assert value is not None, name
        return value

    duration, upstream, overhead = (total(n) for n in (
        "request_duration_seconds", "upstream_duration_seconds", "gateway_overhead_seconds"))
    assert upstream >= (5 * SLOW + 45 * FAST) / 1000
    assert overhead == pytest.approx(duration - upstream, rel=1e-6)
    p50 = prom.scalar("histogram_quantile(0.5, sum by (le) "
                      "(inferplane_gateway_overhead_seconds_bucket))")
    assert p50 is not None and p50 < 0.25  # the gateway's own work, not the upstream's
    ledger_latency = sum(r["latency_ms"] for r in rows) / 1000
    assert ledger_latency <= duration  # the 40 of the second batch among the 50
