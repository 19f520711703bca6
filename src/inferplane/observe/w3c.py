"""The W3C trace context (https://www.w3.org/TR/trace-context/): reading a client's
``traceparent`` and ``tracestate``, and writing them for an upstream request. Pure.

>>> ctx = extract({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
>>> format(ctx.trace_id, "032x"), format(ctx.span_id, "016x"), ctx.sampled
('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', True)
>>> extract({"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}) is None
True
>>> headers(SpanContext(1, 2, False))
{'traceparent': '00-00000000000000000000000000000001-0000000000000002-00'}
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")


@dataclass(frozen=True, slots=True)
class SpanContext:
    trace_id: int  # 128 bits, never 0
    span_id: int  # 64 bits, never 0
    sampled: bool
    tracestate: str | None = None  # passed on as it came


def extract(carrier: Mapping[str, str]) -> SpanContext | None:
    """The caller's span context, or None when it sent none or an invalid one (a new trace
    starts then, as the specification says)."""
    value = carrier.get("traceparent")
    if value is None:
        return None
    match = _TRACEPARENT.fullmatch(value.strip().lower())
    if match is None:
        return None
    version, trace, span, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    trace_id, span_id = int(trace, 16), int(span, 16)
    if not (trace_id and span_id):
        return None
    return SpanContext(trace_id, span_id, bool(int(flags, 16) & 1),
                       carrier.get("tracestate") or None)


def headers(ctx: SpanContext) -> dict[str, str]:
    """The headers that carry ``ctx`` to the next service."""
    out = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-"
                          f"{'01' if ctx.sampled else '00'}"}
    if ctx.tracestate:
        out["tracestate"] = ctx.tracestate
    return out
