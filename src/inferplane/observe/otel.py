"""The OpenTelemetry SDK, set up from the standard ``OTEL_*`` environment variables.

Imported only when tracing is on (``observe/tracing.py``). The provider is the gateway's own,
not the process's global one. Spans leave through a batch processor (``OTEL_BSP_*``) to the
exporter ``OTEL_TRACES_EXPORTER`` names: ``otlp`` (the default), OTLP over HTTP/protobuf to
``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` + ``/v1/traces``
(``OTEL_EXPORTER_OTLP_HEADERS`` ...), or ``console``. ``OTEL_TRACES_SAMPLER`` (default
``parentbased_always_on``), ``OTEL_SERVICE_NAME`` (default ``inferplane``) and
``OTEL_RESOURCE_ATTRIBUTES`` are the SDK's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from inferplane import __version__
from inferplane.observe.genai import operation
from inferplane.observe.spans import RequestSpan
from inferplane.request_accounting import Accounting

log = logging.getLogger("inferplane")


class Tracer:
    """Opens each request's span: a child of the client's ``traceparent``, when it sent one."""

    def __init__(self, provider: TracerProvider, capture_content: bool = False,
                 propagator: TextMapPropagator | None = None) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("inferplane", __version__)
        self.propagator = propagator or TraceContextTextMapPropagator()
        self.capture_content = capture_content

    @classmethod
    def from_env(cls, capture_content: bool, env: Mapping[str, str]) -> Tracer:
        attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "inferplane"}
        provider = TracerProvider(resource=Resource.create(attributes))
        provider.add_span_processor(BatchSpanProcessor(_exporter(env)))
        return cls(provider, capture_content)

    def request(self, acct: Accounting, headers: Mapping[str, str]) -> RequestSpan:
        """The span of the request ``acct`` accounts for, from its arrival."""
        parent = self.propagator.extract(headers)
        span = self.tracer.start_span(operation(acct.endpoint), parent, SpanKind.SERVER,
                                      start_time=int(acct.ts * 1e9))
        return RequestSpan(self, span)

    def shutdown(self) -> None:
        """Export what is left (the gateway stops)."""
        self.provider.shutdown()


def _exporter(env: Mapping[str, str]) -> SpanExporter:
    if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
        return ConsoleSpanExporter()
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                       env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"))
    if protocol != "http/protobuf":
        log.warning("OTLP protocol %r is not supported: traces go over http/protobuf", protocol)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()
