"""What one server process remembers: settings, pending faults, the request log, counters."""

from __future__ import annotations

import itertools
import time
from collections import Counter, deque
from typing import Any

from .connection import Protocol
from .faults import FaultQueue
from .settings import Settings
from .wire import Request

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "x-goog-api-key"})
SECRET_QUERY = frozenset({"key"})
REDACTED = "<redacted>"
LOG_LIMIT = 100_000  # newest requests kept; older ones are dropped


def redact(values: dict[str, str], secret: frozenset[str]) -> dict[str, str]:
    """``values`` with the secret ones replaced.

    >>> redact({"x-api-key": "k", "a": "b"}, SECRET_HEADERS)
    {'x-api-key': '<redacted>', 'a': 'b'}
    """
    return {k: REDACTED if k in secret else v for k, v in values.items()}


class State:
    """Mutable state of one server process (each worker has its own)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.faults = FaultQueue()
        self.requests: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        self._seq = itertools.count(1)
        self.counts: Counter[str] = Counter()
        self.in_flight = 0
        self.connections_before = 0  # Protocol.opened when the counters were last cleared

    def record(self, req: Request, raw_body: bytes, protocol: str, auth_ok: bool, status: int,
               fault: str | None) -> None:
        """Append ``req`` and how it was answered to the request log."""
        body: Any = req.body
        if body is None and raw_body:
            body = raw_body.decode("utf-8", "replace")
        entry = {
            "seq": next(self._seq),
            "time": time.time(),
            "method": req.method,
            "path": req.path,
            "query": redact(req.query, SECRET_QUERY),
            "headers": redact(req.headers, SECRET_HEADERS),
            "auth_ok": auth_ok,
            "protocol": protocol,
            "body": body,
            "status": status,
            "fault": fault,
        }
        self.requests.append(entry)

    def count(self, protocol: str, status: int, fault: str | None) -> None:
        counts = self.counts
        counts["requests"] += 1
        counts["protocol:" + protocol] += 1
        counts["status:" + str(status)] += 1
        if fault:
            counts["fault:" + fault] += 1

    def stats(self) -> dict[str, Any]:
        """Counters grouped by what they count."""
        out: dict[str, Any] = {"requests": self.counts["requests"], "in_flight": self.in_flight,
                               "connections": Protocol.opened - self.connections_before,
                               "by_protocol": {}, "by_status": {}, "faults": {}}
        groups = {"protocol": "by_protocol", "status": "by_status", "fault": "faults"}
        for key, n in self.counts.items():
            group, _, name = key.partition(":")
            if group in groups:
                out[groups[group]][name] = n
        return out
