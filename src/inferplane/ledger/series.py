"""Usage over time for the dashboard: plain bookkeeping, no SQL.

The store streams the records of a window (the columns in :data:`COLUMNS`, filtered by tenant
and model in SQL) and :func:`aggregate` folds them in one pass into time buckets (cost, tokens,
energy, carbon, water, requests, errors and the TTFT, ITL and latency percentiles of each),
totals over the window, requests per error type, and the same figures per model, deployment,
version and tenant.

ITL, the inter-token latency, is not stored: a streamed record that produced two or more
tokens has the mean gap between them, ``(latency_ms - ttft_ms) / (completion_tokens - 1)``.
Percentiles are nearest-rank (:func:`inferplane.ledger.stats.percentile`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inferplane.ledger.stats import percentile

COLUMNS = (
    "ts", "tenant", "model", "deployment", "version", "status", "error_type", "stream",
    "prompt_tokens", "completion_tokens", "cost_usd", "energy_j", "co2_g", "water_l",
    "ttft_ms", "latency_ms",
)
BREAKDOWNS = ("model", "deployment", "version", "tenant")
PERCENTILES = (50, 95, 99)
# Bucket widths a window is cut into, smallest first: the first that gives at most
# MAX_BUCKETS buckets is taken.
WIDTHS_S = (60, 300, 900, 1_800, 3_600, 3 * 3_600, 6 * 3_600, 12 * 3_600, 86_400, 7 * 86_400)
MAX_BUCKETS = 120

Row = Mapping[Any, Any]  # a row of COLUMNS by name


def bucket_width(span_s: float, max_buckets: int = MAX_BUCKETS) -> int:
    """The narrowest of :data:`WIDTHS_S` cutting ``span_s`` into at most ``max_buckets``.

    >>> bucket_width(3_600), bucket_width(86_400), bucket_width(7 * 86_400)
    (60, 900, 10800)
    """
    for width in WIDTHS_S:
        if span_s / width <= max_buckets:
            return width
    return math.ceil(span_s / max_buckets)


def itl_ms(row: Row) -> float | None:
    """The mean gap between the tokens of a streamed record, in ms; None when it had no
    first token, fewer than two tokens, or was not streamed.

    >>> itl_ms({"stream": True, "ttft_ms": 100.0, "latency_ms": 500.0, "completion_tokens": 5})
    100.0
    >>> itl_ms({"stream": False, "ttft_ms": 100.0, "latency_ms": 500.0, "completion_tokens": 5})
    """
    tokens, ttft = row["completion_tokens"], row["ttft_ms"]
    if not row["stream"] or ttft is None or tokens < 2:
        return None
    gap: float = max(0.0, float(row["latency_ms"]) - float(ttft)) / (tokens - 1)
    return gap


def error_kind(status: int, error_type: str | None) -> str | None:
    """What an error is called on the dashboard: its type, else its HTTP status; None when
    the request succeeded.

    >>> error_kind(200, None), error_kind(429, "rate_limit_error"), error_kind(502, None)
    (None, 'rate_limit_error', 'http_502')
    """
    if status < 400:
        return None
    return error_type or f"http_{status}"


@dataclass
class Figures:
    """The sums and samples of a set of records."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    energy_j: float = 0.0
    co2_g: float = 0.0
    water_l: float = 0.0
    ttft: list[float] = field(default_factory=list)
    itl: list[float] = field(default_factory=list)
    latency: list[float] = field(default_factory=list)

    def add(self, row: Row, itl: float | None) -> None:
        self.requests += 1
        self.errors += row["status"] >= 400
        self.prompt_tokens += row["prompt_tokens"]
        self.completion_tokens += row["completion_tokens"]
        self.cost_usd += row["cost_usd"]
        self.energy_j += row["energy_j"] or 0.0
        self.co2_g += row["co2_g"] or 0.0
        self.water_l += row["water_l"] or 0.0
        self.latency.append(float(row["latency_ms"]))
        if row["ttft_ms"] is not None:
            self.ttft.append(float(row["ttft_ms"]))
        if itl is not None:
            self.itl.append(itl)

    def merge(self, other: Figures) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_usd += other.cost_usd
        self.energy_j += other.energy_j
        self.co2_g += other.co2_g
        self.water_l += other.water_l
        self.ttft += other.ttft
        self.itl += other.itl
        self.latency += other.latency

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests, "errors": self.errors,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost_usd": self.cost_usd, "energy_j": self.energy_j, "co2_g": self.co2_g,
            "water_l": self.water_l,
            "ttft_ms": _percentiles(self.ttft), "itl_ms": _percentiles(self.itl),
            "latency_ms": _percentiles(self.latency),
        }


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    return {f"p{p}": percentile(ordered, p) for p in PERCENTILES}


def aggregate(rows: Iterable[Row], since: float, until: float,
              width: int | None = None) -> dict[str, Any]:
    """The dashboard's figures for the records ``rows`` with ``since <= ts < until``.

    ``buckets`` holds every bucket of the window, empty ones included (so a chart's time axis
    is the window's), each with its ``start`` (Unix seconds); ``errors`` the requests per
    error kind, most first; ``breakdowns`` a list per dimension, most expensive first, a
    group without a value (no tenant) named None.
    """
    step = width or bucket_width(until - since)
    first = math.floor(since / step) * step
    count = max(1, math.ceil((until - first) / step))
    # One pass adds each record to its group (bucket and every dimension's value); the groups,
    # far fewer than the records, are then merged into buckets, totals and breakdowns.
    groups: dict[tuple[Any, ...], Figures] = {}
    errors: dict[str, int] = {}
    for row in rows:
        ts = row["ts"]
        if not since <= ts < until:
            continue
        key = (min(count - 1, int((ts - first) // step)), row["model"], row["deployment"],
               row["version"], row["tenant"])  # BREAKDOWNS' order
        figures = groups.get(key)
        if figures is None:
            figures = groups[key] = Figures()
        figures.add(row, itl_ms(row))
        kind = error_kind(row["status"], row["error_type"])
        if kind is not None:
            errors[kind] = errors.get(kind, 0) + 1
    buckets = [Figures() for _ in range(count)]
    totals = Figures()
    found: dict[str, dict[Any, Figures]] = {d: {} for d in BREAKDOWNS}
    for (index, *names), figures in groups.items():
        buckets[index].merge(figures)
        totals.merge(figures)
        for dimension, name in zip(BREAKDOWNS, names, strict=True):
            found[dimension].setdefault(name, Figures()).merge(figures)
    return {
        "since": since, "until": until, "bucket_s": step,
        "buckets": [{"start": first + i * step, **b.to_dict()} for i, b in enumerate(buckets)],
        "totals": totals.to_dict(),
        "errors": [{"type": k, "requests": n}
                   for k, n in sorted(errors.items(), key=lambda kv: (-kv[1], kv[0]))],
        "breakdowns": {
            dimension: [{"name": key, **f.to_dict()} for key, f in sorted(
                groups_of.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].requests,
                                               str(kv[0])))]
            for dimension, groups_of in found.items()
        },
    }
