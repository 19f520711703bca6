"""The W3C trace context (``traceparent``, ``tracestate``) an upstream request carries.

The attempt being made sets it (``observe/tracing.py``) in the request's task; the HTTP
transport (``providers/upstream.py``) adds it to the request it sends, whichever protocol the
adapter speaks. With tracing off nothing sets it: the transport reads one empty variable.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar

UPSTREAM_TRACE: ContextVar[Mapping[str, str] | None] = ContextVar("upstream_trace",
                                                                  default=None)


def with_trace(headers: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """``headers`` plus the current attempt's trace context, if one is set."""
    trace = UPSTREAM_TRACE.get()
    if trace is None:
        return headers
    return {**headers, **trace} if headers else trace
