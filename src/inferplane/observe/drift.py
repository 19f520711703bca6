"""The drift verdicts as metrics, read from the drift monitor when scraped.

- ``inferplane_drift_detected{model,tenant,feature}``: 1 where the feature's latest test found
  drift, else 0 (insufficient data included);
- ``inferplane_drift_p_value{model,tenant,feature}`` and ``inferplane_drift_threshold{...}``:
  the latest p-value (no sample while data is insufficient) and the one under which it is drift;
- ``inferplane_drift_statistic{model,tenant,feature,test}``: the test's statistic;
- ``inferplane_drift_window_samples{model,tenant,window}``: samples in the reference and
  current windows;
- ``inferplane_drift_samples_dropped_total``: finished requests the full queue turned away.

``tenant`` is empty for a model's whole traffic; a tenant's own rows appear once it has a
reference window's worth of traffic (at most ``drift.max_tenants`` per model). Models come from
the configuration, tenants from the tenancy store, features and tests from a fixed set: the
label values are bounded (``labels.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from inferplane.drift.windows import Report


class DriftSource(Protocol):
    dropped: int

    def reports(self, model: str | None = None) -> Sequence[Report]: ...


class DriftGauges(Collector):
    def __init__(self) -> None:
        self.source: DriftSource | None = None  # set by the gateway where drift is on

    def collect(self) -> Iterable[Metric]:
        detected = GaugeMetricFamily("inferplane_drift_detected", "1 where the feature's latest "
                                     "drift test found drift, else 0.",
                                     labels=["model", "tenant", "feature"])
        p_value = GaugeMetricFamily("inferplane_drift_p_value", "The latest drift test's "
                                    "p-value.", labels=["model", "tenant", "feature"])
        threshold = GaugeMetricFamily("inferplane_drift_threshold", "The p-value under which "
                                      "the feature has drifted (alpha over the features tested).",
                                      labels=["model", "tenant", "feature"])
        statistic = GaugeMetricFamily("inferplane_drift_statistic", "The latest drift test's "
                                      "statistic (ks: D; chi2: X²; mmd: MMD²).",
                                      labels=["model", "tenant", "feature", "test"])
        samples = GaugeMetricFamily("inferplane_drift_window_samples", "Samples in the "
                                    "reference and current drift windows.",
                                    labels=["model", "tenant", "window"])
        dropped = CounterMetricFamily("inferplane_drift_samples_dropped", "Finished requests "
                                      "not judged for drift: the worker's queue was full.")
        source = self.source
        windows: set[tuple[str, str]] = set()
        for row in source.reports() if source is not None else ():
            labels = [row.model, row.tenant or "", row.feature]
            detected.add_metric(labels, 1.0 if row.drifted else 0.0)
            threshold.add_metric(labels, row.threshold)
            if row.p_value is not None:
                p_value.add_metric(labels, row.p_value)
                statistic.add_metric([*labels, row.test], row.statistic)
            if (row.model, row.tenant or "") not in windows and row.feature != "topic":
                windows.add((row.model, row.tenant or ""))
                samples.add_metric([row.model, row.tenant or "", "reference"], row.reference_n)
                samples.add_metric([row.model, row.tenant or "", "current"], row.current_n)
        dropped.add_metric([], 0 if source is None else source.dropped)
        yield from (detected, p_value, threshold, statistic, samples, dropped)

    def describe(self) -> Iterable[Metric]:
        return ()
