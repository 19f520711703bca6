"""The ``observe`` section: OpenTelemetry traces (metrics need no setting: ``/metrics``)."""

from __future__ import annotations

from inferplane.config.problems import Section


class ObserveConfig(Section):
    """Tracing is off unless ``tracing: true`` here or ``OTEL_TRACES_EXPORTER=otlp`` (or
    ``console``) in the environment; where spans go, and how many are sampled, the standard
    ``OTEL_*`` variables say (docs/observability.md)."""

    tracing: bool = False
    # prompts and completions as span attributes (gen_ai.input.messages, ...): off, they may
    # hold personal data
    capture_content: bool = False
