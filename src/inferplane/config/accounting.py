"""The accounting parts of the configuration: what a deployment costs (its own price, or its
hardware's hourly price), the factors that turn its energy into carbon and water, and the
gateway-wide accounting settings. The rules are docs/accounting.md; ``inferplane.config``
re-exports every class here.
"""

from __future__ import annotations

from pydantic import Field

from inferplane.config.problems import Section


class HardwareConfig(Section):
    """What a self-hosted deployment runs on, and what it costs per hour."""

    accelerator: str = Field("cpu", min_length=1, examples=["h100"])
    count: int = Field(1, ge=1)
    usd_per_hour: float = Field(0.0, ge=0)


class EnergyConfig(Section):
    """How a deployment's energy turns into carbon and water, and estimates where nothing is
    measured (docs/accounting.md). Unset values come from the region's entry in
    ``data/regions.yaml`` (grid intensity, the cloud operator's PUE and WUE) or its defaults."""

    joules_per_token: float | None = Field(None, gt=0, examples=[0.4])  # per output token
    active_params_b: float | None = Field(None, gt=0, examples=[70])  # for hosted estimates
    grid_gco2_per_kwh: float | None = Field(None, ge=0, examples=[250])
    pue: float | None = Field(None, ge=1.0, examples=[1.2])
    wue_l_per_kwh: float | None = Field(None, ge=0, examples=[0.3])  # on-site water
    grid_water_l_per_kwh: float | None = Field(None, ge=0, examples=[3.1])  # generation's water


class PriceTierConfig(Section):
    """Prices for requests whose input exceeds ``above_input_tokens`` (a long-context tier);
    rates left out are the base price's."""

    above_input_tokens: int = Field(gt=0, examples=[200_000])
    input_per_mtok: float | None = Field(None, ge=0)
    output_per_mtok: float | None = Field(None, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0)
    cache_write_per_mtok: float | None = Field(None, ge=0)
    reasoning_per_mtok: float | None = Field(None, ge=0)


class PriceConfig(Section):
    """A deployment's own (negotiated) price, in USD per million tokens; it replaces the
    catalog's list price. Cached, cache-write and reasoning tokens left unpriced are billed
    as plain input and output tokens."""

    input_per_mtok: float = Field(0, ge=0)
    output_per_mtok: float = Field(0, ge=0)
    cached_input_per_mtok: float | None = Field(None, ge=0, examples=[0.075])
    cache_write_per_mtok: float | None = Field(None, ge=0, examples=[3.75])
    reasoning_per_mtok: float | None = Field(None, ge=0)
    tiers: list[PriceTierConfig] = Field(default_factory=list)
    # a batch line's price as a share of this one (0.5: half); None: the catalog's vendor
    # share where the catalog has one, else the full price (docs/accounting.md#batch-prices)
    batch_factor: float | None = Field(None, gt=0, le=1, examples=[0.5])


class AccountingConfig(Section):
    """Gateway-wide accounting settings (docs/accounting.md)."""

    # A live grid intensity replacing the annual averages: `file:PATH` (a JSON object of zone ->
    # gCO2/kWh, re-read when it changes) or the name of an installed `inferplane.intensity` plugin.
    intensity_source: str | None = Field(None, examples=["file:/var/lib/grid/intensity.json"])
