"""Routing policies: each orders every candidate as documented, and says why."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings, strategies as st

from inferplane.routing.candidate import Candidate
from inferplane.routing.policy import (
    POLICIES,
    PolicyContext,
    carbon,
    cost,
    get_policy,
    latency,
    least_busy,
    prefix_affinity,
    prefix_key,
    weighted,
)
from tests.unit.routing.factories import cand, profile


def ctx(seed: int = 0, **knobs: float) -> PolicyContext:
    return PolicyContext(random.Random(seed), **knobs)  # type: ignore[arg-type]


# every policy


candidates_st = st.lists(
    st.builds(
        lambda i, price, in_flight, capacity, ttft, weight, grid: cand(
            f"d{i}", input_per_mtok=price, output_per_mtok=price, in_flight=in_flight,
            capacity=capacity, ttft_s=ttft, itl_s=None if ttft is None else ttft / 50,
            weight=weight, grid_gco2_per_kwh=grid, joules_per_output_token=1.0),
        st.integers(0, 999), st.floats(0, 20), st.integers(0, 16), st.none() | st.integers(1, 8),
        st.none() | st.floats(0.01, 5), st.floats(0.1, 10), st.none() | st.floats(0, 800)),
    max_size=8, unique_by=lambda c: c.name)


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=40, deadline=None)
@given(candidates=candidates_st, key=st.none() | st.integers(0, 2**64 - 1))
def test_every_policy_orders_every_candidate_once(name: str, candidates: list[Candidate],
                                                  key: int | None) -> None:
    decision = POLICIES[name](candidates, profile(prefix_key=key, slo_ttft_s=1.0), ctx())
    assert decision.policy == name
    assert sorted(decision.names) == sorted(c.name for c in candidates)
    assert set(decision.scores) == {c.name for c in candidates}
    assert decision.reason.startswith(f"{name}: ")


def test_registry_lookup() -> None:
    assert set(POLICIES) == {"cost", "latency", "least-busy", "weighted", "round-robin",
                             "prefix-affinity", "carbon"}
    assert get_policy("cost") is cost
    with pytest.raises(ValueError, match="unknown routing policy 'fastest'; known: cost"):
        get_policy("fastest")
    with pytest.raises(TypeError):
        POLICIES["mine"] = cost  # type: ignore[index]


# cost


def test_cost_picks_the_cheapest_that_meets_the_slo() -> None:
    cheap_slow = cand("cheap-slow", input_per_mtok=0.1, output_per_mtok=0.4, ttft_s=2.5)
    mid = cand("mid", input_per_mtok=0.2, output_per_mtok=1.05, ttft_s=0.31)
    dear = cand("dear", input_per_mtok=3.0, output_per_mtok=15.0, ttft_s=0.2)
    d = cost([dear, cheap_slow, mid], profile(slo_ttft_s=1.0), ctx())
    assert d.names == ("mid", "dear", "cheap-slow")
    assert d.scores["mid"] == pytest.approx(0.00041)
    assert d.reason == ("cost: $0.00041 expected, meets ttft SLO 1.0s (ewma 0.31s); "
                        "1 cheaper deployment misses the SLO")


def test_cost_checks_the_tpot_slo_against_the_inter_token_ewma() -> None:
    cheap = cand("cheap", input_per_mtok=0.1, ttft_s=0.1, itl_s=0.08)
    dear = cand("dear", input_per_mtok=1.0, ttft_s=0.1, itl_s=0.02)
    d = cost([cheap, dear], profile(slo_ttft_s=1.0, slo_tpot_s=0.05), ctx())
    assert d.names == ("dear", "cheap")
    assert "tpot SLO 50ms (ewma 20ms)" in d.reason


def test_cost_assumes_unmeasured_deployments_meet_the_slo_and_says_so() -> None:
    new = cand("new", input_per_mtok=0.1)
    old = cand("old", input_per_mtok=1.0, ttft_s=0.2)
    d = cost([old, new], profile(slo_ttft_s=1.0), ctx())
    assert d.names == ("new", "old")
    assert "no ttft data yet, assumed to meet ttft SLO 1.0s" in d.reason


def test_cost_orders_by_cost_and_says_so_when_none_meets_the_slo() -> None:
    a = cand("a", input_per_mtok=1.0, ttft_s=1.5)
    b = cand("b", input_per_mtok=0.5, ttft_s=9.0)
    d = cost([a, b], profile(slo_ttft_s=1.0), ctx())
    assert d.names == ("b", "a")
    assert "misses ttft SLO 1.0s (ewma 9.0s)" in d.reason
    assert d.reason.endswith("none meets the SLO, cheapest first")


def test_cost_without_slo_is_pure_cost_with_ties_to_the_less_loaded() -> None:
    a = cand("a", input_per_mtok=1.0, in_flight=3, ttft_s=9.0)
    b = cand("b", input_per_mtok=1.0, in_flight=1)
    c = cand("c", input_per_mtok=2.0)
    d = cost([a, c, b], profile(), ctx())
    assert d.names == ("b", "a", "c")
    assert d.reason.endswith("no latency SLO")


def test_cost_uses_the_cached_input_price() -> None:
    cache = cand("cache", input_per_mtok=1.0, cached_input_per_mtok=0.1)
    flat = cand("flat", input_per_mtok=0.5)
    assert cost([flat, cache], profile(), ctx()).names[0] == "flat"
    assert cost([flat, cache], profile(cached_share=0.9), ctx()).names[0] == "cache"


# latency


def test_latency_weighs_ttft_against_output_length() -> None:
    quick_start = cand("quick-start", ttft_s=0.1, itl_s=0.05)
    fast_decode = cand("fast-decode", ttft_s=0.5, itl_s=0.01)
    short = latency([quick_start, fast_decode], profile(output_tokens=5), ctx())
    long = latency([quick_start, fast_decode], profile(output_tokens=500), ctx())
    assert short.names == ("quick-start", "fast-decode")
    assert long.names == ("fast-decode", "quick-start")
    assert long.scores == {"quick-start": pytest.approx(25.1),
                           "fast-decode": pytest.approx(5.5)}
    assert long.reason == "latency: 5.5s expected (ttft 0.5s + 500 x 10ms)"


def test_latency_explores_an_unmeasured_deployment_one_probe_at_a_time() -> None:
    known = cand("known", ttft_s=0.2, itl_s=0.01)
    idle_new = cand("new", in_flight=0)
    d = latency([known, idle_new], profile(), ctx())
    assert d.names == ("new", "known")
    assert d.scores["new"] is None
    assert "no latency data yet" in d.reason
    probing = latency([known, cand("new", in_flight=1)], profile(), ctx())
    assert probing.names == ("known", "new")
    wider = latency([known, cand("new", in_flight=1)], profile(), ctx(explore_in_flight=2))
    assert wider.names == ("new", "known")


# least-busy


def test_least_busy_compares_share_of_capacity_and_breaks_ties_by_weight() -> None:
    half = cand("half", in_flight=4, capacity=8)
    quarter = cand("quarter", in_flight=2, capacity=8)
    quarter_heavy = cand("quarter-heavy", in_flight=1, capacity=4, weight=3.0)
    no_cap = cand("no-cap", in_flight=1)
    d = least_busy([half, no_cap, quarter, quarter_heavy], profile(), ctx())
    assert d.names == ("quarter-heavy", "quarter", "half", "no-cap")
    assert d.scores["no-cap"] == 1.0
    assert d.reason == "least-busy: 1/4 slots in use"


# weighted


def test_weighted_first_choice_frequencies_converge_to_the_weights() -> None:
    cs = [cand("a", weight=1.0), cand("b", weight=3.0), cand("c", weight=6.0)]
    rng_ctx = ctx(seed=1234)
    draws = 20_000
    firsts = Counter(weighted(cs, profile(), rng_ctx).names[0] for _ in range(draws))
    for c in cs:
        assert firsts[c.name] / draws == pytest.approx(c.weight / 10.0, abs=0.015)


def test_weighted_second_choice_follows_the_remaining_weights() -> None:
    cs = [cand("a", weight=1.0), cand("b", weight=1.0), cand("c", weight=2.0)]
    rng_ctx = ctx(seed=7)
    after_c = Counter(d.names[1] for d in (weighted(cs, profile(), rng_ctx)
                                           for _ in range(20_000)) if d.names[0] == "c")
    total = sum(after_c.values())
    assert after_c["a"] / total == pytest.approx(0.5, abs=0.03)


def test_weighted_is_reproducible_with_a_seed() -> None:
    cs = [cand(f"d{i}", weight=i + 1.0) for i in range(5)]
    assert weighted(cs, profile(), ctx(seed=5)) == weighted(cs, profile(), ctx(seed=5))
    assert "weighted: drawn with weight" in weighted(cs, profile(), ctx()).reason


# prefix-affinity

REPLICAS = [cand(f"replica-{i}", capacity=8) for i in range(5)]


def winner(key: int, candidates: list[Candidate]) -> str:
    return prefix_affinity(candidates, profile(prefix_key=key), ctx()).names[0]


def test_affinity_maps_a_key_to_the_same_replica_whatever_the_order() -> None:
    key = prefix_key("You are a helpful assistant. " * 40)
    assert key is not None
    first = winner(key, REPLICAS)
    assert winner(key, list(reversed(REPLICAS))) == first
    assert all(winner(key, REPLICAS) == first for _ in range(10))
    d = prefix_affinity(REPLICAS, profile(prefix_key=key), ctx())
    assert d.reason.startswith(f"prefix-affinity: prefix {key & 0xFFFFFFFF:08x} on its replica")


def test_removing_a_replica_moves_only_its_keys_and_spreads_them() -> None:
    keys = range(3000)
    before = {k: winner(k, REPLICAS) for k in keys}
    removed = "replica-2"
    after = {k: winner(k, [c for c in REPLICAS if c.name != removed]) for k in keys}
    moved = {k for k in keys if before[k] != after[k]}
    assert moved == {k for k in keys if before[k] == removed}
    assert len(set(after[k] for k in moved)) == 4  # its keys spread over all the others
    shares = Counter(before.values())
    assert all(450 < shares[c.name] < 750 for c in REPLICAS)  # about 600 each


def test_adding_a_replica_moves_keys_only_onto_it() -> None:
    keys = range(3000)
    before = {k: winner(k, REPLICAS) for k in keys}
    after = {k: winner(k, [*REPLICAS, cand("replica-new", capacity=8)]) for k in keys}
    assert {after[k] for k in keys if before[k] != after[k]} == {"replica-new"}


def load_on(key: int, in_flight: int, capacity: int | None = 8) -> list[Candidate]:
    """REPLICAS with the key's affinity winner at ``in_flight`` and the others idle."""
    target = winner(key, REPLICAS)
    return [cand(c.name, capacity=capacity, in_flight=in_flight if c.name == target else 0)
            for c in REPLICAS]


def test_affinity_keeps_its_replica_within_the_slack() -> None:
    # slack = max(2, 50% of capacity 8) = 4 requests above the least loaded
    d = prefix_affinity(load_on(42, in_flight=4), profile(prefix_key=42), ctx())
    assert d.names[0] == winner(42, REPLICAS)


def test_affinity_falls_back_to_least_busy_beyond_the_slack() -> None:
    target = winner(42, REPLICAS)
    d = prefix_affinity(load_on(42, in_flight=5), profile(prefix_key=42), ctx())
    assert d.names[0] != target and d.names[-1] == target
    assert d.reason == (f"prefix-affinity: {target} is busy (5 in flight vs 0 on the least "
                        "loaded, slack 4); least-busy, 0/8 slots in use")


def test_affinity_falls_back_when_its_replica_is_full() -> None:
    d = prefix_affinity(load_on(42, in_flight=2, capacity=2), profile(prefix_key=42), ctx())
    assert d.names[-1] == winner(42, REPLICAS)
    assert "is full (2/2 slots in use)" in d.reason


def test_affinity_slack_without_capacity_is_the_absolute_minimum() -> None:
    keep = prefix_affinity(load_on(42, 2, capacity=None), profile(prefix_key=42), ctx())
    leave = prefix_affinity(load_on(42, 3, capacity=None), profile(prefix_key=42), ctx())
    assert keep.names[0] == winner(42, REPLICAS)
    assert leave.names[-1] == winner(42, REPLICAS)


def test_affinity_without_a_prefix_key_is_least_busy() -> None:
    cs = [cand("a", in_flight=3), cand("b", in_flight=1)]
    d = prefix_affinity(cs, profile(), ctx())
    assert d.names == ("b", "a")
    assert d.reason == "prefix-affinity: no prefix key; least-busy, 1 in flight"


def test_prefix_key_is_stable_and_reads_only_whole_leading_blocks() -> None:
    system = "You are a helpful assistant. " * 40
    assert prefix_key(system) == 868561848590370721  # blake2b: the same in every process
    assert prefix_key("x" * 255) is None
    assert prefix_key(system + "question one") == prefix_key(system + "question two")
    assert prefix_key("a" + system[1:]) != prefix_key(system)
    assert prefix_key("y" * 300, block_chars=100, blocks=2) == prefix_key(
        "y" * 250, block_chars=100, blocks=3)
    with pytest.raises(ValueError):
        prefix_key(system, block_chars=0)


# carbon


def test_carbon_ranks_by_grams_per_token_with_unknowns_last_by_cost() -> None:
    hydro = cand("hydro", grid_gco2_per_kwh=20, joules_per_output_token=3.0)
    coal = cand("coal", grid_gco2_per_kwh=800, joules_per_output_token=0.5)
    dc = cand("dc", grid_gco2_per_kwh=20, joules_per_output_token=2.5, pue=1.5)
    unknown_cheap = cand("unknown-cheap", input_per_mtok=0.1)
    unknown_grid = cand("unknown-grid", input_per_mtok=1.0, joules_per_output_token=0.1)
    d = carbon([unknown_grid, coal, unknown_cheap, dc, hydro], profile(), ctx())
    assert d.names == ("hydro", "dc", "coal", "unknown-cheap", "unknown-grid")
    assert d.scores["hydro"] == pytest.approx(3.0 * 20 / 3.6e6)
    assert d.scores["dc"] == pytest.approx(2.5 * 20 * 1.5 / 3.6e6)
    assert d.scores["unknown-grid"] is None
    assert d.reason == "carbon: 1.67e-05 gCO2/token expected (3 J/token at 20 gCO2/kWh)"


def test_carbon_without_any_data_is_cheapest_first() -> None:
    d = carbon([cand("a", input_per_mtok=2.0), cand("b", input_per_mtok=1.0)], profile(), ctx())
    assert d.names == ("b", "a")
    assert d.reason.startswith("carbon: no carbon data for any deployment; cheapest first")


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_policy_accepts_no_candidates(name: str) -> None:
    d = POLICIES[name]([], profile(prefix_key=1), ctx())
    assert d.ordered == () and d.reason == f"{name}: no candidates"
