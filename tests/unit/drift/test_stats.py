"""The drift tests' statistics against hand-computed values, and their calibration: under the
null hypothesis a p-value is (about) uniform, so p < a happens about a share a of the time."""

from __future__ import annotations

import math

import numpy as np
import pytest

from inferplane.drift.stats import (
    chi_squared,
    chi_squared_sf,
    gamma_q,
    kolmogorov_sf,
    ks_two_sample,
    mmd_permutation,
    rbf_kernel,
)


@pytest.mark.parametrize("x", [0.01, 0.3, 1.0, 2.5, 7.0, 30.0])
def test_gamma_q_matches_closed_forms(x: float) -> None:
    assert gamma_q(1.0, x) == pytest.approx(math.exp(-x), rel=1e-9)
    assert gamma_q(0.5, x) == pytest.approx(math.erfc(math.sqrt(x)), rel=1e-9, abs=1e-15)
    # integer a: Q(n, x) = e^-x * sum_{k<n} x^k / k!
    for n in (2, 3, 7):
        expected = math.exp(-x) * sum(x ** k / math.factorial(k) for k in range(n))
        assert gamma_q(float(n), x) == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_chi_squared_sf_known_points() -> None:
    # the tables' upper 5% and 1% points
    assert chi_squared_sf(3.841459, 1) == pytest.approx(0.05, abs=1e-6)
    assert chi_squared_sf(6.634897, 1) == pytest.approx(0.01, abs=1e-6)
    assert chi_squared_sf(11.070498, 5) == pytest.approx(0.05, abs=1e-6)
    assert chi_squared_sf(0.0, 3) == 1.0


def test_chi_squared_three_categories_by_hand() -> None:
    # rows 10/20/30 and 30/20/10: every cell expects 20; X² = 4 * 10²/20 = 20, 2 dof:
    # p = exp(-20/2)
    result = chi_squared({"a": 10, "b": 20, "c": 30}, {"a": 30, "b": 20, "c": 10})
    assert result.statistic == pytest.approx(20.0)
    assert result.p_value == pytest.approx(math.exp(-10.0), rel=1e-9)


def test_chi_squared_pools_rare_categories() -> None:
    # "x" and "y" expect 3 each (under 5): pooled into one cell, which expects 6, so the
    # statistic is that of the table a/b/other
    pooled = chi_squared({"a": 44, "b": 44, "x": 6, "y": 6}, {"a": 50, "b": 50})
    by_hand = chi_squared({"a": 44, "b": 44, "other": 12}, {"a": 50, "b": 50, "other": 0})
    assert pooled.statistic == pytest.approx(by_hand.statistic)
    assert pooled.statistic > 0.0 and pooled.p_value < 0.01
    # too few even pooled: they join the smallest kept cell, and the table is 2x2
    tiny = chi_squared({"a": 50, "b": 46, "x": 2, "y": 2}, {"a": 50, "b": 50})
    assert tiny.statistic == pytest.approx(0.0)


def test_chi_squared_degenerate_tables() -> None:
    assert chi_squared({"a": 10}, {"a": 7}).p_value == 1.0  # one category: nothing to test
    assert chi_squared({}, {"a": 3}).p_value == 1.0


def test_ks_statistic_by_hand_and_p_value() -> None:
    # ECDFs of 1..5 and 3..7 differ by at most 2/5 (at 2 and at 5)
    result = ks_two_sample([1, 2, 3, 4, 5], [3, 4, 5, 6, 7])
    assert result.statistic == pytest.approx(0.4)
    en = math.sqrt(25 / 10)
    assert result.p_value == pytest.approx(kolmogorov_sf((en + 0.12 + 0.11 / en) * 0.4))
    assert kolmogorov_sf(1.3581) == pytest.approx(0.05, abs=1e-3)
    assert kolmogorov_sf(1.6276) == pytest.approx(0.01, abs=1e-3)


def test_ks_is_calibrated_under_the_null_and_sees_a_shift() -> None:
    rng = np.random.default_rng(7)
    p = [ks_two_sample(rng.normal(size=200), rng.normal(size=200)).p_value for _ in range(400)]
    share = sum(v < 0.05 for v in p) / len(p)
    assert 0.02 <= share <= 0.08, share
    shifted = ks_two_sample(rng.normal(size=200), rng.normal(1.0, size=200))
    assert shifted.p_value < 1e-4


def test_rbf_kernel_is_one_on_the_diagonal_and_symmetric() -> None:
    points = np.random.default_rng(1).normal(size=(30, 8)).astype(np.float32)
    k = rbf_kernel(points)
    assert np.allclose(np.diag(k), 1.0)
    assert np.allclose(k, k.T)
    # at the median distance the kernel is exp(-1/2)
    d = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    median = np.median(d[np.triu_indices(30, k=1)])
    i, j = np.argwhere(np.isclose(d, median))[0]
    assert k[i, j] == pytest.approx(math.exp(-0.5), rel=1e-3)


def _unit(rng: np.random.Generator, n: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(n, 16))
    x[:, 0] += shift
    unit: np.ndarray = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return unit


def test_mmd_is_calibrated_under_the_null() -> None:
    rng = np.random.default_rng(3)
    p = [mmd_permutation(_unit(rng, 40), _unit(rng, 40), 100, rng).p_value for _ in range(120)]
    share = sum(v < 0.1 for v in p) / len(p)
    assert 0.03 <= share <= 0.2, share


def test_mmd_detects_a_shift_beyond_the_permutation_floor() -> None:
    rng = np.random.default_rng(4)
    same = mmd_permutation(_unit(rng, 100), _unit(rng, 100), 200, rng)
    moved = mmd_permutation(_unit(rng, 100), _unit(rng, 100, shift=3.0), 200, rng)
    assert moved.statistic > same.statistic
    assert moved.p_value < 1 / 201  # the gamma tail goes below what 200 relabellings can say
    assert same.p_value > 0.001


def test_mmd_of_identical_points_is_zero() -> None:
    points = np.ones((10, 4), dtype=np.float32)
    result = mmd_permutation(points, points.copy(), 50, np.random.default_rng(0))
    assert result.statistic == pytest.approx(0.0, abs=1e-12)
    assert result.p_value == 1.0
