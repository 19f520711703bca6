"""Usage statistics from ledger rows: plain bookkeeping, no SQL.

The store hands over two kinds of rows: aggregates grouped by (model, status, error_type), and
the (model, latency_ms, ttft_ms) of every request for the percentiles.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple


class GroupRow(NamedTuple):
    """Counts and sums of the records sharing a model, a status and an error type."""

    model: str
    status: int
    error_type: str | None
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    engine_seconds: float


Timing = tuple[str, float, float | None]  # (model, latency_ms, ttft_ms) of one request


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank ``p``-th percentile of ascending values; None when there are none.

    >>> percentile([10.0, 20.0, 30.0, 40.0], 50)
    20.0
    >>> percentile([10.0, 20.0, 30.0, 40.0], 99)
    40.0
    """
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def status_class(status: int) -> str:
    """The class of an HTTP status.

    >>> status_class(429)
    '4xx'
    """
    return f"{status // 100}xx"


@dataclass
class _Summary:
    requests: int = 0
    errors: int = 0
    status: dict[str, int] = field(default_factory=dict)
    error_types: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    engine_seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)

    def add(self, row: GroupRow) -> None:
        self.requests += row.requests
        if row.status >= 400:
            self.errors += row.requests
        cls = status_class(row.status)
        self.status[cls] = self.status.get(cls, 0) + row.requests
        if row.error_type is not None:
            seen = self.error_types.get(row.error_type, 0)
            self.error_types[row.error_type] = seen + row.requests
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cost_usd += row.cost_usd
        self.engine_seconds += row.engine_seconds

    def to_dict(self) -> dict[str, Any]:
        latencies, ttfts = sorted(self.latencies), sorted(self.ttfts)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "status": dict(sorted(self.status.items())),
            "error_types": dict(sorted(self.error_types.items(), key=lambda kv: -kv[1])),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": self.cost_usd,
            "engine_seconds": self.engine_seconds,
            "latency_ms": {f"p{p}": percentile(latencies, p) for p in (50, 95, 99)},
            "ttft_ms": {f"p{p}": percentile(ttfts, p) for p in (50, 99)},
        }


def summarize(groups: Iterable[GroupRow], timings: Iterable[Timing]) -> dict[str, Any]:
    """``{"overall": summary, "models": {model: summary}}``, each summary a plain dict.

    A summary holds requests, errors (status >= 400), requests per status class, requests per
    error type, token, cost and engine-time totals, latency p50/p95/p99 and TTFT p50/p99 in ms.
    """
    overall = _Summary()
    models: dict[str, _Summary] = {}
    for group in groups:
        overall.add(group)
        models.setdefault(group.model, _Summary()).add(group)
    for model, latency_ms, ttft_ms in timings:  # the hot loop: one pass, little work per row
        summary = models.get(model) or models.setdefault(model, _Summary())
        summary.latencies.append(latency_ms)
        if ttft_ms is not None:
            summary.ttfts.append(ttft_ms)
    for summary in models.values():
        overall.latencies += summary.latencies
        overall.ttfts += summary.ttfts
    return {
        "overall": overall.to_dict(),
        "models": {name: models[name].to_dict() for name in sorted(models)},
    }
