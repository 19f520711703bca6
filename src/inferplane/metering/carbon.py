"""Carbon and water of a request's energy, from its region's grid (``data/regions.yaml``).

    facility energy = energy x PUE
    gCO2            = facility energy (kWh) x the grid's intensity (gCO2/kWh)
    litres          = energy (kWh) x (WUE + PUE x the grid's water intensity (L/kWh))

WUE is the data centre's on-site water per kWh of IT energy (cooling); the grid's water intensity
is the water consumed to generate a kWh (mostly thermal plants' cooling), which the facility's
whole draw incurs. A deployment's ``region`` names a cloud region or a grid zone in the catalog;
the region's operator gives PUE and WUE where it publishes fleet figures; the catalog's defaults
fill the rest; a deployment's ``energy:`` settings override any of them. An unknown region uses
the world averages, and says so (``Footprint.basis``).

An optional live source (:class:`IntensitySource`) can replace the annual average intensity.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Any, Protocol

import yaml

JOULES_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class Footprint:
    """The factors that turn one deployment's joules into grams of CO2 and litres of water."""

    zone: str
    grid_gco2_per_kwh: float
    pue: float
    wue_l_per_kwh: float
    grid_water_l_per_kwh: float
    basis: str = ""

    def co2_g(self, energy_j: float, grid_gco2_per_kwh: float | None = None) -> float:
        """Grams of CO2 for ``energy_j`` of IT energy (at a live intensity when given).

        >>> Footprint("IE", 300.0, 1.2, 0.2, 1.5).co2_g(3.6e6)
        360.0
        """
        intensity = self.grid_gco2_per_kwh if grid_gco2_per_kwh is None else grid_gco2_per_kwh
        return energy_j / JOULES_PER_KWH * self.pue * intensity

    def water_l(self, energy_j: float) -> float:
        """Litres of water for ``energy_j`` of IT energy.

        >>> round(Footprint("IE", 300.0, 1.2, 0.2, 1.5).water_l(3.6e6), 6)
        2.0
        """
        return energy_j / JOULES_PER_KWH * (self.wue_l_per_kwh
                                            + self.pue * self.grid_water_l_per_kwh)


class IntensitySource(Protocol):
    """A live grid intensity: gCO2/kWh of ``zone`` now, or None to keep the annual average."""

    def gco2_per_kwh(self, zone: str) -> float | None: ...


@dataclass(frozen=True)
class Regions:
    defaults: dict[str, float]
    zones: dict[str, dict[str, Any]]
    operators: dict[str, dict[str, Any]]
    regions: dict[str, dict[str, Any]]
    version: str = ""

    def footprint(self, region: str, *, grid_gco2_per_kwh: float | None = None,
                  pue: float | None = None, wue_l_per_kwh: float | None = None,
                  grid_water_l_per_kwh: float | None = None) -> Footprint:
        """The factors for ``region``; keyword values override the catalog's."""
        entry = self.regions.get(region)
        zone_key = entry["zone"] if entry is not None else (region if region in self.zones
                                                            else "WORLD")
        zone = self.zones.get(zone_key, {})
        operator = self.operators.get((entry or {}).get("operator", ""), {})
        d = self.defaults

        def pick(override: float | None, *values: Any) -> float:
            if override is not None:
                return override
            return float(next(_value(v) for v in values if v is not None))

        basis = zone.get("name", zone_key) if (entry or zone_key == region) else \
            f"region '{region}' not in the catalog: world average"
        return Footprint(
            zone=zone_key,
            grid_gco2_per_kwh=pick(grid_gco2_per_kwh, zone.get("gco2_per_kwh"),
                                   d["grid_gco2_per_kwh"]),
            pue=pick(pue, operator.get("pue"), d["pue"]),
            wue_l_per_kwh=pick(wue_l_per_kwh, operator.get("wue_l_per_kwh"), d["wue_l_per_kwh"]),
            grid_water_l_per_kwh=pick(grid_water_l_per_kwh,
                                      zone.get("electricity_water_l_per_kwh"),
                                      d["electricity_water_l_per_kwh"]),
            basis=str(basis),
        )


def _value(v: Any) -> Any:
    """A figure written bare or as ``{value, source, year}``."""
    return v["value"] if isinstance(v, dict) else v


def parse_regions(data: dict[str, Any]) -> Regions:
    defaults = {k: float(_value(v)) for k, v in data["defaults"].items()}
    return Regions(defaults, dict(data["zones"]), dict(data.get("operators") or {}),
                   dict(data.get("regions") or {}), str(data.get("version", "")))


@functools.cache
def load_regions() -> Regions:
    """The packaged catalog (read once per process)."""
    text = resources.files("inferplane").joinpath("data", "regions.yaml").read_text("utf-8")
    return parse_regions(yaml.safe_load(text))
