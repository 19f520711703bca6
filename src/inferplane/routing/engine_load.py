"""What an engine's own metrics say of its load, as the routing policies use it (pure).

A reading scraped from an engine server (``engines/scraper.py``) counts the requests it is
running and queueing from every client, not only this gateway's. While it is fresh (no older
than :data:`MAX_AGE_INTERVALS` scrape intervals) it replaces the gateway's own in-flight count,
except that the gateway's count wins when it is higher: requests sent since the last scrape are
not in the reading yet, and a burst must not all go to the engine that looked idle a second ago.

An engine is *saturated*, and ranked after every engine that is not, when its KV cache is
nearly full (:data:`KV_SATURATED`), its queue holds as many requests as it has slots, or its
queue has grown at every one of the last readings (:data:`GROWING_READINGS`) while its KV
cache is over :data:`KV_BUSY`: new work there would wait, and time out before a less loaded
engine would have answered. Its slots are the configured capacity (``max_in_flight``, the
engine's ``parallel``), else the capacity the reading reports (a Ray Serve application's
replicas' slots, which grow and shrink as Serve scales).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.engines.engine_metrics import EngineLoad, EngineReading

KV_SATURATED = 0.95
KV_BUSY = 0.5
GROWING_READINGS = 3
MAX_AGE_INTERVALS = 3.0


@dataclass(frozen=True, slots=True)
class EngineView:
    """An engine's load as the candidate shows it."""

    in_flight: int  # running + waiting, by the engine's count
    waiting: int
    capacity: int | None  # configured, else reported
    kv_cache_usage: float | None
    saturated: str | None  # why it is, or None


def fresh(reading: EngineReading | None, now: float) -> bool:
    return reading is not None and now - reading.at <= MAX_AGE_INTERVALS * reading.interval_s


def saturation(load: EngineLoad, capacity: int | None,
               waiting_before: Sequence[float] = ()) -> str | None:
    """Why the engine is saturated, or ``None``.

    >>> saturation(EngineLoad(running=8, waiting=0, kv_cache_usage=0.97), 8)
    'KV cache 97% full'
    >>> saturation(EngineLoad(running=8, waiting=8), 8)
    'queue full (8 waiting for 8 slots)'
    >>> saturation(EngineLoad(running=4, waiting=3, kv_cache_usage=0.6), 8, (0, 1, 2))
    'queue growing (0 -> 3 waiting), KV cache 60% full'
    >>> saturation(EngineLoad(running=4, waiting=3, kv_cache_usage=0.2), 8, (0, 1, 2)) is None
    True
    """
    kv = load.kv_cache_usage
    if kv is not None and kv >= KV_SATURATED:
        return f"KV cache {kv:.0%} full"
    if capacity is not None and load.waiting >= capacity:
        return f"queue full ({load.waiting:g} waiting for {capacity} slots)"
    trend = [*waiting_before[-GROWING_READINGS:], load.waiting]
    growing = len(trend) > GROWING_READINGS and all(
        b > a for a, b in itertools.pairwise(trend))
    if growing and kv is not None and kv >= KV_BUSY:
        return f"queue growing ({trend[0]:g} -> {load.waiting:g} waiting), KV cache {kv:.0%} full"
    return None


def engine_view(reading: EngineReading | None, capacity: int | None,
                now: float) -> EngineView | None:
    """The engine's view of its load when a fresh reading exists, else ``None``.

    >>> r = EngineReading(EngineLoad(running=2, waiting=5, kv_cache_usage=0.4), 10.0, 1.0)
    >>> engine_view(r, 4, now=11.0)  # doctest: +NORMALIZE_WHITESPACE
    EngineView(in_flight=7, waiting=5, capacity=4, kv_cache_usage=0.4,
               saturated='queue full (5 waiting for 4 slots)')
    >>> engine_view(r, 4, now=20.0) is None
    True
    >>> reported = EngineReading(EngineLoad(running=2, waiting=5, capacity=8), 10.0, 1.0)
    >>> engine_view(reported, None, now=11.0).capacity, engine_view(reported, 6, 11.0).capacity
    (8, 6)
    """
    if reading is None or not fresh(reading, now):
        return None
    load = reading.load
    capacity = capacity if capacity is not None else load.capacity
    return EngineView(
        in_flight=round(load.running + load.waiting), waiting=round(load.waiting),
        capacity=capacity, kv_cache_usage=load.kv_cache_usage,
        saturated=saturation(load, capacity, reading.waiting_before),
    )
