"""The gateway's tracer, set up from OpenTelemetry's standard ``OTEL_*`` environment variables.

Imported only when tracing is on (``observe/tracing.py``). No OpenTelemetry SDK is loaded:
spans are Inferplane's own (``spans.py``), encoded straight to OTLP protobuf (``otlp.py``) in
an export thread (``span_export.py``), which costs a request a fraction of what the SDK's
spans and encoder did (docs/observability.md, "What it costs"). Read: ``OTEL_TRACES_EXPORTER``
(``otlp``, the default, or ``console``), ``OTEL_TRACES_SAMPLER`` and ``_ARG`` (``sampling.py``),
``OTEL_SERVICE_NAME`` (default ``inferplane``), ``OTEL_RESOURCE_ATTRIBUTES``, the
``OTEL_BSP_*`` batch settings and the ``OTEL_EXPORTER_OTLP_*`` endpoint, headers, timeout
and compression (``span_export.py``).
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from inferplane import __version__
from inferplane.observe import otlp
from inferplane.observe.genai import REPEATING
from inferplane.observe.sampling import Sampler, sampler
from inferplane.observe.span_export import (
    BatchExporter,
    ConsoleExporter,
    SpanSink,
    parse_pairs,
)
from inferplane.observe.spans import RequestSpan
from inferplane.observe.w3c import extract
from inferplane.request_accounting import Accounting

SCOPE = "inferplane"


def resource(env: Mapping[str, str]) -> dict[str, Any]:
    """The resource every span is exported under.

    >>> resource({"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,service.name=x",
    ...           "OTEL_SERVICE_NAME": "gw"})["service.name"]
    'gw'
    """
    attrs: dict[str, Any] = {"service.name": "inferplane", "service.version": __version__,
                             "telemetry.sdk.name": "inferplane",
                             "telemetry.sdk.language": "python",
                             "telemetry.sdk.version": __version__,
                             "process.runtime.version": platform.python_version()}
    attrs.update(parse_pairs(env.get("OTEL_RESOURCE_ATTRIBUTES", "")))
    if name := env.get("OTEL_SERVICE_NAME", "").strip():
        attrs["service.name"] = name
    return attrs


class Tracer:
    """Opens each request's span: a child of the client's ``traceparent``, when it sent one."""

    def __init__(self, sink: SpanSink, sampler: Sampler, capture_content: bool = False) -> None:
        self.sink = sink
        self.sampler = sampler
        self.capture_content = capture_content

    @classmethod
    def from_env(cls, capture_content: bool, env: Mapping[str, str]) -> Tracer:
        otlp.REPEATING.update(REPEATING)
        sink: SpanSink
        if env.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() == "console":
            sink = ConsoleExporter()
        else:
            sink = BatchExporter.otlp(env, resource(env), SCOPE, __version__)
        return cls(sink, sampler(env), capture_content)

    def request(self, acct: Accounting, headers: Mapping[str, str]) -> RequestSpan:
        """The span of the request ``acct`` accounts for, from its arrival."""
        return RequestSpan(self, extract(headers), int(acct.ts * 1e9))

    def shutdown(self) -> None:
        """Export what is left (the gateway stops)."""
        self.sink.shutdown()
