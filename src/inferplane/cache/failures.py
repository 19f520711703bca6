"""A cache's failures, logged at most once a minute: the request is served as a miss, and a
backend that stays down does not flood the log."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("inferplane.cache")
WARN_EVERY_S = 60.0


class FailureLog:
    def __init__(self, cache: str) -> None:
        self.cache = cache  # "response cache", "semantic cache"
        self._warned = 0.0

    def warn(self, what: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned >= WARN_EVERY_S:
            self._warned = now
            log.warning("%s %s failed (served as a miss): %s: %s", self.cache, what,
                        type(exc).__name__, exc)
