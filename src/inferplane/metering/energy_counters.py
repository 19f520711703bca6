"""Cumulative energy counters an engine reads after each step (see ``metering/energy.py``).

* :class:`CpuModelCounter` (``modelled``): the process's CPU time at the TDP model's watts per
  core, plus its resident memory at CodeCarbon's watts per GB for the wall time. CPU time is the
  whole process's, so llama.cpp's compute threads are included.
* :class:`NvmlCounter` (``measured``): NVML's total-energy counter of one GPU, in millijoules
  since the driver loaded, read through ``nvidia-ml-py`` (installed with the GPU extras only).
"""

from __future__ import annotations

import os
import time
from typing import Any

from inferplane.errors import CounterUnavailable
from inferplane.metering.energy import RAM_WATTS_PER_GB, EnergyMethod, modelled_joules


def resident_gb() -> float:
    """This process's resident memory, in GB (0 where /proc is not there)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e9


class CpuModelCounter:
    method: EnergyMethod = "modelled"

    def __init__(self, watts_per_core: float, ram_watts: float | None = None) -> None:
        self.watts_per_core = watts_per_core
        self.ram_watts = RAM_WATTS_PER_GB * resident_gb() if ram_watts is None else ram_watts
        self._cpu0, self._wall0 = time.process_time(), time.perf_counter()

    def __call__(self) -> float:
        return modelled_joules(time.process_time() - self._cpu0,
                               time.perf_counter() - self._wall0,
                               self.watts_per_core, self.ram_watts)


class NvmlCounter:
    method: EnergyMethod = "measured"

    def __init__(self, index: int = 0) -> None:
        try:
            import pynvml  # type: ignore[import-not-found, unused-ignore]

            pynvml.nvmlInit()
            self._handle: Any = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._read = pynvml.nvmlDeviceGetTotalEnergyConsumption
            self._read(self._handle)
        except Exception as exc:  # ImportError, or any NVMLError (no driver, no GPU, no support)
            raise CounterUnavailable(f"no NVML energy counter on GPU {index}: {exc}") from exc

    def __call__(self) -> float:
        return float(self._read(self._handle)) / 1000.0


class GpuCounters:
    """The sum of NVML's counters of several GPUs (an engine split over them), in joules."""

    method: EnergyMethod = "measured"

    def __init__(self, indices: list[int]) -> None:
        self.indices = indices
        self._counters = [NvmlCounter(i) for i in indices]  # CounterUnavailable if any lacks one

    def __call__(self) -> float:
        return sum(counter() for counter in self._counters)
