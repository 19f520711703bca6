"""Energy per request: how an engine's energy is split among the requests it served.

Every engine has an energy *counter*: cumulative joules, either read from the device
(``measured``: NVML's total-energy counter on NVIDIA GPUs) or computed from what the process did
(``modelled``: CPU engines on machines without RAPL; see :func:`cpu_watts`). The rule that turns
it into per-request figures (:class:`EnergySplit`):

1. The engine reads its counter after every decode step. The joules since the previous reading
   belong to that step, including the host work between steps, since a step exists only because
   requests are running.
2. A step's joules are split among the sequences in its batch in proportion to the tokens each
   put through the model in that step (prompt tokens while prefilling, one per decode step).
3. When the engine has nothing to run, the joules since the last reading are *idle* energy:
   charged to no request, reported apart.

So over any window the requests' energies plus the idle energy equal the counter's delta
exactly; the only error against the device is the counter's own resolution. Requests that
did not reach the engine (a cache hit, a refusal) have no energy.

A hosted API's energy cannot be read at all; :mod:`inferplane.metering.estimate` estimates it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

EnergyMethod = Literal["measured", "modelled", "estimated"]

#: CodeCarbon's RAM power model: 3 W per 8 GB of memory in use.
RAM_WATTS_PER_GB = 3.0 / 8.0


def apportion(total: float, shares: Sequence[float]) -> list[float]:
    """``total`` split in proportion to ``shares``; equal parts when every share is zero.

    >>> apportion(10.0, [1, 3])
    [2.5, 7.5]
    >>> apportion(6.0, [0, 0, 0])
    [2.0, 2.0, 2.0]
    >>> apportion(1.0, [])
    []
    """
    if not shares:
        return []
    weight = sum(shares)
    if weight <= 0:
        return [total / len(shares)] * len(shares)
    return [total * s / weight for s in shares]


def cpu_watts(tdp_w: float, cores: int) -> float:
    """Power of one fully busy core under the TDP model: the package's TDP shared evenly
    among its cores, so a process's CPU power is ``TDP x its utilisation`` (CodeCarbon's
    method where no counter exists).

    >>> cpu_watts(360.0, 96)
    3.75
    """
    return tdp_w / max(1, cores)


def modelled_joules(cpu_seconds: float, wall_seconds: float, watts_per_core: float,
                    ram_watts: float) -> float:
    """Energy of a CPU process: its CPU time at ``watts_per_core`` plus its memory's power
    for the wall time.

    >>> modelled_joules(cpu_seconds=1.5, wall_seconds=1.0, watts_per_core=7.5, ram_watts=0.5)
    11.75
    """
    return cpu_seconds * watts_per_core + wall_seconds * ram_watts


class EnergySplit:
    """The apportioning rule (see the module's docstring) over a cumulative ``counter``."""

    def __init__(self, counter: Callable[[], float]) -> None:
        self._read = counter
        self._last = counter()
        self.charged_j = 0.0  # joules given to requests so far
        self.idle_j = 0.0  # joules of steps with nothing to run

    def _delta(self) -> float:
        now = self._read()
        delta, self._last = max(0.0, now - self._last), now
        return delta

    def step(self, tokens: Sequence[int]) -> list[float]:
        """A step ran with sequences that put ``tokens`` through the model: their joules."""
        joules = self._delta()
        self.charged_j += joules
        return apportion(joules, tokens)

    def idle(self) -> None:
        """Nothing is running: the joules since the last reading are nobody's."""
        self.idle_j += self._delta()
