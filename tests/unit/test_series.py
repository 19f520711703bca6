"""The dashboard's figures over time (ledger/series.py), on hand-made rows and on real SQLite
and PostgreSQL stores filtered by tenant and model."""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any

import pytest

from inferplane.ledger import series
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store

T0 = 1_700_002_800.0  # a multiple of 3600: bucket starts line up with it


def record(i: int, **changes: Any) -> UsageRecord:
    base = UsageRecord(
        id=f"r{i}", ts=T0 + i, endpoint="/v1/chat/completions", model="chat",
        deployment="chat-a", provider="openai", prompt_tokens=10, completion_tokens=5,
        ttft_ms=100.0, latency_ms=500.0, status=200, error_type=None, finish_reason="stop",
        stream=True, engine_seconds=0.0, cost_usd=0.01, energy_j=36.0, co2_g=0.5, water_l=0.1,
        tenant="acme", version="chat-v1")
    return replace(base, **changes)


def row(r: UsageRecord) -> dict[str, Any]:
    data = asdict(r)
    return {name: data[name] for name in series.COLUMNS}


def test_buckets_cover_the_window_and_sum_to_the_totals() -> None:
    rows = [row(record(i, ts=T0 + 600 * i, cost_usd=0.01 * (i + 1))) for i in range(6)]
    out = series.aggregate(rows, T0, T0 + 3600, width=900)
    assert out["bucket_s"] == 900 and len(out["buckets"]) == 4
    assert [b["start"] for b in out["buckets"]] == [T0, T0 + 900, T0 + 1800, T0 + 2700]
    assert [b["requests"] for b in out["buckets"]] == [2, 1, 2, 1]  # 0,600 | 1200 | 1800,2400 |..
    assert sum(b["cost_usd"] for b in out["buckets"]) == pytest.approx(out["totals"]["cost_usd"])
    assert out["totals"]["cost_usd"] == pytest.approx(0.21)
    assert out["totals"]["total_tokens"] == 6 * 15


def test_records_outside_the_window_are_left_out() -> None:
    rows = [row(record(1, ts=T0 - 1)), row(record(2, ts=T0)), row(record(3, ts=T0 + 3600))]
    out = series.aggregate(rows, T0, T0 + 3600)
    assert out["totals"]["requests"] == 1


def test_empty_buckets_are_kept_with_no_percentiles() -> None:
    out = series.aggregate([row(record(0))], T0, T0 + 3600, width=600)
    empty = out["buckets"][3]
    assert empty["requests"] == 0 and empty["cost_usd"] == 0
    assert empty["latency_ms"] == {"p50": None, "p95": None, "p99": None}


def test_percentiles_per_bucket_are_nearest_rank() -> None:
    rows = [row(record(i, latency_ms=float(10 * (i + 1)), ttft_ms=float(i + 1)))
            for i in range(20)]
    out = series.aggregate(rows, T0, T0 + 60, width=60)
    bucket = out["buckets"][0]
    assert bucket["latency_ms"] == {"p50": 100.0, "p95": 190.0, "p99": 200.0}
    assert bucket["ttft_ms"] == {"p50": 10.0, "p95": 19.0, "p99": 20.0}


def test_itl_counts_only_streamed_records_with_two_tokens_or_more() -> None:
    rows = [row(record(0, ttft_ms=100.0, latency_ms=300.0, completion_tokens=5)),  # 50 ms
            row(record(1, stream=False)),
            row(record(2, completion_tokens=1)),
            row(record(3, ttft_ms=None, status=502, error_type="upstream_error"))]
    out = series.aggregate(rows, T0, T0 + 60)
    assert out["totals"]["itl_ms"] == {"p50": 50.0, "p95": 50.0, "p99": 50.0}


def test_errors_by_type_most_first_and_untyped_errors_by_status() -> None:
    rows = [row(record(0, status=429, error_type="rate_limit_error")),
            row(record(1, status=429, error_type="rate_limit_error")),
            row(record(2, status=500)), row(record(3))]
    out = series.aggregate(rows, T0, T0 + 60)
    assert out["errors"] == [{"type": "rate_limit_error", "requests": 2},
                             {"type": "http_500", "requests": 1}]
    assert out["totals"]["errors"] == 3


def test_breakdowns_most_expensive_first_and_none_for_no_value() -> None:
    rows = [row(record(0, tenant="acme", cost_usd=0.1)),
            row(record(1, tenant=None, cost_usd=0.3, version=None)),
            row(record(2, tenant="beta", cost_usd=0.2, deployment="chat-b"))]
    out = series.aggregate(rows, T0, T0 + 60)
    assert [g["name"] for g in out["breakdowns"]["tenant"]] == [None, "beta", "acme"]
    assert [g["name"] for g in out["breakdowns"]["deployment"]] == ["chat-a", "chat-b"]
    version = {g["name"]: g["requests"] for g in out["breakdowns"]["version"]}
    assert version == {"chat-v1": 2, None: 1}


def test_missing_energy_figures_add_nothing() -> None:
    rows = [row(record(0)), row(record(1, energy_j=None, co2_g=None, water_l=None))]
    totals = series.aggregate(rows, T0, T0 + 60)["totals"]
    assert (totals["energy_j"], totals["co2_g"], totals["water_l"]) == (36.0, 0.5, 0.1)


@pytest.mark.parametrize(("span", "width"), [(3_600, 60), (6 * 3_600, 300), (86_400, 900),
                                             (30 * 86_400, 6 * 3_600),
                                             (366 * 86_400, 7 * 86_400)])
def test_bucket_widths(span: float, width: int) -> None:
    assert series.bucket_width(span) == width
    assert span / width <= series.MAX_BUCKETS


def test_the_store_filters_by_tenant_and_model(store_url: str) -> None:
    store = Store.open(store_url)
    try:
        made = [record(0), record(1, tenant="beta"), record(2, model="embed"),
                record(3, tenant="beta", model="embed")]
        store.commit([r.to_dict() for r in made], "w", (0, 1))
        acme = list(store.records(T0, T0 + 60, series.COLUMNS, tenant="acme"))
        assert sorted(r["model"] for r in acme) == ["chat", "embed"]
        beta_embed = list(store.records(None, None, series.COLUMNS, tenant="beta",
                                        model="embed"))
        assert len(beta_embed) == 1 and beta_embed[0]["ts"] == T0 + 3
        out = series.aggregate(store.records(T0, T0 + 60, series.COLUMNS, model="chat"),
                               T0, T0 + 60)
        assert out["totals"]["requests"] == 2
    finally:
        store.close()
