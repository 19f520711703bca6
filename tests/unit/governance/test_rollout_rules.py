"""The pure rules of a staged rollout: which requests a canary takes, and the live gates."""

from __future__ import annotations

import math
import random

from inferplane.governance.canary import SESSION_HEADER, point, sticky_key, takes
from inferplane.governance.rollout_gates import GateConfig, Outcome, WindowStats, judge


def test_a_canary_takes_its_share_within_a_binomial_bound() -> None:
    n, percent = 20_000, 20.0
    taken = sum(takes(percent, "chat", f"user:{i}") for i in range(n))
    sigma = math.sqrt(n * 0.2 * 0.8)
    assert abs(taken - n * 0.2) < 3.3 * sigma  # 99.9%


def test_a_key_stays_where_it_is_and_a_larger_share_keeps_the_smaller_one() -> None:
    keys = [f"session:{i}" for i in range(2_000)]
    small = {k for k in keys if takes(5, "chat", k)}
    large = {k for k in keys if takes(20, "chat", k)}
    assert small and small <= large
    assert small == {k for k in keys if takes(5, "chat", k)}  # sticky
    assert {k for k in keys if takes(5, "other", k)} != small  # each model its own split


def test_the_sticky_key_prefers_the_session_then_the_user_then_the_key() -> None:
    assert sticky_key({SESSION_HEADER: "s1"}, "u", "k", "r") == "session:s1"
    assert sticky_key({}, "u", "k", "r") == "user:u"
    assert sticky_key({}, None, "k", "r") == "key:k"
    assert 0 <= point("m", "x") < 1


def stats(requests: int, errors: int = 0, ttft: float = 100.0, cost: float = 1.0,
          tokens: int = 1_000_000) -> WindowStats:
    rng = random.Random(requests)
    return WindowStats(requests, errors, [ttft * rng.uniform(0.9, 1.1) for _ in range(requests)],
                       cost, tokens)


def test_gates_pass_a_candidate_as_good_as_the_incumbent() -> None:
    assert judge(stats(50), stats(500), GateConfig()).outcome is Outcome.PASS


def test_gates_wait_for_enough_requests() -> None:
    verdict = judge(stats(5, errors=5), stats(500), GateConfig(min_requests=20))
    assert verdict.outcome is Outcome.WAIT and "5 of 20" in verdict.text()


def test_each_gate_fails_with_its_reason() -> None:
    config = GateConfig()
    errors = judge(stats(100, errors=10), stats(500, errors=5), config)
    assert errors.outcome is Outcome.FAIL and "error rate 10.0%" in errors.text()
    slow = judge(stats(100, ttft=400), stats(500), config)
    assert slow.outcome is Outcome.FAIL and "TTFT p95" in slow.text()
    dear = judge(stats(100, cost=3.0), stats(500), config)
    assert dear.outcome is Outcome.FAIL and "cost $3.00/1M" in dear.text()


def test_an_idle_incumbent_does_not_hide_a_broken_candidate() -> None:
    verdict = judge(stats(30, errors=6), WindowStats(), GateConfig())
    assert verdict.outcome is Outcome.FAIL


def test_a_small_error_increase_within_the_allowance_passes() -> None:
    assert judge(stats(100, errors=2), stats(1000, errors=10), GateConfig()).outcome is Outcome.PASS
