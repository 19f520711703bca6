"""Which traces are recorded: the samplers ``OTEL_TRACES_SAMPLER`` names (OpenTelemetry's
environment specification), with ``OTEL_TRACES_SAMPLER_ARG`` the ratio. Pure.

>>> s = sampler({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
>>> s.sampled(None, 2**61), s.sampled(None, 2**63)  # the trace id's low 64 bits < ratio * 2**64
(True, False)
>>> from inferplane.observe.w3c import SpanContext
>>> sampler({}).sampled(SpanContext(1, 1, False), 1)  # parentbased_always_on follows a parent
False
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from inferplane.observe.w3c import SpanContext

log = logging.getLogger("inferplane")
_LOW_64 = 2**64 - 1
ROOTS = {"always_on": 1.0, "always_off": 0.0, "traceidratio": None}


@dataclass(frozen=True, slots=True)
class Sampler:
    ratio: float  # of new traces (and of all, unless parent_based)
    parent_based: bool  # a request inside a client's trace follows the client's decision

    def sampled(self, parent: SpanContext | None, trace_id: int) -> bool:
        if self.parent_based and parent is not None:
            return parent.sampled
        return (trace_id & _LOW_64) < self.ratio * 2**64


def sampler(env: Mapping[str, str]) -> Sampler:
    """The sampler the environment names; the default, ``parentbased_always_on``, records
    every trace a client did not decide against."""
    name = env.get("OTEL_TRACES_SAMPLER", "parentbased_always_on").strip().lower()
    parent_based = name.startswith("parentbased_")
    root = name.removeprefix("parentbased_")
    if root not in ROOTS:
        log.warning("unknown OTEL_TRACES_SAMPLER %r: using parentbased_always_on", name)
        return Sampler(1.0, True)
    ratio = ROOTS[root]
    if ratio is None:
        try:
            ratio = min(1.0, max(0.0, float(env.get("OTEL_TRACES_SAMPLER_ARG", "1.0"))))
        except ValueError:
            log.warning("OTEL_TRACES_SAMPLER_ARG is not a number: sampling every trace")
            ratio = 1.0
    return Sampler(ratio, parent_based)
