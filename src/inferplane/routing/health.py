"""Live health of one deployment: latency EWMAs, recent errors, a circuit breaker.

Plain objects the router owns, one per deployment. Nothing here reads a clock: every method
that depends on time takes ``now`` (seconds on a monotonic clock).

The breaker's states::

    closed --(error rate >= threshold over the window, with >= min_requests)--> open
    open --(cooldown elapsed)--> half-open
    half-open --(a probe succeeds)--> closed          (cooldown back to its base)
    half-open --(a probe fails)--> open                (cooldown x factor, capped)

Outcomes recorded while open (requests that started before it opened) are ignored; in
half-open any recorded outcome counts as a probe's.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(slots=True)
class Ewma:
    """Exponentially weighted moving average; ``value`` is ``None`` before the first sample.

    >>> e = Ewma(alpha=0.5)
    >>> e.update(1.0), e.update(3.0)
    (1.0, 2.0)
    """

    alpha: float = 0.2
    value: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {self.alpha}")

    def update(self, sample: float) -> float:
        if not (math.isfinite(sample) and sample >= 0):
            raise ValueError(f"sample must be a finite number >= 0, got {sample!r}")
        if self.value is None:
            self.value = sample
        else:
            self.value += self.alpha * (sample - self.value)
        return self.value


class OutcomeWindow:
    """The last ``size`` outcomes, less those older than ``max_age_s`` when that is given.

    >>> w = OutcomeWindow(size=3)
    >>> for ok in (True, False, False, True):
    ...     w.record(ok, now=0.0)
    >>> w.counts(now=0.0), w.error_rate(now=0.0)
    ((3, 2), 0.6666666666666666)
    """

    __slots__ = ("_failures", "_outcomes", "max_age_s", "size")

    def __init__(self, size: int, max_age_s: float | None = None) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError(f"max_age_s must be > 0 or None, got {max_age_s}")
        self.size = size
        self.max_age_s = max_age_s
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0

    def _drop_first(self) -> None:
        _, ok = self._outcomes.popleft()
        if not ok:
            self._failures -= 1

    def _expire(self, now: float) -> None:
        if self.max_age_s is None:
            return
        horizon = now - self.max_age_s
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._drop_first()

    def record(self, ok: bool, now: float) -> None:
        self._expire(now)
        if len(self._outcomes) == self.size:
            self._drop_first()
        self._outcomes.append((now, ok))
        if not ok:
            self._failures += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(outcomes, failures) in the window."""
        self._expire(now)
        return len(self._outcomes), self._failures

    def error_rate(self, now: float) -> float:
        """Failures over outcomes in the window; 0.0 when it is empty."""
        total, failures = self.counts(now)
        return failures / total if total else 0.0

    def clear(self) -> None:
        self._outcomes.clear()
        self._failures = 0


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """When a circuit opens and how it recovers.

    It opens when, among the last ``window`` outcomes no older than ``window_s``, there are at
    least ``min_requests`` and the failure share reaches ``error_threshold``. It stays open for
    ``cooldown_s``, then lets ``half_open_probes`` requests through at a time; each failed
    probe multiplies the cooldown by ``cooldown_factor`` up to ``max_cooldown_s``.
    """

    window: int = 20
    window_s: float | None = 60.0
    min_requests: int = 5
    error_threshold: float = 0.5
    cooldown_s: float = 5.0
    cooldown_factor: float = 2.0
    max_cooldown_s: float = 120.0
    half_open_probes: int = 1

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_requests < 1 or self.half_open_probes < 1:
            raise ValueError("window, min_requests and half_open_probes must be >= 1")
        if self.min_requests > self.window:
            raise ValueError("min_requests cannot exceed window: the circuit could never open")
        if not 0.0 < self.error_threshold <= 1.0:
            raise ValueError(f"error_threshold must be in (0, 1], got {self.error_threshold}")
        if not 0.0 < self.cooldown_s <= self.max_cooldown_s:
            raise ValueError("cooldown_s must be > 0 and <= max_cooldown_s")
        if self.cooldown_factor < 1.0:
            raise ValueError(f"cooldown_factor must be >= 1, got {self.cooldown_factor}")


class CircuitBreaker:
    """Stops sending to a deployment that keeps failing, and probes it back in.

    ``allow`` is the gate right before a request is sent: in half-open it takes one of the
    probe slots. ``available`` asks the same question without taking anything, for building
    candidate lists.

    >>> b = CircuitBreaker(BreakerConfig(window=4, min_requests=2, cooldown_s=10.0))
    >>> b.record_failure(0.0); b.record_failure(1.0)
    >>> b.state(1.0), b.allow(5.0), b.state(11.0)
    (<BreakerState.OPEN: 'open'>, False, <BreakerState.HALF_OPEN: 'half-open'>)
    >>> b.allow(11.0), b.allow(11.0)
    (True, False)
    >>> b.record_success(12.0); b.state(12.0)
    <BreakerState.CLOSED: 'closed'>
    """

    __slots__ = ("_cooldown_s", "_opened_at", "_probes", "_state", "_window", "config")

    def __init__(self, config: BreakerConfig | None = None) -> None:
        self.config = config or BreakerConfig()
        self._window = OutcomeWindow(self.config.window, self.config.window_s)
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._cooldown_s = self.config.cooldown_s
        self._probes = 0

    @property
    def cooldown_s(self) -> float:
        """The cooldown the circuit opens (or last opened) for."""
        return self._cooldown_s

    def state(self, now: float) -> BreakerState:
        if self._state is BreakerState.OPEN and now >= self._opened_at + self._cooldown_s:
            self._state = BreakerState.HALF_OPEN
            self._probes = 0
        return self._state

    def available(self, now: float) -> bool:
        """Whether ``allow(now)`` would let a request through, without taking a probe slot."""
        state = self.state(now)
        return state is BreakerState.CLOSED or (
            state is BreakerState.HALF_OPEN and self._probes < self.config.half_open_probes)

    def allow(self, now: float) -> bool:
        """Let a request through (taking a probe slot when half-open), or not."""
        if not self.available(now):
            return False
        if self._state is BreakerState.HALF_OPEN:
            self._probes += 1
        return True

    def release(self, now: float) -> None:
        """Give back a probe slot whose request ended without an outcome (cancelled)."""
        if self.state(now) is BreakerState.HALF_OPEN and self._probes > 0:
            self._probes -= 1

    def record_success(self, now: float) -> None:
        state = self.state(now)
        if state is BreakerState.HALF_OPEN:
            self._window.clear()
            self._cooldown_s = self.config.cooldown_s
            self._state = BreakerState.CLOSED
        elif state is BreakerState.CLOSED:
            self._window.record(True, now)

    def record_failure(self, now: float) -> None:
        state = self.state(now)
        if state is BreakerState.HALF_OPEN:
            longer = self._cooldown_s * self.config.cooldown_factor
            self._open(now, min(longer, self.config.max_cooldown_s))
        elif state is BreakerState.CLOSED:
            self._window.record(False, now)
            total, failures = self._window.counts(now)
            if (total >= self.config.min_requests
                    and failures >= self.config.error_threshold * total):
                self._open(now, self.config.cooldown_s)

    def _open(self, now: float, cooldown_s: float) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = now
        self._cooldown_s = cooldown_s
        self._probes = 0


@dataclass(frozen=True, slots=True)
class LiveStats:
    """A deployment's live numbers at one moment, as :class:`Candidate` takes them."""

    in_flight: int
    ttft_s: float | None
    itl_s: float | None
    error_rate: float
    breaker_open: bool


@dataclass(slots=True)
class DeploymentStats:
    """Everything the router tracks about one deployment.

    Per request: ``start`` (gated by the breaker), ``first_token`` once, ``tokens`` once at
    the end with the tokens after the first and the time they took (one inter-token sample
    per request, so long outputs do not outweigh short ones), then ``end`` with ``ok=True``,
    ``False``, or ``None`` when the outcome says nothing about the deployment (the client
    cancelled, or the request itself was invalid).

    >>> s = DeploymentStats()
    >>> s.start(0.0)
    True
    >>> s.first_token(started_at=0.0, now=0.5); s.tokens(10, 0.2); s.end(0.7, ok=True)
    >>> s.snapshot(0.7)
    LiveStats(in_flight=0, ttft_s=0.5, itl_s=0.02, error_rate=0.0, breaker_open=False)
    """

    breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    ttft: Ewma = field(default_factory=Ewma)
    itl: Ewma = field(default_factory=Ewma)
    outcomes: OutcomeWindow = field(default_factory=lambda: OutcomeWindow(100, 300.0))
    in_flight: int = 0

    def start(self, now: float) -> bool:
        """Ask the breaker; when it allows, count the request in flight and return True."""
        if not self.breaker.allow(now):
            return False
        self.in_flight += 1
        return True

    def first_token(self, started_at: float, now: float) -> None:
        self.ttft.update(max(0.0, now - started_at))

    def tokens(self, count: int, elapsed_s: float) -> None:
        """``count`` tokens after the first arrived over ``elapsed_s`` seconds."""
        if count > 0:
            self.itl.update(max(0.0, elapsed_s) / count)

    def end(self, now: float, ok: bool | None) -> None:
        self.in_flight = max(0, self.in_flight - 1)
        if ok is None:
            self.breaker.release(now)
            return
        self.outcomes.record(ok, now)
        if ok:
            self.breaker.record_success(now)
        else:
            self.breaker.record_failure(now)

    def restarted(self) -> None:
        """The deployment's engine process was started afresh: what failed was the old
        process's, so the breaker closes and the error window empties (latencies stay)."""
        self.breaker = CircuitBreaker(self.breaker.config)
        self.outcomes.clear()

    def snapshot(self, now: float) -> LiveStats:
        return LiveStats(
            in_flight=self.in_flight,
            ttft_s=self.ttft.value,
            itl_s=self.itl.value,
            error_rate=self.outcomes.error_rate(now),
            breaker_open=not self.breaker.available(now),
        )
