"""Drift detection: whether a model's traffic now differs from what it was (docs/observability.md).

By module: ``stats`` the two-sample tests (pure); ``features`` what one request contributes
(script, code-likeness, refusal; pure); ``windows`` the reference and current windows of one
model (or model and tenant) and their verdicts (pure but for numpy); ``monitor`` the bounded
queue the request path feeds and the worker thread that embeds and judges off the path.
"""
