"""One request's span and its attempts' child spans.

The request span opens with the :class:`~inferplane.generation.Generation` and is filled in
when it ends, from the finished ledger record (``observe/genai.py``): the request path gains
one start and one end. Each attempt (``routing/dispatch.py``) is a child span, and its W3C
trace context goes with the upstream request (``observe/trace_context.py``). Attributes are
built only for spans the sampler records.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, set_span_in_context

from inferplane.observe.genai import (
    input_messages,
    output_messages,
    provider_name,
    record_attributes,
    request_attributes,
    span_name,
)
from inferplane.observe.trace_context import UPSTREAM_TRACE

if TYPE_CHECKING:
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Tracer as OtelTracer

    from inferplane.ledger.record import UsageRecord
    from inferplane.request_accounting import Accounting
    from inferplane.routing.router import Target


class Tracing(Protocol):
    """What a request span needs of the gateway's tracer (``otel.Tracer``)."""

    tracer: OtelTracer
    propagator: TextMapPropagator
    capture_content: bool


class AttemptSpan:
    """One attempt at one deployment, ended with its ledger entry (deployment, outcome)."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def end(self, entry: Mapping[str, Any]) -> None:
        span = self.span
        outcome = entry.get("outcome", "ok")
        span.set_attribute("inferplane.attempt.outcome", outcome)
        if outcome != "ok":
            error = str(entry.get("error", "error"))
            span.set_attribute("error.type", error)
            if (status := entry.get("upstream_status")) is not None:
                span.set_attribute("inferplane.upstream_status", status)
            span.set_status(Status(StatusCode.ERROR, error))
        span.end()


class RequestSpan:
    """The span of one request, a child of the client's trace context when it sent one."""

    __slots__ = ("_output", "span", "tracer")

    def __init__(self, tracer: Tracing, span: Span) -> None:
        self.tracer = tracer
        self.span = span
        self._output: tuple[str, str] | None = None

    def attempt(self, target: Target) -> AttemptSpan:
        """A child span for an attempt at ``target``; upstream requests made in this task
        carry its trace context until the next attempt or the request's end."""
        deployment = target.deployment
        span = self.tracer.tracer.start_span(
            f"attempt {deployment.name}", set_span_in_context(self.span), SpanKind.CLIENT,
            attributes={"inferplane.deployment": deployment.name,
                        "inferplane.version": deployment.version_name,
                        "gen_ai.provider.name": provider_name(deployment.provider),
                        "gen_ai.request.model": deployment.upstream_model or deployment.model})
        carrier: dict[str, str] = {}
        self.tracer.propagator.inject(carrier, set_span_in_context(span))
        UPSTREAM_TRACE.set(carrier)
        return AttemptSpan(span)

    def output(self, text: str, finish_reason: str) -> None:
        """The whole completion, kept for the span where content is captured."""
        if self.tracer.capture_content:
            self._output = (text, finish_reason)

    def end(self, record: UsageRecord, acct: Accounting) -> None:
        UPSTREAM_TRACE.set(None)  # what runs after (a shadow copy) is not this request's
        span = self.span
        if span.is_recording():
            span.update_name(span_name(record.endpoint, record.model))
            target = acct.target
            attrs = record_attributes(
                record, None if target is None else target.deployment.upstream_model)
            if acct.request is not None:
                attrs.update(request_attributes(acct.request))
                if self.tracer.capture_content:
                    attrs.update(input_messages(acct.request))
            if self._output is not None:
                attrs.update(output_messages(*self._output))
            span.set_attributes(attrs)
            if record.error_type is not None:
                span.set_status(Status(StatusCode.ERROR, record.error_type))
        span.end()
