"""When to try a request again, and how long to wait first.

The router retries on the same deployment or moves to the next in the decision's order; these
helpers only classify failures, parse ``Retry-After`` and compute delays. Time and randomness
come in as arguments.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

#: Failures that never reached an answer from the upstream and are worth another attempt.
RETRYABLE_KINDS = frozenset({"connect", "timeout"})

#: The request itself is at fault: another attempt anywhere gets the same answer.
NEVER_RETRY = frozenset({400, 401, 403, 404, 413, 422})

#: Retry-After values above this are clamped to it.
MAX_RETRY_AFTER_S = 120.0


def is_retryable(status: int | None, kind: str) -> bool:
    """Whether a failed attempt is worth repeating (here or on another deployment).

    ``status`` is the upstream's HTTP status when one came back; ``kind`` names the failure
    ("http", "connect", "timeout", ...). A status decides when present: 408, 429 and every
    5xx (529 "overloaded" included) are retryable, nothing else. Without one, only
    "connect" and "timeout" are.

    >>> is_retryable(529, "http"), is_retryable(429, "http"), is_retryable(422, "http")
    (True, True, False)
    >>> is_retryable(None, "connect"), is_retryable(None, "protocol")
    (True, False)
    """
    if status is not None:
        if status in NEVER_RETRY:
            return False
        return status in (408, 429) or 500 <= status <= 599
    return kind in RETRYABLE_KINDS


def parse_retry_after(value: str | None, now: float,
                      max_s: float = MAX_RETRY_AFTER_S) -> float | None:
    """Seconds to wait from a ``Retry-After`` value, or ``None`` when absent or unreadable.

    Both forms are read: delta-seconds (a decimal fraction is accepted, as some APIs send
    one) and an HTTP-date, against ``now`` in Unix seconds. A date in the past gives 0; any
    value is clamped to ``max_s``.

    >>> parse_retry_after("7", now=0.0), parse_retry_after("1.5", now=0.0)
    (7.0, 1.5)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:00:30 GMT", now=10.0)
    20.0
    >>> parse_retry_after("86400", now=0.0), parse_retry_after("soon", now=0.0)
    (120.0, None)
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text[0].isdigit():
        try:
            delay = float(text)
        except ValueError:
            return None
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000": HTTP dates are GMT anyway
            when = when.replace(tzinfo=UTC)
        delay = when.timestamp() - now
    if math.isnan(delay):
        return None
    return min(max(delay, 0.0), max_s)


def backoff_delay(attempt: int, base_s: float, cap_s: float, rng: random.Random,
                  retry_after_s: float | None = None) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(cap_s, base_s * 2**attempt)].

    ``attempt`` counts the retries before this one (0 for the first). A ``Retry-After`` is a
    floor, itself capped at ``cap_s``: a caller that will not wait that long should move to
    another deployment instead.

    >>> rng = random.Random(0)
    >>> 0 <= backoff_delay(3, 0.5, 2.0, rng) <= 2.0
    True
    >>> backoff_delay(0, 0.5, 2.0, rng, retry_after_s=30.0)
    2.0
    """
    if attempt < 0 or base_s < 0 or cap_s < 0:
        raise ValueError("attempt, base_s and cap_s must be >= 0")
    ceiling = min(cap_s, base_s * 2.0 ** min(attempt, 1000))
    delay = rng.uniform(0.0, ceiling)
    if retry_after_s is not None:
        delay = max(delay, min(max(retry_after_s, 0.0), cap_s))
    return delay


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one request tries: attempts per deployment, attempts in all, a deadline
    from the request's start, and the backoff between attempts on the same deployment.
    """

    max_attempts_per_deployment: int = 2
    max_attempts: int = 4
    deadline_s: float | None = 60.0
    base_s: float = 0.25
    cap_s: float = 4.0

    def __post_init__(self) -> None:
        if self.max_attempts_per_deployment < 1 or self.max_attempts < 1:
            raise ValueError("max_attempts_per_deployment and max_attempts must be >= 1")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError(f"deadline_s must be > 0 or None, got {self.deadline_s}")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("base_s and cap_s must be >= 0")

    def delay(self, attempt: int, rng: random.Random,
              retry_after_s: float | None = None) -> float:
        return backoff_delay(attempt, self.base_s, self.cap_s, rng, retry_after_s)


@dataclass(slots=True)
class RetryBudget:
    """What one request has spent of its :class:`RetryPolicy`.

    >>> budget = RetryBudget(RetryPolicy(max_attempts_per_deployment=1), started_at=0.0)
    >>> budget.allows("a", now=0.0)
    True
    >>> budget.record("a"); budget.allows("a", now=0.0), budget.allows("b", now=0.0)
    (False, True)
    """

    policy: RetryPolicy
    started_at: float
    attempts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.attempts.values())

    def remaining_s(self, now: float) -> float:
        if self.policy.deadline_s is None:
            return math.inf
        return self.started_at + self.policy.deadline_s - now

    def allows(self, deployment: str, now: float, delay_s: float = 0.0) -> bool:
        """Whether another attempt on ``deployment`` after ``delay_s`` fits the budget."""
        return (self.total < self.policy.max_attempts
                and self.attempts.get(deployment, 0) < self.policy.max_attempts_per_deployment
                and delay_s < self.remaining_s(now))

    def record(self, deployment: str) -> None:
        self.attempts[deployment] = self.attempts.get(deployment, 0) + 1

    def delay_before_retry(self, deployment: str, rng: random.Random,
                           retry_after_s: float | None = None) -> float:
        """The backoff before the next attempt on ``deployment``, counted from its attempts."""
        retries_so_far = max(0, self.attempts.get(deployment, 0) - 1)
        return self.policy.delay(retries_so_far, rng, retry_after_s)
