"""A histogram for one thread: observing is a bisect and two additions, with no lock.

``prometheus_client``'s histograms take a lock per bucket and per sum on every observation
(about 5 microseconds each); the gateway observes six per request on its event loop, the same
thread that serves ``/metrics``, so it needs none. Exposed in the same format (``le`` as
Prometheus writes it: ``1.0``, ``+Inf``), without ``_created`` series.

>>> h = Histogram("t_seconds", "t", ("model",), (0.1, 1.0))
>>> child = h.labels("m")
>>> for v in (0.05, 0.1, 0.5, 3.0):
...     child.observe(v)
>>> [(s.labels.get("le"), s.value) for s in next(iter(h.collect())).samples]
[('0.1', 2.0), ('1.0', 3.0), ('+Inf', 4.0), (None, 4.0), (None, 3.65)]
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable

from prometheus_client.core import HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


class Child:
    """One label set's buckets (not cumulative; the last is over every bound) and sum."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self._bounds, value)] += 1  # value <= bound: that bucket
        self.sum += value


class Histogram(Collector):
    def __init__(self, name: str, doc: str, labels: tuple[str, ...],
                 buckets: tuple[float, ...]) -> None:
        if list(buckets) != sorted(set(buckets)):
            raise ValueError(f"{name}: buckets must increase")
        self.name = name
        self.doc = doc
        self.label_names = list(labels)
        self.bounds = buckets
        self._les = [repr(float(b)) for b in buckets] + ["+Inf"]  # as Prometheus writes le
        self._children: dict[tuple[str, ...], Child] = {}

    def labels(self, *values: str) -> Child:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = Child(self.bounds)
        return child

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.doc, labels=self.label_names)
        for values, child in list(self._children.items()):
            total, buckets = 0, []
            for le, n in zip(self._les, child.counts, strict=True):
                total += n
                buckets.append((le, float(total)))
            family.add_metric(list(values), buckets, child.sum)
        yield family

    def describe(self) -> Iterable[Metric]:
        return ()
