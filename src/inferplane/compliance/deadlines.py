"""Art. 73's deadlines for reporting a serious incident, counted from when the provider (or
deployer) became aware of it, and where each open incident stands. Pure.

>>> report_due(IncidentKind.DEATH, 0.0) / DAY
10.0
>>> report_due(IncidentKind.WIDESPREAD, 0.0) / DAY
2.0
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

DAY = 86_400.0


class IncidentKind(StrEnum):
    DEATH = "death"  # Art. 73(4): 10 days after awareness
    CRITICAL_INFRASTRUCTURE = "critical-infrastructure"  # Art. 73(3): 2 days
    WIDESPREAD = "widespread"  # widespread infringement, Art. 73(3): 2 days
    OTHER = "other"  # Art. 73(2): 15 days


REPORT_DAYS: dict[IncidentKind, int] = {
    IncidentKind.DEATH: 10,
    IncidentKind.CRITICAL_INFRASTRUCTURE: 2,
    IncidentKind.WIDESPREAD: 2,
    IncidentKind.OTHER: 15,
}


def report_due(kind: IncidentKind, aware_at: float) -> float:
    """When the (initial) report of an incident of ``kind`` is due, as a Unix time."""
    return aware_at + REPORT_DAYS[kind] * DAY


@dataclass(frozen=True, slots=True)
class Clock:
    """What an incident still owes: ``due`` is the initial report's deadline; once that report
    is in, a final one (Art. 73(5) allows an incomplete first report) is owed, with no fixed
    deadline."""

    due: float
    initial_at: float | None
    final_at: float | None

    def state(self, now: float) -> str:
        if self.final_at is not None:
            return "closed"
        if self.initial_at is not None:
            return "final report pending"
        return "initial report overdue" if now > self.due else "initial report due"

    def pending_deadline(self) -> float | None:
        """The deadline still running: the initial report's, until it is in."""
        return self.due if self.initial_at is None else None


def next_deadline(clocks: Iterable[Clock]) -> float | None:
    """The earliest deadline still running among ``clocks``; None when none runs."""
    running = [d for d in (c.pending_deadline() for c in clocks) if d is not None]
    return min(running, default=None)
