"""Label values a client cannot multiply.

A label value that comes from a request would let any client add series to ``/metrics``
without bound (a denial of service on the gateway and on the Prometheus that scrapes it).
Every label here comes from a bounded set: model names from the configuration (a name it does
not hold counts as ``unknown``), deployments, providers and regions from the configuration,
tenants from the tenancy store, and statuses from the gateway's own answers (any other is
counted by its class, ``5xx``).

>>> bounds = Bounds(["default", "gemma"])
>>> bounds.model("gemma"), bounds.model("junk-17")
('gemma', 'unknown')
>>> bounds.status(429), bounds.status(418), bounds.status(700)
('429', '4xx', 'other')
"""

from __future__ import annotations

from collections.abc import Iterable

UNKNOWN_MODEL = "unknown"
# What the gateway answers (errors.py, request_accounting.CLIENT_CLOSED): each its own value.
STATUSES = (200, 400, 401, 403, 404, 408, 409, 413, 422, 429, 499, 500, 502, 503, 504)
_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


class Bounds:
    """Maps what a record holds to the label values it is counted under."""

    __slots__ = ("_models", "_statuses")

    def __init__(self, models: Iterable[str]) -> None:
        self._models = frozenset(models)
        self._statuses = {status: str(status) for status in STATUSES}

    def model(self, name: str) -> str:
        return name if name in self._models else UNKNOWN_MODEL

    def status(self, status: int) -> str:
        known = self._statuses.get(status)
        if known is not None:
            return known
        return _CLASSES.get(status // 100, "other")
