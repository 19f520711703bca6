"""The circuit breaker of every deployment, read at scrape time.

``inferplane_circuit_breaker_state{deployment, state}`` is 1 for the breaker's current state
(``closed``, ``open``, ``half-open``) and 0 for the others, so ``== 1`` on ``state="open"``
selects the deployments the router is not sending to.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from inferplane.routing.health import BreakerState, DeploymentStats


class BreakerGauges(Collector):
    def __init__(self, stats: Mapping[str, DeploymentStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterable[Metric]:
        gauge = GaugeMetricFamily("inferplane_circuit_breaker_state",
                                  "1 for the deployment's circuit breaker state, else 0.",
                                  labels=["deployment", "state"])
        now = time.monotonic()
        for name, stats in self.stats.items():
            current = stats.breaker.state(now)
            for state in BreakerState:
                gauge.add_metric([name, state.value], 1.0 if state is current else 0.0)
        yield gauge

    def describe(self) -> Iterable[Metric]:
        return ()
