"""Kills and rollbacks, read at scrape time from the process's view of the model registry.

- ``inferplane_kill_active{kind, name}``: 1 for each kill in force (kind: deployment, model,
  provider); no sample otherwise.
- ``inferplane_rollback_moves_total{model}``: the version moves rollbacks have made for the
  model, as the shared registry records them (a rollback moves one version or two), so every
  gateway process reports the same count; 0 for each configured model without any, so the
  first rollback is an increase a rule can see.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


@dataclass(frozen=True)
class GovernanceView:
    models: tuple[str, ...] = ()  # the configured models
    kills: tuple[tuple[str, str], ...] = ()  # (kind, name)
    rollbacks: Mapping[str, int] = field(default_factory=dict)  # model -> version moves


class GovernanceGauges(Collector):
    def __init__(self, view: Callable[[], GovernanceView]) -> None:
        self.view = view

    def collect(self) -> Iterable[Metric]:
        view = self.view()
        kills = GaugeMetricFamily("inferplane_kill_active",
                                  "1 for each kill in force: requests to what it names are "
                                  "refused.", labels=["kind", "name"])
        for kind, name in sorted(set(view.kills)):
            kills.add_metric([kind, name], 1.0)
        yield kills
        rollbacks = CounterMetricFamily("inferplane_rollback_moves",
                                        "Version moves made by rollbacks of the model, "
                                        "automatic or by an operator.", labels=["model"])
        for model in sorted({*view.models, *view.rollbacks}):
            rollbacks.add_metric([model], float(view.rollbacks.get(model, 0)))
        yield rollbacks

    def describe(self) -> Iterable[Metric]:
        return ()
