"""Whether the gateway traces, and its tracer when it does.

Tracing is off by default. It is on when the configuration says ``observe: {tracing: true}``
or the environment names an exporter (``OTEL_TRACES_EXPORTER=otlp`` or ``console``), unless
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Off, the tracing modules are not
imported and no span object is made: a request pays for two ``is None`` tests and the
upstream transport for one context-variable read. On, ``observe/otel.py`` is imported here,
once; it needs no OpenTelemetry package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from inferplane.config.observe import ObserveConfig

if TYPE_CHECKING:
    from inferplane.observe.otel import Tracer

EXPORTERS = ("otlp", "console")


def enabled(config: ObserveConfig, env: Mapping[str, str] = os.environ) -> bool:
    """Whether to trace (the module's docstring says when)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return config.tracing or exporter in EXPORTERS


def build_tracer(config: ObserveConfig, env: Mapping[str, str] = os.environ) -> Tracer | None:
    """The gateway's tracer, exporting as the ``OTEL_*`` variables say; None when off."""
    if not enabled(config, env):
        return None
    from inferplane.observe.otel import Tracer

    return Tracer.from_env(config.capture_content, env)
