"""What the gateway exposes for monitoring: Prometheus metrics at ``GET /metrics``.

``metrics.py`` puts them together; ``labels.py`` keeps every label value bounded;
``usage.py`` counts what the ledger records; ``latency.py`` holds the timing histograms
(``histograms.py``: lock-free, for the event loop);
``engines.py`` and ``breakers.py`` read live state at scrape time. The reference is
``docs/observability.md``; the alerting rules over them are in ``deploy/prometheus/``.
"""
