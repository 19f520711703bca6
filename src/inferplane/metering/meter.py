"""One deployment's accounting, resolved once at start: usage -> cost, energy, carbon, water.

The decisions are the pure functions of ``prices``, ``energy``, ``estimate`` and ``carbon``;
this module only picks, per deployment, which of them apply:

* cost: the deployment's ``price:`` (``cost_method`` ``deployment``), else the catalog's list
  price for its vendor and upstream model (``catalog``), else its hardware's hourly price over
  the engine time it used (``hardware``), else nothing (``None``, cost 0);
* energy: what the engine reports from its counter (``measured`` or ``modelled``), else, for
  a hosted API, an estimate (``estimated``);
* carbon and water: the energy through the region's :class:`~inferplane.metering.carbon.Footprint`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from inferplane.config import ENGINE_PROVIDERS
from inferplane.metering.carbon import Footprint, IntensitySource, Regions, load_regions
from inferplane.metering.estimate import TokenEnergy, estimate_token_energy
from inferplane.metering.price_catalog import PriceCatalog, load_price_catalog, price_from
from inferplane.metering.prices import Price, hardware_cost_usd, token_cost_usd
from inferplane.protocol.types import Usage

# the engines whose every request carries the joules of its engine's counter (the embedded
# engine's, measured or modelled)
SELF_METERED = frozenset({"llamacpp"})
ENGINE_S_PER_TOKEN = 0.05  # a reservation's engine time per token on our own hardware

if TYPE_CHECKING:
    from inferplane.config import Config, DeploymentConfig, PriceConfig


@dataclass(frozen=True, slots=True)
class Metered:
    """What one request cost: the ledger's accounting fields."""

    cost_usd: float
    cost_method: str | None
    energy_j: float | None
    energy_method: str | None
    co2_g: float | None
    water_l: float | None


def price_of(config: PriceConfig) -> Price:
    """A deployment's ``price:`` block as a :class:`Price` (a tier's unset rates are the base's).

    >>> from inferplane.config import PriceConfig, PriceTierConfig
    >>> p = price_of(PriceConfig(input_per_mtok=1.0, output_per_mtok=4.0, tiers=[
    ...     PriceTierConfig(above_input_tokens=1000, input_per_mtok=2.0)]))
    >>> p.rates_for(5000)
    Rates(input=2.0, output=4.0, cached_input=None, cache_write=None, reasoning=None)
    """
    data = config.model_dump()
    factor = data.pop("batch_factor", None)
    return price_from({**_rates(data), "tiers": [_rates(t) for t in data["tiers"]]}, "deployment",
                      batch_factor=factor)


def _rates(section: dict[str, Any]) -> dict[str, Any]:
    """``input_per_mtok: 1.0`` -> ``input: 1.0``, the catalog's names; unset rates left out."""
    return {k.removesuffix("_per_mtok"): v for k, v in section.items()
            if v is not None and k != "tiers"}


class DeploymentMeter:
    def __init__(self, deployment: DeploymentConfig, prices: PriceCatalog, regions: Regions,
                 intensity: IntensitySource | None = None) -> None:
        d = deployment
        self.deployment = d
        self.intensity = intensity
        self.price: Price | None = None
        self.cost_method: str | None = None
        active_params: float | None = d.energy.active_params_b
        model = d.upstream_model or d.model
        if d.price is not None:
            self.price, self.cost_method = price_of(d.price), "deployment"
        vendor = prices.vendor_of(d.provider, d.base_url, d.vendor)
        entry = prices.find(vendor, model) if vendor is not None else None
        if entry is not None:
            active_params = active_params or entry.active_params_b
            if self.price is None:
                self.price, self.cost_method = entry.price, "catalog"
        if self.price is None and d.hardware is not None:
            self.cost_method = "hardware"
        if (self.price is not None and self.price.batch_factor is None and entry is not None
                and d.price is not None and d.price.batch_factor is None):
            # a negotiated price keeps the vendor's batch discount unless it names its own
            self.price = replace(self.price, batch_factor=entry.price.batch_factor)
        self.batch_price: Price | None = None if self.price is None else self.price.batch()
        self.token_energy: TokenEnergy | None = None
        if d.energy.joules_per_token is not None:
            self.token_energy = TokenEnergy(0.0, d.energy.joules_per_token, "configured")
        elif d.provider not in ENGINE_PROVIDERS:
            self.token_energy = estimate_token_energy(model, active_params)
        # what a request without its engine's joules is given: a managed server's requests
        # carry measured joules only where NVML reads its GPUs, the others are estimated
        self.fallback_energy = self.token_energy
        if self.fallback_energy is None and d.provider not in SELF_METERED:
            self.fallback_energy = estimate_token_energy(model, active_params)
        e = d.energy
        self.footprint: Footprint = regions.footprint(
            d.region, grid_gco2_per_kwh=e.grid_gco2_per_kwh, pue=e.pue,
            wue_l_per_kwh=e.wue_l_per_kwh, grid_water_l_per_kwh=e.grid_water_l_per_kwh)

    @property
    def joules_per_output_token(self) -> float | None:
        """The estimate the ``carbon`` routing policy ranks by (None for metered engines)."""
        return None if self.token_energy is None else self.token_energy.output_j

    def cost_usd(self, usage: Usage, engine_seconds: float, batch: bool = False) -> float:
        """``batch``: a batch line's, at the batch price where there is one."""
        if batch and self.batch_price is not None:
            return token_cost_usd(self.batch_price, usage)
        if self.price is not None:
            return token_cost_usd(self.price, usage)
        hardware = self.deployment.hardware
        if hardware is not None:
            return hardware_cost_usd(hardware.usd_per_hour, hardware.count, engine_seconds)
        return 0.0

    def max_cost_usd(self, prompt_tokens: int, output_tokens: int) -> float:
        """What a request of at most ``prompt_tokens`` in and ``output_tokens`` out can cost
        here: every input token at the dearer of the input and cache-write rates, every output
        token at the dearer of the output and reasoning rates, in the prompt's tier. On our own
        hardware it is an estimate, not a bound: ``ENGINE_S_PER_TOKEN`` of engine time per
        token."""
        if self.price is not None:
            rates = self.price.rates_for(prompt_tokens)
            return (prompt_tokens * max(rates.input, rates.cache_write or 0.0)
                    + output_tokens * max(rates.output, rates.reasoning or 0.0)) / 1_000_000
        hardware = self.deployment.hardware
        if hardware is not None:
            seconds = (prompt_tokens + output_tokens) * ENGINE_S_PER_TOKEN
            return hardware_cost_usd(hardware.usd_per_hour, hardware.count, seconds)
        return 0.0

    def measure(self, usage: Usage, engine_seconds: float = 0.0,
                energy_j: float | None = None, energy_method: str | None = None,
                batch: bool = False) -> Metered:
        """The accounting fields of a request that used ``usage`` (and, on an engine we run,
        ``engine_seconds`` and the ``energy_j`` its counter gave it); ``batch``: a batch
        line's, priced at the batch price where there is one."""
        if energy_j is None and self.fallback_energy is not None and usage.total_tokens:
            energy_j = self.fallback_energy.joules(usage.prompt_tokens, usage.completion_tokens)
            energy_method = "estimated"
        co2 = water = None
        if energy_j is not None:
            live = (self.intensity.gco2_per_kwh(self.footprint.zone)
                    if self.intensity is not None else None)
            co2 = self.footprint.co2_g(energy_j, live)
            water = self.footprint.water_l(energy_j)
        return Metered(self.cost_usd(usage, engine_seconds, batch), self.cost_method,
                       energy_j, energy_method if energy_j is not None else None, co2, water)


def build_meters(config: Config, intensity: IntensitySource | None = None
                 ) -> dict[str, DeploymentMeter]:
    """A meter for every deployment of ``config``, by deployment name."""
    prices, regions = load_price_catalog(), load_regions()
    return {d.name: DeploymentMeter(d, prices, regions, intensity) for d in config.deployments}
