"""Candidate and RequestProfile: validation, load, expected cost, formatting."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.routing.candidate import expected_cost_usd, max_cost_usd, seconds, usd
from tests.unit.routing.factories import cand, profile


@pytest.mark.parametrize("fields", [
    {"weight": 0.0}, {"weight": -1.0}, {"weight": float("nan")}, {"in_flight": -1},
    {"capacity": 0}, {"input_per_mtok": -0.1}, {"output_per_mtok": float("inf")},
    {"ttft_s": -1.0}, {"error_rate": 1.5}, {"pue": 0.9},
])
def test_candidate_rejects_invalid_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        cand("a", **fields)


@pytest.mark.parametrize("fields", [
    {"prompt_tokens": -1}, {"cached_share": 1.2}, {"max_price_usd": -0.01}, {"slo_ttft_s": -1.0},
])
def test_profile_rejects_invalid_fields(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        profile(**fields)


def test_load_is_share_of_capacity_when_known_else_in_flight_count() -> None:
    assert cand("a", in_flight=2, capacity=8).load == 0.25
    assert cand("a", in_flight=2).load == 2.0


def test_expected_cost_counts_the_cached_prefix_at_the_cached_price() -> None:
    c = cand("a", input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5)
    full = (1000 * 2.0 + 200 * 8.0) / 1e6
    assert expected_cost_usd(c, profile()) == pytest.approx(full)
    half_cached = (500 * 2.0 + 500 * 0.5 + 200 * 8.0) / 1e6
    assert expected_cost_usd(c, profile(cached_share=0.5)) == pytest.approx(half_cached)


def test_no_cached_price_means_no_discount() -> None:
    c = cand("a", input_per_mtok=2.0, output_per_mtok=8.0)
    assert expected_cost_usd(c, profile(cached_share=0.9)) == pytest.approx(
        expected_cost_usd(c, profile()))


def test_cap_cost_ignores_the_cache_estimate() -> None:
    c = cand("a", input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.1)
    assert max_cost_usd(c, profile(cached_share=1.0)) == pytest.approx((2000 + 1600) / 1e6)


@pytest.mark.parametrize(("amount", "text"), [
    (0.0123, "$0.0123"), (0.01, "$0.01"), (0.00042, "$0.00042"), (0.000001, "$0.000001"),
    (0.5, "$0.5"), (1234.5, "$1,234.50"), (0.0, "$0"),
])
def test_usd(amount: float, text: str) -> None:
    assert usd(amount) == text


@pytest.mark.parametrize(("value", "text"), [
    (0.31, "0.31s"), (0.05, "50ms"), (0.0046, "4.6ms"), (2.0, "2.0s"),
])
def test_seconds(value: float, text: str) -> None:
    assert seconds(value) == text
