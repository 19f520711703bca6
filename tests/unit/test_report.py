"""Usage reports: grouping, totals, per-1M-token figures, missing values, days, series, windows."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, strategies as st

from inferplane.cli.report_cmd import report_csv, sig
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.report import (
    COLUMNS,
    DIMENSIONS,
    aggregate,
    day_of,
    parse_time,
    per_mtok,
    series,
)
from inferplane.ledger.store import Store

MIDNIGHT = datetime(2024, 3, 10, tzinfo=UTC).timestamp()  # 2024-03-10 00:00 UTC
SUMMED = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens",
          "reasoning_tokens", "total_tokens", "energy_unknown_requests")
FLOATS = ("cost_usd", "energy_j", "co2_g", "water_l")


def record(i: int, **changes: Any) -> UsageRecord:
    base = UsageRecord(
        id=f"req-{i:06d}", ts=MIDNIGHT + 60.0 * i, endpoint="/v1/chat/completions",
        model="chat", deployment="local", provider="llamacpp", prompt_tokens=600,
        completion_tokens=400, ttft_ms=5.0, latency_ms=100.0, status=200, error_type=None,
        finish_reason="stop", stream=False, engine_seconds=0.5, cost_usd=0.002,
        cached_tokens=100, reasoning_tokens=50, region="eu-west-1", energy_j=360.0,
        energy_method="measured", co2_g=0.05, water_l=0.001, tenant="acme",
    )
    return replace(base, **changes)


def test_groups_by_model_with_sums_and_totals() -> None:
    rows = [record(0), record(1, model="big", cost_usd=0.01, status=502), record(2)]
    report = aggregate(rows, by="model")
    groups = dict(report.grouped("model"))
    assert list(groups) == ["big", "chat"]
    chat, big = groups["chat"].to_dict(), groups["big"].to_dict()
    assert chat["requests"] == 2 and chat["errors"] == 0
    assert big["requests"] == 1 and big["errors"] == 1
    assert chat["prompt_tokens"] == 1200 and chat["completion_tokens"] == 800
    assert chat["cached_tokens"] == 200 and chat["reasoning_tokens"] == 100
    assert chat["total_tokens"] == 2000
    assert chat["cost_usd"] == pytest.approx(0.004)
    totals = report.totals.to_dict()
    assert totals["requests"] == 3 and totals["errors"] == 1
    assert totals["cost_usd"] == pytest.approx(0.014)
    assert totals["energy_j"] == pytest.approx(3 * 360.0)


@pytest.mark.parametrize("by", DIMENSIONS)
def test_totals_equal_the_sum_of_the_groups_along_every_dimension(by: str) -> None:
    rows = [
        record(0), record(1, tenant=None, region=None, deployment=None, provider=None),
        record(2, model="big", ts=MIDNIGHT - 1, energy_j=None, co2_g=None, water_l=None),
        record(3, tenant="beta", energy_method="estimated", status=429),
    ]
    report = aggregate(rows, by=by)
    groups = [tally.to_dict() for _, tally in report.grouped(by)]
    totals = report.totals.to_dict()
    for name in SUMMED:
        assert totals[name] == sum(g[name] for g in groups), name
    for name in FLOATS:
        assert totals[name] == pytest.approx(sum(g[name] for g in groups)), name


def test_figures_per_million_tokens() -> None:
    totals = aggregate([record(0), record(1)]).totals.to_dict()
    # 2 records x 1000 tokens; 0.002 USD, 360 J (0.0001 kWh), 0.05 g, 0.001 L each
    assert totals["cost_usd_per_mtok"] == pytest.approx(2.0)
    assert totals["energy_kwh_per_mtok"] == pytest.approx(0.1)
    assert totals["co2_g_per_mtok"] == pytest.approx(50.0)
    assert totals["water_l_per_mtok"] == pytest.approx(1.0)
    assert per_mtok(1.0, 0) is None


def test_no_tokens_gives_no_per_million_figures() -> None:
    rows = [record(0, prompt_tokens=0, completion_tokens=0, cached_tokens=0,
                   reasoning_tokens=0, status=400)]
    totals = aggregate(rows).totals.to_dict()
    assert totals["total_tokens"] == 0
    for name in ("cost_usd_per_mtok", "energy_kwh_per_mtok", "co2_g_per_mtok",
                 "water_l_per_mtok"):
        assert totals[name] is None


def test_missing_values_are_none_keys_and_add_nothing() -> None:
    rows = [record(0), record(1, tenant=None, energy_j=None, energy_method=None, co2_g=None,
                               water_l=None, cost_usd=0.004)]
    report = aggregate(rows, by="tenant")
    assert [key for key, _ in report.grouped("tenant")] == ["acme", None]  # None last
    data = report.to_dict("tenant")
    assert data["groups"][1]["key"] is None
    totals = data["totals"]
    assert totals["energy_j"] == 360.0 and totals["co2_g"] == pytest.approx(0.05)
    assert totals["energy_unknown_requests"] == 1
    # the intensity counts only the tokens of the record that has the figure
    assert totals["energy_kwh_per_mtok"] == pytest.approx(0.1)
    assert totals["co2_g_per_mtok"] == pytest.approx(50.0)
    assert totals["cost_usd_per_mtok"] == pytest.approx(3.0)  # cost is known for both
    unknown = data["groups"][1]
    assert unknown["energy_j"] == 0.0 and unknown["energy_kwh_per_mtok"] is None


def test_day_groups_split_at_utc_midnight_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        rows = [record(0, ts=MIDNIGHT - 0.5), record(1, ts=MIDNIGHT), record(2, ts=MIDNIGHT + 1)]
        groups = aggregate(rows, by="day").grouped("day")
    finally:
        monkeypatch.undo()
        time.tzset()
    assert [(day, t.requests) for day, t in groups] == [("2024-03-09", 1), ("2024-03-10", 2)]
    assert day_of(MIDNIGHT - 0.001) == "2024-03-09"


def test_energy_breakdown_by_method() -> None:
    rows = [
        record(0, energy_j=100.0, energy_method="measured"),
        record(1, energy_j=30.0, energy_method="modelled"),
        record(2, energy_j=5.0, energy_method="estimated"),
        record(3, energy_j=2.0, energy_method=None),
        record(4, energy_j=None, energy_method=None),
        record(5, energy_j=1.0, energy_method="measured"),
    ]
    totals = aggregate(rows).totals.to_dict()
    assert totals["energy_j_by_method"] == {
        "measured": 101.0, "modelled": 30.0, "estimated": 5.0, "other": 2.0,
    }
    assert totals["energy_j"] == sum(totals["energy_j_by_method"].values())
    assert totals["energy_unknown_requests"] == 1


def test_mappings_and_records_give_the_same_report() -> None:
    records = [record(0), record(1, tenant=None, model="big"), record(2, energy_j=None)]
    mappings = [{name: getattr(r, name) for name in COLUMNS} for r in records]
    for by in DIMENSIONS:
        assert aggregate(records, by).to_dict(by) == aggregate(mappings, by).to_dict(by)


def test_several_dimensions_in_one_pass_and_unknown_dimension() -> None:
    report = aggregate([record(0), record(1, deployment="cloud")], by=["model", "deployment"])
    assert [k for k, _ in report.grouped("deployment")] == ["cloud", "local"]
    assert [k for k, _ in report.grouped("model")] == ["chat"]
    with pytest.raises(ValueError, match="cannot group by 'colour'"):
        aggregate([], by="colour")


def test_an_empty_report_has_zero_totals_and_no_groups() -> None:
    report = aggregate([], by="model")
    data = report.to_dict("model")
    assert data["groups"] == [] and data["totals"]["requests"] == 0
    assert data["totals"]["cost_usd"] == 0.0 and data["totals"]["cost_usd_per_mtok"] is None
    assert report.series().points == [] and report.first_ts is None


def test_series_is_hourly_under_two_days_and_daily_beyond() -> None:
    hourly = aggregate([record(0), record(1), record(125, cost_usd=0.5)])  # 0:00, 0:01, 2:05
    s = hourly.series()
    assert s.unit == "hour"
    assert [(p.start.hour, p.requests) for p in s.points] == [(0, 2), (1, 0), (2, 1)]
    assert sum(p.cost_usd for p in s.points) == pytest.approx(hourly.totals.cost_usd)
    daily = aggregate([record(0), record(3 * 24 * 60, energy_j=1.0)])  # three days later
    s = daily.series()
    assert s.unit == "day" and len(s.points) == 4
    assert [p.start.day for p in s.points] == [10, 11, 12, 13]
    assert [p.energy_j for p in s.points] == [360.0, 0.0, 0.0, 1.0]
    assert series({}).points == []


def test_parse_time_accepts_iso_and_spans() -> None:
    now = 1_700_000_000.0
    assert parse_time("7d", now) == now - 7 * 86_400
    assert parse_time("24h", now) == now - 86_400
    assert parse_time("30m", now) == now - 1_800
    assert parse_time("1.5h", now) == now - 5_400
    assert parse_time("2024-03-10", now) == MIDNIGHT
    assert parse_time("2024-03-10T00:00:00Z", now) == MIDNIGHT
    assert parse_time("2024-03-10 02:00+02:00", now) == MIDNIGHT
    for bad in ("", "7 days", "last week", "-3d"):
        with pytest.raises(ValueError):
            parse_time(bad, now)


def test_csv_has_a_row_per_group_and_a_total() -> None:
    report = aggregate([record(0), record(1, tenant=None)], by="tenant")
    rows = list(csv.DictReader(io.StringIO(report_csv(report, "tenant"))))
    assert [row["tenant"] for row in rows] == ["acme", "-", "TOTAL"]
    assert rows[-1]["requests"] == "2" and float(rows[-1]["cost_usd"]) == pytest.approx(0.004)
    assert float(rows[-1]["energy_j_measured"]) == 720.0


def test_sig_keeps_six_significant_digits() -> None:
    assert sig(0.000001234567) == "0.00000123457"
    assert sig(2.5) == "2.50000"
    assert sig(-0.5) == "-0.500000"


_row = st.fixed_dictionaries({
    "ts": st.floats(1.6e9, 1.8e9),
    "model": st.sampled_from(["a", "b", "c"]),
    "tenant": st.sampled_from(["x", "y", None]),
    "deployment": st.sampled_from(["d1", None]),
    "provider": st.just("p"),
    "region": st.sampled_from(["eu", "us", None]),
    "status": st.sampled_from([200, 400, 499, 502]),
    "prompt_tokens": st.integers(0, 10_000),
    "completion_tokens": st.integers(0, 10_000),
    "cached_tokens": st.integers(0, 100),
    "reasoning_tokens": st.integers(0, 100),
    "cost_usd": st.floats(0, 1),
    "energy_j": st.none() | st.floats(0, 1e4),
    "energy_method": st.sampled_from(["measured", "modelled", "estimated", None]),
    "co2_g": st.none() | st.floats(0, 10),
    "water_l": st.none() | st.floats(0, 1),
})


@given(st.lists(_row, max_size=40), st.sampled_from(DIMENSIONS))
def test_property_totals_are_sums_of_groups_and_of_records(rows: list[dict[str, Any]],
                                                          by: str) -> None:
    report = aggregate(rows, by)
    totals = report.totals.to_dict()
    groups = [t.to_dict() for _, t in report.grouped(by)]
    assert totals["requests"] == len(rows) == sum(g["requests"] for g in groups)
    assert totals["errors"] == sum(r["status"] >= 400 for r in rows)
    assert totals["total_tokens"] == sum(r["prompt_tokens"] + r["completion_tokens"] for r in rows)
    assert totals["energy_unknown_requests"] == sum(r["energy_j"] is None for r in rows)
    assert totals["energy_j"] == pytest.approx(sum(r["energy_j"] or 0.0 for r in rows))
    for name in FLOATS:
        assert totals[name] == pytest.approx(sum(g[name] for g in groups))
    assert sum(p.requests for p in report.series().points) == len(rows)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path}/inferplane.db")
    yield s
    s.close()


def test_store_records_filters_the_window_in_sql(store: Store) -> None:
    rows = [record(i).to_dict() for i in range(10)]  # one a minute from midnight
    store.commit(rows, "wal-test", (0, 0))
    since, until = MIDNIGHT + 120.0, MIDNIGHT + 300.0  # inclusive, exclusive
    got = list(store.records(since, until, COLUMNS))
    assert [row["ts"] for row in got] == [MIDNIGHT + 60.0 * i for i in (2, 3, 4)]
    assert set(got[0].keys()) == set(COLUMNS)
    assert len(list(store.records())) == 10
    assert len(list(store.records(since=MIDNIGHT + 540.0))) == 1
    assert list(store.records(until=MIDNIGHT)) == []
    report = aggregate(store.records(None, None, COLUMNS), "model")
    assert report.totals.requests == 10 and report.totals.energy_j == pytest.approx(3600.0)
