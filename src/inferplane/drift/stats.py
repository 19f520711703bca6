"""Two-sample tests: chi-squared for categories, Kolmogorov-Smirnov for numbers, maximum mean
discrepancy (MMD) with a permutation p-value for embeddings. Pure functions over numpy.

Each returns a :class:`TestResult`: the statistic and its p-value (the chance of a statistic at
least this large when both samples come from one distribution).

>>> r = chi_squared({"a": 50, "b": 50}, {"a": 50, "b": 50})
>>> r.statistic, r.p_value
(0.0, 1.0)
>>> round(ks_two_sample([1, 2, 3], [1, 2, 3]).statistic, 3)
0.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

#: Categories whose expected count is below this are pooled (the chi-squared approximation
#: needs about five expected per cell, Cochran 1954).
MIN_EXPECTED = 5.0


@dataclass(frozen=True, slots=True)
class TestResult:
    statistic: float
    p_value: float


def gamma_q(a: float, x: float) -> float:
    """The regularised upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): a series
    below ``a + 1``, a continued fraction (modified Lentz) above.

    >>> round(gamma_q(1.0, 2.0), 6) == round(math.exp(-2.0), 6)  # Q(1, x) = e^-x
    True
    >>> round(gamma_q(0.5, 1.0), 6) == round(math.erfc(1.0), 6)  # Q(1/2, x) = erfc(sqrt x)
    True
    """
    if x <= 0.0:
        return 1.0
    log_front = a * math.log(x) - x - math.lgamma(a)
    if x < a + 1.0:
        term = total = 1.0 / a
        n = a
        for _ in range(1000):
            n += 1.0
            term *= x / n
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return max(0.0, 1.0 - total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1.0 - a
    c = 1.0 / tiny
    d = 1.0 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        step = d * c
        h *= step
        if abs(step - 1.0) < 1e-15:
            break
    return min(1.0, math.exp(log_front) * h)


def chi_squared_sf(statistic: float, dof: int) -> float:
    """P(X >= statistic) for X chi-squared with ``dof`` degrees of freedom.

    >>> round(chi_squared_sf(3.841459, 1), 4)  # the 5% point of one degree of freedom
    0.05
    >>> round(chi_squared_sf(5.991465, 2), 4)
    0.05
    """
    if dof <= 0:
        return 1.0
    return gamma_q(dof / 2.0, statistic / 2.0)


def _pooled(reference: Mapping[str, int], current: Mapping[str, int]
            ) -> tuple[list[int], list[int]]:
    """The two rows of counts, the rare categories pooled into one cell (by expected count
    under the null, smallest first, until every cell expects at least :data:`MIN_EXPECTED`)."""
    names = sorted(set(reference) | set(current),
                   key=lambda k: -(reference.get(k, 0) + current.get(k, 0)))
    ref = [reference.get(k, 0) for k in names]
    cur = [current.get(k, 0) for k in names]
    n_ref, n_cur = sum(ref), sum(cur)
    total = n_ref + n_cur
    small = min(n_ref, n_cur) / total if total else 0.0
    keep_ref: list[int] = []
    keep_cur: list[int] = []
    rest_ref = rest_cur = 0
    for r, c in zip(ref, cur, strict=True):
        if (r + c) * small >= MIN_EXPECTED:
            keep_ref.append(r)
            keep_cur.append(c)
        else:
            rest_ref += r
            rest_cur += c
    if rest_ref + rest_cur:
        if (rest_ref + rest_cur) * small >= MIN_EXPECTED or not keep_ref:
            keep_ref.append(rest_ref)
            keep_cur.append(rest_cur)
        else:  # too few even pooled: into the smallest kept cell
            keep_ref[-1] += rest_ref
            keep_cur[-1] += rest_cur
    return keep_ref, keep_cur


def chi_squared(reference: Mapping[str, int], current: Mapping[str, int]) -> TestResult:
    """Pearson's chi-squared test of homogeneity between two samples' category counts.

    A 2x2 table with a known value (rows 30/70 and 50/50, Pearson's X² without continuity
    correction: 200 * (30*50 - 70*50)² / (100*100*80*120) = 8.333...):

    >>> r = chi_squared({"yes": 30, "no": 70}, {"yes": 50, "no": 50})
    >>> round(r.statistic, 4), round(r.p_value, 5)
    (8.3333, 0.00389)
    """
    ref, cur = _pooled(reference, current)
    n_ref, n_cur = sum(ref), sum(cur)
    if len(ref) < 2 or n_ref == 0 or n_cur == 0:
        return TestResult(0.0, 1.0)
    total = n_ref + n_cur
    statistic = 0.0
    for r, c in zip(ref, cur, strict=True):
        column = r + c
        for observed, row in ((r, n_ref), (c, n_cur)):
            expected = row * column / total
            statistic += (observed - expected) ** 2 / expected
    return TestResult(statistic, chi_squared_sf(statistic, len(ref) - 1))


def kolmogorov_sf(lam: float) -> float:
    """P(K > lam) for the Kolmogorov distribution: 2 Σ (-1)^(k-1) exp(-2 k² lam²).

    >>> round(kolmogorov_sf(1.358), 3)  # the 5% point
    0.05
    """
    if lam < 0.2:
        return 1.0
    total = 0.0
    for k in range(1, 101):
        term = 2.0 * (-1) ** (k - 1) * math.exp(-2.0 * k * k * lam * lam)
        total += term
        if abs(term) < 1e-12:
            break
    return min(1.0, max(0.0, total))


def ks_two_sample(reference: Sequence[float] | npt.NDArray[np.float64],
                  current: Sequence[float] | npt.NDArray[np.float64]) -> TestResult:
    """The two-sample Kolmogorov-Smirnov test: D, the largest gap between the two empirical
    distribution functions, and its asymptotic p-value with Stephens' small-sample correction
    (λ = (√n_e + 0.12 + 0.11/√n_e) D, n_e = n m / (n + m)). With ties (token counts are
    integers) the p-value is conservative: it overstates, never understates.

    >>> r = ks_two_sample([1, 2, 3, 4], [5, 6, 7, 8])
    >>> r.statistic
    1.0
    """
    a = np.sort(np.asarray(reference, dtype=np.float64))
    b = np.sort(np.asarray(current, dtype=np.float64))
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return TestResult(0.0, 1.0)
    points = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, points, side="right") / n
    cdf_b = np.searchsorted(b, points, side="right") / m
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    en = math.sqrt(n * m / (n + m))
    return TestResult(d, kolmogorov_sf((en + 0.12 + 0.11 / en) * d))


def rbf_kernel(points: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """The Gaussian kernel matrix exp(-|x-y|² / (2 s²)) of ``points`` (rows), s the median
    distance between distinct points (the median heuristic)."""
    x = points.astype(np.float64)
    norms = np.einsum("ij,ij->i", x, x)
    sq = np.maximum(norms[:, None] + norms[None, :] - 2.0 * (x @ x.T), 0.0)
    upper = sq[np.triu_indices(len(x), k=1)]
    median = float(np.median(upper)) if len(upper) else 0.0
    if median <= 0.0:
        median = 1.0  # every point the same: any width gives MMD 0
    result: npt.NDArray[np.float64] = np.exp(-sq / (2.0 * median))
    return result


def mmd_permutation(reference: npt.NDArray[np.float32], current: npt.NDArray[np.float32],
                    permutations: int, rng: np.random.Generator) -> TestResult:
    """The squared MMD (biased estimate) between two samples of vectors under an RBF kernel
    with the median heuristic, and its permutation p-value: the share of ``permutations``
    random relabellings of the pooled sample whose MMD² is at least the observed one,
    (1 + k) / (1 + permutations).

    That share cannot go below 1 / (1 + permutations); where fewer than ten relabellings reach
    the observed value, the p-value is instead the tail of a gamma distribution with the
    permutation null's mean and variance (Gretton et al. 2009, "A fast, consistent kernel
    two-sample test"), so a small alpha stays reachable with a few hundred permutations.
    """
    n, m = len(reference), len(current)
    if n < 2 or m < 2:
        return TestResult(0.0, 1.0)
    kernel = rbf_kernel(np.concatenate([reference, current]))
    total = n + m
    signs = np.empty((permutations + 1, total))
    base = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    signs[0] = base
    for i in range(1, permutations + 1):
        signs[i] = rng.permutation(base)
    values = np.einsum("ij,ij->i", signs @ kernel, signs)
    observed, null = float(values[0]), values[1:]
    exceed = int(np.count_nonzero(null >= observed - 1e-12))  # rounding: ties count
    if exceed >= 10 or permutations < 20:
        return TestResult(observed, (1 + exceed) / (1 + permutations))
    mean, var = float(np.mean(null)), float(np.var(null))
    if mean <= 0.0 or var <= 0.0:
        return TestResult(observed, (1 + exceed) / (1 + permutations))
    shape, scale = mean * mean / var, var / mean
    return TestResult(observed, gamma_q(shape, observed / scale))
