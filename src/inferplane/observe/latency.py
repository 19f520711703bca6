"""Timing histograms of every request, labelled like the usage counters.

Named after vLLM's where one exists (``vllm:time_to_first_token_seconds``,
``vllm:time_per_output_token_seconds``, ``vllm:e2e_request_latency_seconds``,
``vllm:request_queue_time_seconds``), so a dashboard reads both. Each has buckets suited to
what it measures: sub-millisecond for the gateway's overhead, up to ten minutes for a
request's duration.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from inferplane.ledger.record import UsageRecord
from inferplane.observe.histograms import Child, Histogram
from inferplane.observe.usage import LABELS, Key
from inferplane.request_accounting import Timings

TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0,
                3.0, 5.0, 10.0, 20.0, 60.0)
TPOT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15,
                0.2, 0.3, 0.5, 1.0, 2.5)
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0,
                    120.0, 300.0, 600.0)
QUEUE_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                 2.5, 5.0, 10.0, 30.0, 60.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005,
                    0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
LatencySeries = tuple[Child, ...]  # the label children of one label set


# name, meaning, buckets; in the order of a LatencySeries
HISTOGRAMS = (
    ("inferplane_time_to_first_token_seconds",
     "From the request's arrival to its first output token.", TTFT_BUCKETS),
    ("inferplane_time_per_output_token_seconds",
     "After the first token, the time per further output token (requests of two tokens or "
     "more).", TPOT_BUCKETS),
    ("inferplane_request_duration_seconds",
     "From the request's arrival to its record (every request).", DURATION_BUCKETS),
    ("inferplane_request_queue_time_seconds",
     "Waiting: admission (rate limits, budgets), plus the engine's queue for a slot where the "
     "engine reports it.", QUEUE_BUCKETS),
    ("inferplane_upstream_duration_seconds",
     "Time spent in attempts at deployments, each to its stream's end.", DURATION_BUCKETS),
    ("inferplane_gateway_overhead_seconds",
     "The gateway's own time: request duration minus upstream time.", OVERHEAD_BUCKETS),
)


class LatencyHistograms:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.histograms = tuple(Histogram(name, doc, LABELS, buckets)
                                for name, doc, buckets in HISTOGRAMS)
        for histogram in self.histograms:
            registry.register(histogram)

    def children(self, key: Key) -> LatencySeries:
        return tuple(h.labels(*key) for h in self.histograms)

    @staticmethod
    def observe(series: LatencySeries, rec: UsageRecord, timings: Timings) -> None:
        ttft, tpot, duration, queued, upstream, overhead = series
        latency = rec.latency_ms / 1000
        duration.observe(latency)
        if rec.ttft_ms is not None:
            first = rec.ttft_ms / 1000
            ttft.observe(first)
            if rec.completion_tokens > 1:
                tpot.observe(max(0.0, latency - first) / (rec.completion_tokens - 1))
        if timings.upstream_s is not None:  # it reached a deployment
            queued.observe(timings.queued_s)
            upstream.observe(timings.upstream_s)
            overhead.observe(max(0.0, latency - timings.upstream_s))
