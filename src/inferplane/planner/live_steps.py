"""Decode step times observed on a running engine, as calibration input (pure).

Two readings of an engine's metrics (``engines/engine_metrics.py``) a scrape interval apart give
the mean time between output tokens over that interval (the delta of its inter-token latency
sum over the delta of its count): the time of one decode step, at the batch it was running
(the sequences running at the end of the interval) and the context its sequences held (its KV
cache positions in use over the running sequences). An interval with too few tokens, nothing
running, or no KV figure gives no point.

:func:`calibration_input` groups the points by batch and context (a power-of-two bucket) and
keeps each group's median: the document ``inferplane plan calibrate`` reads (docs/planner.md),
which a gateway writes for each engine it reads (``engines/step_log.py``).
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inferplane.engines.engine_metrics import EngineLoad

MIN_TOKENS = 20  # fewer inter-token intervals in a scrape interval: too noisy a point


@dataclass(frozen=True, slots=True)
class StepPoint:
    batch: int
    context: int
    step_s: float


def decode_point(before: EngineLoad, after: EngineLoad, kv_positions: int) -> StepPoint | None:
    """The decode step time between two readings, or ``None``.

    >>> a = EngineLoad(4, 0, 0.25, itl_seconds_sum=10.0, itl_count=1000)
    >>> b = EngineLoad(4, 0, 0.25, itl_seconds_sum=10.5, itl_count=1100)
    >>> decode_point(a, b, kv_positions=8192)
    StepPoint(batch=4, context=512, step_s=0.005)
    """
    if None in (before.itl_seconds_sum, before.itl_count, after.itl_seconds_sum,
                after.itl_count) or after.kv_cache_usage is None:
        return None
    assert before.itl_seconds_sum is not None and after.itl_seconds_sum is not None
    assert before.itl_count is not None and after.itl_count is not None
    count = after.itl_count - before.itl_count
    seconds = after.itl_seconds_sum - before.itl_seconds_sum
    batch = round(after.running)
    if count < MIN_TOKENS or seconds <= 0 or batch < 1:
        return None
    context = round(after.kv_cache_usage * kv_positions / batch)
    if context < 1:
        return None
    return StepPoint(batch, context, seconds / count)


def _bucket(context: int) -> int:
    """The power of two nearest below ``context`` (contexts 300 and 400 share one group)."""
    return 1 << (max(1, context).bit_length() - 1)


def calibration_input(points: Iterable[StepPoint], hardware: str, model: str,
                      source: str, tp: int = 1) -> dict[str, Any] | None:
    """The calibration document of ``points``: one decode measurement per (batch, context
    bucket), the median step time; ``None`` without points.

    >>> doc = calibration_input([StepPoint(4, 500, 0.01), StepPoint(4, 300, 0.03),
    ...                          StepPoint(4, 400, 0.02)], "cpu", "gemma-3-270m", "test")
    >>> doc["measurements"]
    [{'phase': 'decode', 'batch': 4, 'context': 400, 'step_s': 0.02, 'tp': 1}]
    """
    groups: dict[tuple[int, int], list[StepPoint]] = defaultdict(list)
    for p in points:
        groups[(p.batch, _bucket(p.context))].append(p)
    if not groups:
        return None
    measurements = [
        {"phase": "decode", "batch": batch,
         "context": round(statistics.median(p.context for p in group)),
         "step_s": statistics.median(p.step_s for p in group), "tp": tp}
        for (batch, _), group in sorted(groups.items())
    ]
    return {"hardware": hardware, "model": model, "source": source,
            "measurements": measurements}
