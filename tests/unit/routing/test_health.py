"""EWMA, outcome window, circuit breaker transitions, per-deployment stats."""

from __future__ import annotations

import pytest

from inferplane.routing.health import (
    BreakerConfig,
    BreakerState,
    CircuitBreaker,
    DeploymentStats,
    Ewma,
    LiveStats,
    OutcomeWindow,
)

CLOSED, OPEN, HALF_OPEN = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def test_ewma_starts_at_the_first_sample_and_moves_by_alpha() -> None:
    e = Ewma(alpha=0.25)
    assert e.value is None
    assert e.update(2.0) == 2.0
    assert e.update(6.0) == 3.0
    with pytest.raises(ValueError):
        e.update(float("nan"))
    with pytest.raises(ValueError):
        Ewma(alpha=0.0)


def test_outcome_window_keeps_the_last_n_and_drops_old_ones() -> None:
    w = OutcomeWindow(size=3, max_age_s=10.0)
    for t, ok in [(0.0, False), (1.0, False), (2.0, True), (3.0, True)]:
        w.record(ok, t)
    assert w.counts(3.0) == (3, 1)
    assert w.counts(11.5) == (2, 0)  # t=0 and t=1 are older than 10s
    assert w.error_rate(100.0) == 0.0
    w.record(False, 100.0)
    assert w.error_rate(100.0) == 1.0
    w.clear()
    assert w.counts(100.0) == (0, 0)


def tripped(config: BreakerConfig, at: float = 0.0) -> CircuitBreaker:
    b = CircuitBreaker(config)
    for _ in range(config.min_requests):
        b.record_failure(at)
    assert b.state(at) is OPEN
    return b


def test_breaker_needs_the_minimum_number_of_requests() -> None:
    b = CircuitBreaker(BreakerConfig(window=10, min_requests=5, error_threshold=0.5))
    for t in range(4):
        b.record_failure(float(t))
    assert b.state(4.0) is CLOSED and b.allow(4.0)
    b.record_failure(4.0)
    assert b.state(4.0) is OPEN and not b.allow(4.0)


def test_breaker_opens_when_the_error_rate_reaches_the_threshold() -> None:
    b = CircuitBreaker(BreakerConfig(window=10, min_requests=4, error_threshold=0.5))
    for ok in (True, True, True, False, True, False, False):
        (b.record_success if ok else b.record_failure)(0.0)
    assert b.state(0.0) is CLOSED  # 3 of 7
    b.record_failure(0.0)  # 4 of 8 = 0.5
    assert b.state(0.0) is OPEN


def test_breaker_window_forgets_old_failures() -> None:
    b = CircuitBreaker(BreakerConfig(window=10, window_s=30.0, min_requests=3))
    b.record_failure(0.0)
    b.record_failure(1.0)
    b.record_failure(40.0)
    assert b.state(40.0) is CLOSED


def test_breaker_stays_open_for_the_cooldown_then_lets_limited_probes_through() -> None:
    b = tripped(BreakerConfig(min_requests=2, cooldown_s=10.0, half_open_probes=2))
    assert not b.allow(9.99) and b.state(9.99) is OPEN
    assert b.state(10.0) is HALF_OPEN
    assert b.available(10.0) and b.available(10.0)  # asking takes no slot
    assert b.allow(10.0) and b.allow(10.0)
    assert not b.allow(10.0) and not b.available(10.0)
    b.release(10.5)  # a probe cancelled: its slot comes back
    assert b.allow(10.5)


def test_probe_success_closes_and_resets_cooldown_and_window() -> None:
    config = BreakerConfig(min_requests=2, window=4, cooldown_s=10.0)
    b = tripped(config)
    b.allow(10.0)
    b.record_failure(10.0)
    assert b.cooldown_s == 20.0
    b.allow(30.0)
    b.record_success(30.0)
    assert b.state(30.0) is CLOSED and b.cooldown_s == 10.0
    b.record_failure(31.0)  # the failures from before the close are forgotten
    assert b.state(31.0) is CLOSED


def test_probe_failure_reopens_with_a_growing_capped_cooldown() -> None:
    b = tripped(BreakerConfig(min_requests=2, cooldown_s=5.0, cooldown_factor=2.0,
                              max_cooldown_s=30.0))
    now, cooldowns = 0.0, []
    for _ in range(5):
        now += b.cooldown_s
        assert b.state(now) is HALF_OPEN and b.allow(now)
        b.record_failure(now)
        assert b.state(now) is OPEN
        cooldowns.append(b.cooldown_s)
    assert cooldowns == [10.0, 20.0, 30.0, 30.0, 30.0]
    assert b.state(now + 29.9) is OPEN and b.state(now + 30.0) is HALF_OPEN


def test_outcomes_while_open_are_ignored() -> None:
    b = tripped(BreakerConfig(min_requests=2, cooldown_s=10.0))
    b.record_success(1.0)  # a request from before the circuit opened
    assert b.state(1.0) is OPEN
    b.record_failure(2.0)
    assert b.cooldown_s == 10.0


@pytest.mark.parametrize("fields", [
    {"window": 0}, {"min_requests": 30, "window": 20}, {"error_threshold": 0.0},
    {"cooldown_s": 0.0}, {"cooldown_s": 200.0, "max_cooldown_s": 100.0},
    {"cooldown_factor": 0.5}, {"half_open_probes": 0},
])
def test_breaker_config_validates(fields: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**fields)  # type: ignore[arg-type]


def test_deployment_stats_track_one_request() -> None:
    s = DeploymentStats(ttft=Ewma(0.5), itl=Ewma(0.5))
    assert s.start(0.0) and s.start(0.0)
    assert s.in_flight == 2
    s.first_token(started_at=0.0, now=0.5)
    s.tokens(count=99, elapsed_s=0.99)
    s.end(1.4, ok=True)
    s.first_token(started_at=0.0, now=0.75)
    s.end(0.9, ok=False)
    assert s.snapshot(1.4) == LiveStats(in_flight=0, ttft_s=0.625, itl_s=0.01,
                                        error_rate=0.5, breaker_open=False)


def test_deployment_stats_start_is_gated_by_the_breaker() -> None:
    s = DeploymentStats(breaker=CircuitBreaker(BreakerConfig(min_requests=1, cooldown_s=5.0)))
    assert s.start(0.0)
    s.end(0.1, ok=False)
    assert s.snapshot(0.1).breaker_open
    assert not s.start(1.0) and s.in_flight == 0
    assert s.snapshot(5.0).breaker_open  # opened at 0.1 for 5s
    assert not s.snapshot(5.1).breaker_open  # half-open: one probe may go
    assert s.start(5.1)
    assert s.snapshot(5.1).breaker_open  # and it is out
    s.end(5.2, ok=None)  # cancelled: the probe slot comes back, nothing learned
    assert s.breaker.state(5.2) is HALF_OPEN and s.start(5.3)
    s.end(5.5, ok=True)
    assert s.breaker.state(5.5) is CLOSED


def test_tokens_without_any_after_the_first_leave_itl_unknown() -> None:
    s = DeploymentStats()
    s.tokens(count=0, elapsed_s=0.0)
    assert s.itl.value is None
