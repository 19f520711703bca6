"""The learned threshold (pure): the fit, the exploration probability against the error
bound, the pool before a kept question's own observations, and the never-again rule."""

from __future__ import annotations

import random

import pytest

from inferplane.cache.threshold import (
    MIN_OWN,
    MIN_POOL,
    Fit,
    Observation,
    decide,
    exploration,
    fit,
)


def curve(threshold: float, n: int, seed: int = 0) -> list[Observation]:
    """``n`` observations of a kept answer right exactly above ``threshold``."""
    rng = random.Random(seed)
    return [(s, s > threshold) for s in (rng.uniform(0.5, 1.0) for _ in range(n))]


def test_the_fit_finds_the_threshold_and_grows_surer_with_data() -> None:
    few, many = fit(curve(0.85, 20)), fit(curve(0.85, 400))
    assert few is not None and many is not None
    assert abs(many.threshold - 0.85) < 0.02 and many.steepness > 50
    assert many.variance < few.variance


def test_a_fit_exists_when_every_observation_agrees() -> None:
    model = fit([(0.9, True)] * 10)
    assert model is not None and model.variance > 0  # unsure, not infinite


def test_exploration_falls_with_similarity_and_rises_as_the_bound_tightens() -> None:
    model = fit(curve(0.85, 400))
    assert model is not None
    taus = [exploration(s, model, 0.02) for s in (0.7, 0.8, 0.86, 0.9, 0.99)]
    assert taus == sorted(taus, reverse=True)
    assert taus[0] == pytest.approx(0.98, abs=1e-3) and taus[-1] == 0.0
    assert exploration(0.87, model, 0.01) >= exploration(0.87, model, 0.1)


@pytest.mark.parametrize("delta", [0.01, 0.02, 0.05, 0.1])
def test_served_answers_are_wrong_at_most_delta_of_the_time(delta: float) -> None:
    """Questions at similarities from 0.5 to 1, right above 0.85 only (a noisy region around
    it): the rate of wrong answers served stays within delta."""
    rng = random.Random(7)
    model = fit(curve(0.85, 300, seed=3))
    assert model is not None
    wrong = trials = 0
    for _ in range(20_000):
        s = rng.uniform(0.5, 1.0)
        right = s > 0.85
        served = rng.random() >= exploration(s, model, delta)
        trials += 1
        wrong += served and not right
    assert wrong / trials <= delta


def test_nothing_learned_means_every_lookup_explores() -> None:
    assert decide(0.99, [], [(0.9, True)] * (MIN_POOL - 1), 0.5, 0.0, 0.999) == "explore"


def test_the_pool_decides_until_the_kept_question_has_its_own_observations() -> None:
    pool = [(0.8 + i / 100, True) for i in range(15)] + [(0.5, False), (0.55, False)]
    assert decide(0.95, [], pool, 0.5, 0.0, 0.99) == "hit"
    own_wrong = [(0.9 + i / 100, False) for i in range(MIN_OWN)]  # its own: wrong throughout
    assert decide(0.995, own_wrong, pool, 0.5, 0.0, 0.99) == "explore"
    assert fit(own_wrong) is None  # nothing to set a threshold by


def test_a_kept_answer_found_wrong_never_answers_as_far_or_farther() -> None:
    pool = [(0.8 + i / 100, True) for i in range(15)] + [(0.5, False)]
    own = [(0.93, False)]
    assert decide(0.93, own, pool, 0.5, 0.0, 0.999) == "explore"
    assert decide(0.90, own, pool, 0.5, 0.0, 0.999) == "explore"
    assert decide(0.97, own, pool, 0.5, 0.0, 0.999) == "hit"


def test_verify_rate_sends_a_share_of_sure_hits_upstream() -> None:
    sure = Fit(threshold=0.5, steepness=100.0, variance=1e-6, n=100)
    assert exploration(0.99, sure, 0.02) == 0.0
    pool = curve(0.85, 400)
    draws = [i / 1000 for i in range(1000)]
    explored = sum(decide(0.99, [], pool, 0.02, 0.1, u) == "explore" for u in draws)
    assert 95 <= explored <= 105
