"""Budgets, as the ledger stands against them, for rules that forecast their exhaustion.

- ``inferplane_budget_usd{scope}``: the budget of a tenant (``tenant:<name>``) or a key
  (``key:<id>``) for its period;
- ``inferplane_budget_spent_usd{scope}``: what the ledger holds against it since the period
  began (committed records: a few hundred milliseconds behind the requests);
- ``inferplane_budget_period_end_timestamp_seconds{scope}``: when the period ends and the
  spend starts again from zero (no sample for a total budget).

Every gateway process reads them from the shared store, so all report the same figures. The
gateway refreshes them every ``tenancy.budget_metrics_interval_s``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from inferplane.tenancy.budget import BudgetStanding


class BudgetGauges(Collector):
    def __init__(self, standings: Callable[[], Iterable[BudgetStanding]]) -> None:
        self.standings = standings

    def collect(self) -> Iterable[Metric]:
        usd = GaugeMetricFamily("inferplane_budget_usd",
                                "The budget of a tenant or key for its period, in US dollars.",
                                labels=["scope"])
        spent = GaugeMetricFamily("inferplane_budget_spent_usd",
                                  "What the ledger holds against the budget this period, in "
                                  "US dollars.", labels=["scope"])
        end = GaugeMetricFamily("inferplane_budget_period_end_timestamp_seconds",
                                "When the budget's period ends (Unix time).", labels=["scope"])
        for standing in self.standings():
            usd.add_metric([standing.scope], standing.usd)
            spent.add_metric([standing.scope], standing.spent_usd)
            if standing.period_end is not None:
                end.add_metric([standing.scope], standing.period_end)
        yield from (usd, spent, end)

    def describe(self) -> Iterable[Metric]:
        return ()
