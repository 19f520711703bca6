"""Pricing of every usage shape, the energy apportioning rule, carbon and water arithmetic,
and how a deployment's meter picks its price, energy and footprint."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from inferplane.config import (
    DeploymentConfig,
    EnergyConfig,
    HardwareConfig,
    PriceConfig,
    PriceTierConfig,
)
from inferplane.errors import ConfigError
from inferplane.metering.carbon import Footprint, load_regions
from inferplane.metering.energy import EnergySplit, apportion, cpu_watts, modelled_joules
from inferplane.metering.estimate import estimate_token_energy
from inferplane.metering.intensity import FileIntensity, intensity_source
from inferplane.metering.meter import DeploymentMeter, price_of
from inferplane.metering.price_catalog import load_price_catalog, parse_catalog
from inferplane.metering.prices import Price, Rates, Tier, token_cost_usd
from inferplane.metering.tokens import estimate_tokens, settle_usage
from inferplane.protocol.types import Usage
from tests.unit.regions_fixture import REGIONS

M = 1e6

# -- pricing: every usage shape ----------------------------------------------------------------

ANTHROPIC_LIKE = Price(Rates(3.0, 15.0, cached_input=0.30, cache_write=3.75))
OPENAI_LIKE = Price(Rates(2.0, 8.0, cached_input=0.5))
REASONING_PRICED = Price(Rates(1.0, 4.0, reasoning=2.0))
TIERED = Price(Rates(1.25, 10.0, cached_input=0.31),
               (Tier(200_000, Rates(2.5, 15.0, cached_input=0.625)),))
PLAIN = Price(Rates(0.5, 1.5))


@pytest.mark.parametrize(("price", "usage", "expected_usd"), [
    # plain input and output
    (PLAIN, Usage(1000, 200), (1000 * 0.5 + 200 * 1.5) / M),
    # cached input at the cached rate; the rest at the input rate
    (OPENAI_LIKE, Usage(1000, 100, cached_tokens=600), (400 * 2.0 + 600 * 0.5 + 100 * 8.0) / M),
    # no cached rate: cached tokens are ordinary input
    (PLAIN, Usage(1000, 100, cached_tokens=600), (1000 * 0.5 + 100 * 1.5) / M),
    # cache reads and writes (prompt_tokens includes both)
    (ANTHROPIC_LIKE, Usage(10_000, 500, cached_tokens=6000, cache_write_tokens=2000),
     (2000 * 3.0 + 6000 * 0.30 + 2000 * 3.75 + 500 * 15.0) / M),
    # no cache-write rate: written tokens are ordinary input
    (OPENAI_LIKE, Usage(1000, 0, cache_write_tokens=300), 1000 * 2.0 / M),
    # reasoning tokens billed as output when no reasoning rate
    (OPENAI_LIKE, Usage(100, 1000, reasoning_tokens=700), (100 * 2.0 + 1000 * 8.0) / M),
    # reasoning tokens at their own rate when there is one
    (REASONING_PRICED, Usage(100, 1000, reasoning_tokens=700),
     (100 * 1.0 + 300 * 4.0 + 700 * 2.0) / M),
    # long-context tier: at the threshold the base applies, above it the tier for all tokens
    (TIERED, Usage(200_000, 1000), (200_000 * 1.25 + 1000 * 10.0) / M),
    (TIERED, Usage(200_001, 1000, cached_tokens=100_000),
     (100_001 * 2.5 + 100_000 * 0.625 + 1000 * 15.0) / M),
    # nothing used, nothing paid
    (ANTHROPIC_LIKE, Usage(), 0.0),
])
def test_every_usage_shape_is_priced_as_the_vendor_bills_it(
        price: Price, usage: Usage, expected_usd: float) -> None:
    assert token_cost_usd(price, usage) == pytest.approx(expected_usd, rel=1e-12)


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6),
       st.integers(0, 10**6), st.integers(0, 10**6))
def test_cost_never_negative_and_discounts_never_cost_more(
        prompt: int, completion: int, cached: int, written: int, reasoning: int) -> None:
    cached, written = min(cached, prompt), min(written, prompt - min(cached, prompt))
    usage = Usage(prompt, completion, cached, written, min(reasoning, completion))
    cost = token_cost_usd(OPENAI_LIKE, usage)
    assert cost >= 0
    assert cost <= token_cost_usd(Price(Rates(2.0, 8.0)), usage) + 1e-12


def test_tiers_are_chosen_by_total_input_including_cache() -> None:
    three = Price(Rates(1, 1), (Tier(100, Rates(2, 2)), Tier(1000, Rates(3, 3))))
    assert [three.rates_for(n).input for n in (100, 101, 1000, 1001)] == [1, 2, 2, 3]


def test_deployment_price_block_with_tiers_inherits_base_rates() -> None:
    price = price_of(PriceConfig(
        input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.1,
        reasoning_per_mtok=3.0,
        tiers=[PriceTierConfig(above_input_tokens=5000, output_per_mtok=6.0),
               PriceTierConfig(above_input_tokens=1000, input_per_mtok=2.0)]))
    assert [t.above_input_tokens for t in price.tiers] == [1000, 5000]
    assert price.rates_for(5001) == Rates(1.0, 6.0, 0.1, None, 3.0)
    assert price.rates_for(2000) == Rates(2.0, 4.0, 0.1, None, 3.0)


# -- the price catalog ---------------------------------------------------------------------------


def test_packaged_catalog_entries_all_have_a_source_and_date() -> None:
    catalog = load_price_catalog()
    assert len({v for v, _ in catalog.entries}) >= 8
    for entry in catalog.entries.values():
        assert entry.price.source.startswith("http"), entry
        assert entry.price.as_of[:4].isdigit(), entry
        assert entry.price.base.input >= 0 and entry.price.base.output >= 0


def test_catalog_finds_dated_snapshots_by_longest_prefix() -> None:
    catalog = parse_catalog({"vendors": {"v": {"hosts": ["api.v.com"], "source": "s",
                                               "as_of": "2026-01", "models": [
        {"model": "m", "input": 1, "output": 2},
        {"model": "m-mini", "input": 0.1, "output": 0.2},
    ]}}})
    found = catalog.find("v", "m-mini-2025-01-01")
    assert found is not None and found.model == "m-mini"
    assert catalog.find("v", "other") is None
    assert catalog.vendor_of("openai", "https://API.V.COM/v1") == "v"


def test_catalog_rejects_an_entry_without_rates() -> None:
    with pytest.raises(ValueError, match="input/output"):
        parse_catalog({"vendors": {"v": {"models": [{"model": "m", "input": 1}]}}})


# -- which price, energy and footprint a deployment gets ------------------------------------------


def meter(**kw: object) -> DeploymentMeter:
    fields: dict[str, object] = {"name": "d", "model": "m", "provider": "openai"}
    fields.update(kw)
    return DeploymentMeter(DeploymentConfig(**fields),  # type: ignore[arg-type]
                           load_price_catalog(), REGIONS)


def test_catalog_list_price_applies_to_a_known_vendor_model() -> None:
    m = meter(upstream_model="gpt-4o-mini-2024-07-18")  # default endpoint: vendor openai
    entry = load_price_catalog().find("openai", "gpt-4o-mini")
    assert entry is not None and m.price == entry.price and m.cost_method == "catalog"


def test_negotiated_price_wins_over_the_catalog() -> None:
    m = meter(upstream_model="gpt-4o-mini", price=PriceConfig(input_per_mtok=0.01))
    assert m.cost_method == "deployment"
    assert m.cost_usd(Usage(1_000_000, 0), 0.0) == pytest.approx(0.01)


def test_unknown_host_has_no_price_and_costs_nothing() -> None:
    m = meter(base_url="http://127.0.0.1:9/v1", upstream_model="gpt-4o-mini")
    assert m.price is None and m.cost_method is None
    assert m.measure(Usage(100, 100)).cost_usd == 0.0


def test_vendor_names_the_catalog_for_a_proxy_url() -> None:
    m = meter(base_url="http://127.0.0.1:9/v1", vendor="openai", upstream_model="gpt-4o")
    assert m.cost_method == "catalog"


def test_hardware_deployment_is_charged_by_engine_time_with_modelled_energy() -> None:
    m = meter(provider="llamacpp", hardware=HardwareConfig(usd_per_hour=3.6, count=2),
              region="eu-west-1")
    out = m.measure(Usage(10, 10), engine_seconds=0.5, energy_j=36.0, energy_method="modelled")
    assert out.cost_method == "hardware" and out.cost_usd == pytest.approx(0.001)
    assert out.energy_method == "modelled" and out.energy_j == 36.0
    # IE grid 300 g/kWh, aws PUE 1.2: 36 J = 1e-5 kWh
    assert out.co2_g == pytest.approx(1e-5 * 1.2 * 300)
    assert out.water_l == pytest.approx(1e-5 * (0.2 + 1.2 * 3.0))


def test_engine_without_energy_report_records_none() -> None:
    out = meter(provider="llamacpp").measure(Usage(10, 10))
    assert (out.energy_j, out.energy_method, out.co2_g, out.water_l) == (None, None, None, None)


def test_hosted_energy_is_estimated_from_tokens() -> None:
    m = meter(upstream_model="llama-3.1-8b")
    e = estimate_token_energy("llama-3.1-8b", None)
    out = m.measure(Usage(1000, 100))
    assert out.energy_method == "estimated"
    assert out.energy_j == pytest.approx(1000 * e.prompt_j + 100 * e.output_j)
    assert m.measure(Usage()).energy_j is None  # no tokens, nothing estimated


def test_configured_joules_per_token_replaces_the_estimate() -> None:
    m = meter(energy=EnergyConfig(joules_per_token=2.0))
    assert m.measure(Usage(500, 10)).energy_j == pytest.approx(20.0)
    assert m.joules_per_output_token == 2.0


def test_estimates_grow_with_model_size() -> None:
    small, large = (estimate_token_energy("x", p) for p in (8.0, 400.0))
    assert small.output_j < large.output_j and small.prompt_j < large.prompt_j


def test_llama_8b_estimate_is_near_ml_energy_measurement() -> None:
    # ML.ENERGY v3.0 (facts.md): Llama-3.1-8B on 1x H100 at batch 64: 0.119 J per output token
    e = estimate_token_energy("llama-3.1-8b", None)
    assert 0.119 * 0.6 < e.output_j < 0.119 * 1.4


# -- carbon and water ------------------------------------------------------------------------------


@pytest.mark.parametrize(("region", "zone", "grid", "pue", "wue", "water"), [
    ("eu-west-1", "IE", 300.0, 1.2, 0.2, 3.0),  # cloud region: zone + operator
    ("eu-north-1", "SE", 40.0, 1.5, 1.0, 0.5),  # zone's own water intensity, default PUE/WUE
    ("IE", "IE", 300.0, 1.5, 1.0, 3.0),  # a zone named directly
    ("mars-1", "WORLD", 475.0, 1.5, 1.0, 3.0),  # unknown: world averages
])
def test_footprint_factors_by_region(region: str, zone: str, grid: float, pue: float,
                                     wue: float, water: float) -> None:
    f = REGIONS.footprint(region)
    assert (f.zone, f.grid_gco2_per_kwh, f.pue, f.wue_l_per_kwh, f.grid_water_l_per_kwh) == (
        zone, grid, pue, wue, water)


def test_footprint_overrides_and_arithmetic() -> None:
    f = REGIONS.footprint("eu-west-1", grid_gco2_per_kwh=100.0, pue=1.1, wue_l_per_kwh=0.0,
                          grid_water_l_per_kwh=2.0)
    kwh = 3.6e6
    assert f.co2_g(kwh) == pytest.approx(110.0)
    assert f.co2_g(kwh, grid_gco2_per_kwh=500.0) == pytest.approx(550.0)  # a live intensity
    assert f.water_l(kwh) == pytest.approx(2.2)
    assert Footprint("Z", 0.0, 1.0, 0.0, 0.0).co2_g(1e9) == 0.0


# -- energy apportioning ---------------------------------------------------------------------------


@given(st.floats(0, 1e6, allow_nan=False), st.lists(st.integers(0, 4096), max_size=64))
def test_apportioned_parts_sum_to_the_total(total: float, shares: list[int]) -> None:
    parts = apportion(total, shares)
    assert len(parts) == len(shares)
    if shares:
        assert sum(parts) == pytest.approx(total, rel=1e-9, abs=1e-9)
        assert all(p >= 0 for p in parts)


def test_parts_follow_token_shares() -> None:
    assert apportion(100.0, [512, 1, 1, 6]) == pytest.approx([98.46153846, 0.1923077,
                                                               0.1923077, 1.1538462])


def test_concurrent_requests_plus_idle_sum_to_the_counter() -> None:
    """Simulate an engine: a counter that rises in uneven steps, requests joining and leaving
    a batch, idle gaps; every request's energy plus idle equals the counter's total."""
    rng = random.Random(7)
    readings = itertools.accumulate(rng.uniform(0.0, 50.0) for _ in range(100_000))
    seen: list[float] = []

    def counter() -> float:
        seen.append(next(readings) if seen else 0.0)
        return seen[-1]

    split = EnergySplit(counter)
    energy: dict[int, float] = {}
    active: dict[int, int] = {}  # request -> remaining steps
    ids = itertools.count()
    for _ in range(2000):
        if rng.random() < 0.3:
            active[next(ids)] = rng.randint(1, 40)
        if not active:
            split.idle()
            continue
        batch = list(active)
        tokens = [rng.choice([1, 1, 1, rng.randint(2, 512)]) for _ in batch]
        for rid, joules in zip(batch, split.step(tokens), strict=True):
            energy[rid] = energy.get(rid, 0.0) + joules
            active[rid] -= 1
            if active[rid] == 0:
                del active[rid]
    total = seen[-1] - seen[0]
    assert split.charged_j + split.idle_j == pytest.approx(total, rel=1e-12)
    assert sum(energy.values()) == pytest.approx(split.charged_j, rel=1e-9)
    assert split.idle_j > 0 and len(energy) > 100


def test_cpu_energy_model() -> None:
    assert cpu_watts(15.0, 2) == 7.5
    assert modelled_joules(2.0, 1.0, 7.5, 1.0) == pytest.approx(16.0)


# -- usage when the upstream reports none ----------------------------------------------------------


def test_usage_sources() -> None:
    assert settle_usage(Usage(10, 5), True, 5, 0, 0) == (Usage(10, 5), "reported")
    assert settle_usage(Usage(10), False, 4, 0, 99) == (Usage(10, 4), "counted")
    assert settle_usage(Usage(), True, 1, 40, 8) == (Usage(10, 2), "estimated")
    assert settle_usage(Usage(), False, 0, 0, 0) == (Usage(), "reported")
    assert estimate_tokens(4000) == 1000


def test_packaged_regions_are_complete_and_sourced() -> None:
    regions = load_regions()
    for name, zone in regions.zones.items():
        assert zone.get("source") and str(zone.get("year", ""))[:4].isdigit(), name
        assert zone["gco2_per_kwh"] >= 0, name
    for name, op in regions.operators.items():
        assert op.get("source") and op.get("year"), name
    for name, entry in regions.regions.items():
        assert entry["zone"] in regions.zones, name
        assert entry.get("operator") in (None, *regions.operators), name
        regions.footprint(name)  # every figure it needs resolves
    local = regions.footprint("local")
    assert (local.zone, local.pue, local.wue_l_per_kwh) == ("WORLD", 1.0, 0.0)


def test_live_intensity_file_replaces_the_annual_average(tmp_path: Path) -> None:
    path = tmp_path / "intensity.json"
    path.write_text('{"IE": 120.5, "SE": "bad", "XX": -1}')
    source = intensity_source(f"file:{path}")
    assert isinstance(source, FileIntensity)
    assert source.gco2_per_kwh("IE") == 120.5
    assert source.gco2_per_kwh("SE") is None and source.gco2_per_kwh("XX") is None
    m = DeploymentMeter(DeploymentConfig(name="d", model="m", provider="llamacpp",
                                         region="eu-west-1"),
                        load_price_catalog(), REGIONS, source)
    out = m.measure(Usage(1, 1), energy_j=3.6e6, energy_method="modelled")
    assert out.co2_g == pytest.approx(1.2 * 120.5)  # the live value, the region's PUE
    path.write_text("not json")
    source._checked = float("-inf")  # past the re-check interval
    assert source.gco2_per_kwh("IE") == 120.5  # the last good values are kept


def test_unknown_intensity_source_is_a_config_error() -> None:
    assert intensity_source(None) is None
    with pytest.raises(ConfigError, match="intensity source"):
        intensity_source("no-such-plugin")
