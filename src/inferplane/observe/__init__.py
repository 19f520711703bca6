"""What the gateway exposes for monitoring: Prometheus metrics at ``GET /metrics``, and
OpenTelemetry traces where tracing is on.

``metrics.py`` puts them together; ``labels.py`` keeps every label value bounded;
``usage.py`` counts what the ledger records; ``latency.py`` holds the timing histograms
(``histograms.py``: lock-free, for the event loop);
``engines.py`` and ``breakers.py`` read live state at scrape time. Traces: ``tracing.py`` decides
whether (and loads the SDK, ``otel.py``, only then), ``spans.py`` holds a request's span and its
attempts', ``genai.py`` maps a ledger record to GenAI attributes, ``trace_context.py`` carries
``traceparent`` to upstream requests. The reference is
``docs/observability.md``; the alerting rules over them are in ``deploy/prometheus/``.
"""
