"""Collective and point-to-point times over one link kind (alpha-beta model).

* all-reduce over ``n`` chips: ``2 ceil(log2 n)`` latency hops plus the ring's bandwidth term
  ``2 (n-1)/n x bytes / bw`` (reduce-scatter then all-gather);
* all-to-all (MoE dispatch or combine): two latency hops plus ``(n-1)/n`` of each chip's bytes;
* a pipeline send: one hop plus ``bytes / bw``.

Bandwidth is per chip and per direction; latency per hop comes from the link kind.

>>> from inferplane.planner.catalog import Link
>>> nvlink = Link("nvlink", 450.0, 2e-6, 8)
>>> round(allreduce_s(16384, 8, nvlink) * 1e6, 2)
12.06
"""

from __future__ import annotations

import math

from inferplane.planner.catalog import Link


def allreduce_s(nbytes: float, n: int, link: Link) -> float:
    """Seconds to all-reduce ``nbytes`` across ``n`` chips."""
    if n <= 1:
        return 0.0
    hops = 2 * math.ceil(math.log2(n))
    return hops * link.latency_s + 2 * (n - 1) / n * nbytes / link.bytes_per_s


def all_to_all_s(nbytes_per_chip: float, n: int, link: Link) -> float:
    """Seconds for an all-to-all in which each of ``n`` chips holds ``nbytes_per_chip``."""
    if n <= 1:
        return 0.0
    return 2 * link.latency_s + (n - 1) / n * nbytes_per_chip / link.bytes_per_s


def send_s(nbytes: float, link: Link) -> float:
    """Seconds to send ``nbytes`` from one chip to the next (pipeline stage boundary)."""
    return link.latency_s + nbytes / link.bytes_per_s
