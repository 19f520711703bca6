"""Chip power from utilisation, and carbon from energy.

Power of one chip while it runs a step (``PowerModel`` shares of TDP, from the catalog)::

    P = TDP x min(1, idle + memory x u_bw + compute x u_flops)

where ``u_bw`` and ``u_flops`` are the step's bytes and FLOPs per chip over its occupancy,
against the datasheet peaks. An idle chip draws ``idle x TDP``. Accelerator energy only: host
CPUs, networking and cooling are outside it (``pue`` scales energy up to the facility's).

Carbon: ``grams = kWh x PUE x grid intensity``. The default intensity is the world average
475 gCO2/kWh, CodeCarbon's default.

>>> round(carbon_g_per_mtok(0.1, 475.0, 1.0), 2)
13.19
"""

from __future__ import annotations

from inferplane.planner.catalog import Hardware
from inferplane.planner.roofline import StepTime

DEFAULT_GRID_G_PER_KWH = 475.0
DEFAULT_PUE = 1.0


def chip_watts(hw: Hardware, u_bandwidth: float, u_compute: float) -> float | None:
    """Power of one chip at these utilisations, or None when the chip's TDP is not known."""
    if hw.tdp_w is None:
        return None
    p = hw.power
    share = p.idle + p.memory * max(0.0, u_bandwidth) + p.compute * max(0.0, u_compute)
    return hw.tdp_w * min(1.0, share)


def idle_watts(hw: Hardware) -> float | None:
    return None if hw.tdp_w is None else hw.tdp_w * hw.power.idle


def step_watts(hw: Hardware, step: StepTime) -> float | None:
    """Mean power of one chip over a step's occupancy."""
    t = step.occupancy_s
    if t <= 0:
        return idle_watts(hw)
    u_bw = step.bytes_per_chip / (t * hw.bandwidth_bytes_s)
    u_flops = step.flops_per_chip / (t * step.peak_flops) if step.peak_flops > 0 else 0.0
    return chip_watts(hw, u_bw, u_flops)


def carbon_g_per_mtok(joules_per_token: float, grid_g_per_kwh: float, pue: float) -> float:
    """Grams of CO2 per million tokens."""
    kwh_per_mtok = joules_per_token * 1e6 / 3.6e6
    return kwh_per_mtok * pue * grid_g_per_kwh
