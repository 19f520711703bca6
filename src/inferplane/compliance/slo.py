"""The live service-level figures of a set of usage records: how many failed with a server
error and the time to first token's percentiles, per model. Pure.

>>> s = summarize([{"model": "m", "status": 200, "ttft_ms": 10.0},
...                {"model": "m", "status": 502, "ttft_ms": None}])
>>> s["m"].error_rate, s["m"].ttft_p50_ms
(0.5, 10.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from inferplane.ledger.stats import percentile


@dataclass(frozen=True, slots=True)
class Slo:
    requests: int
    server_errors: int
    ttft_p50_ms: float | None
    ttft_p95_ms: float | None
    ttft_p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.server_errors / self.requests if self.requests else 0.0


def summarize(records: Iterable[Mapping[str, Any]]) -> dict[str, Slo]:
    """Per model: requests, server errors (5xx), TTFT p50/p95/p99 in milliseconds."""
    counts: dict[str, list[int]] = {}
    ttfts: dict[str, list[float]] = {}
    for r in records:
        n = counts.setdefault(r["model"], [0, 0])
        n[0] += 1
        n[1] += 1 if r["status"] >= 500 else 0
        if r.get("ttft_ms") is not None:
            ttfts.setdefault(r["model"], []).append(float(r["ttft_ms"]))
    out = {}
    for model, (requests, errors) in sorted(counts.items()):
        values = sorted(ttfts.get(model, []))
        out[model] = Slo(requests, errors, percentile(values, 50), percentile(values, 95),
                         percentile(values, 99))
    return out
