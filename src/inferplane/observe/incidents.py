"""The serious-incident reporting deadlines, read when scraped.

``inferplane_incident_report_deadline_seconds{system}`` is the time left, in seconds, until the
earliest initial report still owed for the system is due (Art. 73); negative once overdue; no
sample when nothing is owed. The deadlines come from ``pending``, which the gateway refreshes
from the store.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class IncidentGauges(Collector):
    def __init__(self, pending: Callable[[], Iterable[tuple[str, float]]]) -> None:
        self.pending = pending  # (system, deadline as a Unix time)

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("inferplane_incident_report_deadline_seconds",
                                  "Seconds until the next serious-incident report of the "
                                  "system is due (negative: overdue).", labels=["system"])
        soonest: dict[str, float] = {}
        for system, due in self.pending():
            soonest[system] = min(due, soonest.get(system, due))
        now = time.time()
        for system, due in sorted(soonest.items()):
            gauge.add_metric([system], due - now)
        yield gauge

    def describe(self) -> Iterable[Metric]:
        return ()
