"""What a deployment's hardware draws, from the hardware catalog the planner shares.

A deployment names its hardware by catalog id or alias (``hardware: {accelerator: cpu}``); an
unknown name falls back to the catalog's ``cpu`` entry for the CPU engine's power model.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from inferplane.metering.energy import cpu_watts
from inferplane.planner.catalog import Hardware, load_catalog
from inferplane.planner.errors import PlannerError

if TYPE_CHECKING:
    from inferplane.config import HardwareConfig

DEFAULT_CPU = "cpu"


def catalog_hardware(name: str) -> Hardware | None:
    """The catalog entry called ``name`` (id or alias), or None."""
    try:
        return load_catalog().find_hardware(name)
    except PlannerError:
        return None


def watts_per_core(hardware: HardwareConfig | None) -> float:
    """Power of one busy core of the CPU a local engine runs on (TDP / cores).

    >>> from inferplane.config import HardwareConfig
    >>> watts_per_core(HardwareConfig(accelerator="server-cpu"))
    3.75
    """
    name = hardware.accelerator if hardware is not None else DEFAULT_CPU
    entry = catalog_hardware(name)
    if entry is None or entry.kind != "cpu" or entry.tdp_w is None:
        entry = catalog_hardware(DEFAULT_CPU)
    if entry is None or entry.tdp_w is None:
        return 0.0
    return cpu_watts(entry.tdp_w, entry.cores or os.cpu_count() or 1)
