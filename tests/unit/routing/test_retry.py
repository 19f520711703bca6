"""Retry classification, Retry-After parsing, backoff bounds, the per-request budget."""

from __future__ import annotations

import random

import pytest

from inferplane.routing.retry import (
    RetryBudget,
    RetryPolicy,
    backoff_delay,
    is_retryable,
    parse_retry_after,
)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 529])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable(status, "http")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 413, 422, 200])
def test_statuses_never_retried(status: int) -> None:
    assert not is_retryable(status, "http")
    assert not is_retryable(status, "timeout")  # the status decides when there is one


@pytest.mark.parametrize(("kind", "expected"), [
    ("connect", True), ("timeout", True), ("protocol", False), ("cancelled", False),
])
def test_failures_without_a_status(kind: str, expected: bool) -> None:
    assert is_retryable(None, kind) is expected


NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z


@pytest.mark.parametrize(("value", "expected"), [
    ("5", 5.0), (" 2 ", 2.0), ("0.25", 0.25), ("0", 0.0),
    ("Tue, 14 Nov 2023 22:13:50 GMT", 30.0),  # IMF-fixdate
    ("Tuesday, 14-Nov-23 22:13:50 GMT", 30.0),  # obsolete RFC 850 form
    ("Tue, 14 Nov 2023 22:13:50 -0000", 30.0),
    ("Tue, 14 Nov 2023 22:00:00 GMT", 0.0),  # in the past
    ("3600", 120.0),  # clamped
    (None, None), ("", None), ("-5", None), ("soon", None), ("nan", None), ("5s", None),
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_custom_clamp() -> None:
    assert parse_retry_after("Tue, 14 Nov 2023 23:13:20 GMT", NOW, max_s=10.0) == 10.0


def test_backoff_stays_within_the_exponential_ceiling_and_the_cap() -> None:
    rng = random.Random(3)
    for attempt in range(12):
        ceiling = min(8.0, 0.1 * 2**attempt)
        delays = [backoff_delay(attempt, 0.1, 8.0, rng) for _ in range(300)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # full jitter reaches the top of the range
        assert min(delays) < 0.2 * ceiling  # and the bottom


def test_backoff_honours_retry_after_as_a_capped_floor() -> None:
    rng = random.Random(0)
    assert all(backoff_delay(0, 0.1, 8.0, rng, retry_after_s=3.0) >= 3.0 for _ in range(100))
    assert backoff_delay(0, 0.1, 8.0, rng, retry_after_s=60.0) == 8.0
    assert backoff_delay(10_000, 0.1, 8.0, rng) <= 8.0  # no overflow on absurd attempts
    with pytest.raises(ValueError):
        backoff_delay(-1, 0.1, 8.0, rng)


def test_budget_limits_attempts_per_deployment_and_in_all() -> None:
    budget = RetryBudget(RetryPolicy(max_attempts_per_deployment=2, max_attempts=3,
                                     deadline_s=None), started_at=0.0)
    for name in ("a", "a", "b"):
        assert budget.allows(name, now=0.0)
        budget.record(name)
    assert not budget.allows("a", now=0.0)  # per deployment
    assert not budget.allows("c", now=0.0)  # in all
    assert budget.total == 3


def test_budget_respects_the_deadline_including_the_wait() -> None:
    budget = RetryBudget(RetryPolicy(deadline_s=10.0), started_at=100.0)
    assert budget.allows("a", now=105.0, delay_s=4.0)
    assert not budget.allows("a", now=105.0, delay_s=5.0)
    assert not budget.allows("a", now=110.0)
    assert budget.remaining_s(104.0) == 6.0


def test_budget_backoff_grows_with_attempts_on_the_deployment() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=100.0)
    budget = RetryBudget(policy, started_at=0.0)
    rng = random.Random(1)
    budget.record("a")
    assert all(budget.delay_before_retry("a", rng) <= 1.0 for _ in range(50))
    budget.record("a")
    assert max(budget.delay_before_retry("a", rng) for _ in range(200)) > 1.0


def test_policy_validates() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline_s=0.0)
