"""The ``observe`` section: OpenTelemetry traces (metrics need no setting: ``/metrics``) and
where the dashboard reads firing alerts from besides the gateway itself."""

from __future__ import annotations

from pydantic import Field, field_validator

from inferplane.config.problems import Section


class ObserveConfig(Section):
    """Tracing is off unless ``tracing: true`` here or ``OTEL_TRACES_EXPORTER=otlp`` (or
    ``console``) in the environment; where spans go, and how many are sampled, the standard
    ``OTEL_*`` variables say (docs/observability.md)."""

    tracing: bool = False
    # prompts and completions as span attributes (gen_ai.input.messages, ...): off, they may
    # hold personal data
    capture_content: bool = False
    # the alerts API of a Prometheus (/api/v1/alerts) or an Alertmanager (/api/v2/alerts): the
    # dashboard lists their firing alerts beside the gateway's own conditions
    alerts_url: str | None = Field(None, examples=["http://prometheus:9090/api/v1/alerts"])

    @field_validator("alerts_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("alerts_url must be an http:// or https:// URL")
        return url
