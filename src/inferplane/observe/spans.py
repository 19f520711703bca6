"""One request's span and its attempts' child spans.

The request span opens with the :class:`~inferplane.generation.Generation` and is filled in
when it ends, from the finished ledger record (``observe/genai.py``): the request path gains
one start and one end. Each attempt (``routing/dispatch.py``) is a child span, and its W3C
trace context goes with the upstream request (``observe/trace_context.py``). Attributes are
built only for spans the sampler records; a finished span is handed to the exporter's queue
(``observe/span_export.py``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from inferplane.observe.genai import (
    input_messages,
    output_messages,
    provider_name,
    record_attributes,
    request_attributes,
    span_name,
)
from inferplane.observe.otlp import CLIENT, SERVER, FinishedSpan
from inferplane.observe.sampling import Sampler
from inferplane.observe.span_export import SpanSink
from inferplane.observe.trace_context import UPSTREAM_TRACE
from inferplane.observe.w3c import SpanContext, headers

if TYPE_CHECKING:
    from inferplane.ledger.record import UsageRecord
    from inferplane.request_accounting import Accounting
    from inferplane.routing.router import Target


class Tracing(Protocol):
    """What a request span needs of the gateway's tracer (``otel.Tracer``)."""

    sampler: Sampler
    sink: SpanSink
    capture_content: bool


def new_span_id() -> int:
    return random.getrandbits(64) or 1


def new_trace_id() -> int:
    return random.getrandbits(128) or 1


class AttemptSpan:
    """One attempt at one deployment, ended with its ledger entry (deployment, outcome)."""

    __slots__ = ("attributes", "context", "name", "request", "start_ns")

    def __init__(self, request: RequestSpan, context: SpanContext, name: str,
                 attributes: dict[str, Any]) -> None:
        self.request = request
        self.context = context
        self.name = name
        self.attributes = attributes
        self.start_ns = time.time_ns()

    def end(self, entry: Mapping[str, Any]) -> None:
        if not self.context.sampled:
            return
        attrs = self.attributes
        outcome = entry.get("outcome", "ok")
        attrs["inferplane.attempt.outcome"] = outcome
        error = None
        if outcome != "ok":
            error = str(entry.get("error", "error"))
            attrs["error.type"] = error
            attrs["inferplane.upstream_status"] = entry.get("upstream_status")
        ctx = self.context
        self.request.tracer.sink.export(FinishedSpan(
            ctx.trace_id, ctx.span_id, self.request.context.span_id, self.name, CLIENT,
            self.start_ns, time.time_ns(), attrs, error, ctx.tracestate))


class RequestSpan:
    """The span of one request, a child of the client's trace context when it sent one."""

    __slots__ = ("_output", "context", "parent", "start_ns", "tracer")

    def __init__(self, tracer: Tracing, parent: SpanContext | None, start_ns: int) -> None:
        self.tracer = tracer
        self.parent = parent
        trace_id = new_trace_id() if parent is None else parent.trace_id
        self.context = SpanContext(trace_id, new_span_id(),
                                   tracer.sampler.sampled(parent, trace_id),
                                   None if parent is None else parent.tracestate)
        self.start_ns = start_ns
        self._output: tuple[str, str] | None = None

    def attempt(self, target: Target) -> AttemptSpan:
        """A child span for an attempt at ``target``; upstream requests made in this task
        carry its trace context until the next attempt or the request's end."""
        deployment = target.deployment
        ctx = self.context
        child = SpanContext(ctx.trace_id, new_span_id(), ctx.sampled, ctx.tracestate)
        UPSTREAM_TRACE.set(headers(child))
        attrs: dict[str, Any] = {}
        if ctx.sampled:
            attrs = {"inferplane.deployment": deployment.name,
                     "inferplane.version": deployment.version_name,
                     "gen_ai.provider.name": provider_name(deployment.provider),
                     "gen_ai.request.model": deployment.upstream_model or deployment.model}
        return AttemptSpan(self, child, f"attempt {deployment.name}", attrs)

    def output(self, text: str, finish_reason: str) -> None:
        """The whole completion, kept for the span where content is captured."""
        if self.tracer.capture_content:
            self._output = (text, finish_reason)

    def end(self, record: UsageRecord, acct: Accounting) -> None:
        UPSTREAM_TRACE.set(None)  # what runs after (a shadow copy) is not this request's
        ctx = self.context
        if not ctx.sampled:
            return
        target = acct.target
        attrs = record_attributes(
            record, None if target is None else target.deployment.upstream_model)
        if acct.request is not None:
            attrs.update(request_attributes(acct.request))
            if self.tracer.capture_content:
                attrs.update(input_messages(acct.request))
        if self._output is not None:
            attrs.update(output_messages(*self._output))
        self.tracer.sink.export(FinishedSpan(
            ctx.trace_id, ctx.span_id, None if self.parent is None else self.parent.span_id,
            span_name(record.endpoint, record.model), SERVER, self.start_ns, time.time_ns(),
            attrs, record.error_type, ctx.tracestate))
