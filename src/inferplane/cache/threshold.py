"""Whether the nearest kept question's answer may answer a new one: the semantic cache's
learned threshold (pure).

The method is vCache's ("vCache: Verified Semantic Prompt Caching", ICLR 2026), written anew:

- Each kept question collects *observations*: the similarity of a later question to it, and
  whether its answer turned out right for that question (the answer from upstream compared
  with the kept one). The probability that the kept answer is right at similarity ``s`` is
  modelled as ``sigmoid(gamma * (s - t))``: a threshold ``t`` and a steepness ``gamma`` per
  kept question, fitted by (slightly penalised) maximum likelihood, with the variance of ``t``
  from the fit's curvature (the delta method).
- For a new question at similarity ``s``, a lower bound ``alpha`` on that probability is
  taken over a grid of confidence levels ``1 - e``: with probability ``1 - e`` the true ``t`` is
  below its upper quantile ``t'``, so ``alpha >= (1 - e) * sigmoid(gamma * (s - t'))``.
- The kept answer is served with probability ``delta / (1 - alpha)`` (at most 1), and the
  question is otherwise *explored*: sent upstream, and the two answers compared, which adds an
  observation. A wrong answer is then served with probability at most
  ``delta / (1 - alpha) * (1 - alpha) = delta`` per lookup: the user's error bound.

Two additions of ours. A kept question with few observations of its own borrows the model's
*pool* (every observation of the model's kept questions, bounded): a region as wide as the
model, until the question has its own. And a kept question whose answer was found wrong at
similarity ``s`` never answers a question at ``s`` or below again (wrongness is taken to be
monotone in similarity, as the sigmoid assumes), whatever the fit says. Finally, a floor
``verify_rate`` on the exploration keeps observations coming even where the fit is sure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Final, Literal

import numpy as np

Observation = tuple[float, bool]  # (similarity, the kept answer was right)
Verdict = Literal["hit", "explore"]

MIN_OWN: Final = 6  # observations of its own before a kept question is fitted alone
MIN_POOL: Final = 6  # observations in the pool before it is fitted at all
RIDGE: Final = 1e-3  # the penalty on both coefficients: a fit exists under perfect separation
MIN_SLOPE: Final = 1e-3
_GRID: Final = np.linspace(1e-6, 1 - 1e-6, 50)  # the confidence levels e
_Z: Final = np.array([NormalDist().inv_cdf(1 - e) for e in _GRID])


@dataclass(frozen=True, slots=True)
class Fit:
    """``P(right | s) = sigmoid(steepness * (s - threshold))``; ``variance``: of the threshold."""

    threshold: float
    steepness: float
    variance: float
    n: int


def fit(observations: Sequence[Observation], iterations: int = 50) -> Fit | None:
    """The logistic fit of ``observations`` by Newton's method; None for none, or when the
    answer is not found more often right at higher similarity (a slope of
    :data:`MIN_SLOPE` or less: nothing to set a threshold by).

    >>> f = fit([(0.6, False), (0.7, False), (0.8, True), (0.9, True)] * 5)
    >>> 0.7 < f.threshold < 0.8 and f.steepness > 10
    True
    """
    if not observations:
        return None
    data = np.array(observations, dtype=np.float64)
    x = np.column_stack([np.ones(len(data)), data[:, 0]])
    y = data[:, 1]
    beta = np.zeros(2)
    ridge = RIDGE * np.eye(2)
    hessian = ridge
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -500, 500)))
        gradient = x.T @ (y - p) - RIDGE * beta
        hessian = x.T @ (x * (p * (1 - p))[:, None]) + ridge
        step = np.linalg.solve(hessian, gradient)
        beta = beta + step
        if float(np.abs(step).max()) < 1e-8:
            break
    intercept, slope = float(beta[0]), float(beta[1])
    if slope <= MIN_SLOPE:
        return None
    threshold = -intercept / slope
    grad = np.array([-1.0 / slope, intercept / slope**2])
    variance = max(0.0, float(grad @ np.linalg.solve(hessian, grad)))
    return Fit(threshold, slope, variance, len(observations))


def exploration(similarity: float, model: Fit, delta: float) -> float:
    """The probability of exploring a question at ``similarity`` so that the kept answer is
    served wrongly with probability at most ``delta``.

    >>> sure = Fit(threshold=0.5, steepness=100.0, variance=1e-6, n=100)
    >>> exploration(0.9, sure, 0.02), round(exploration(0.4, sure, 0.02), 2)
    (0.0, 0.98)
    """
    quantiles = model.threshold + _Z * np.sqrt(model.variance)
    right = (1 - _GRID) / (1 + np.exp(-np.clip(model.steepness * (similarity - quantiles),
                                                -500, 500)))
    taus = 1 - delta / np.maximum(1 - right, 1e-12)
    return float(np.clip(taus.min(), 0.0, 1.0))


def worst_wrong(observations: Sequence[Observation]) -> float | None:
    """The highest similarity at which a kept answer was found wrong; None if never."""
    wrong = [s for s, right in observations if not right]
    return max(wrong) if wrong else None


def chosen(own: Sequence[Observation], pool: Sequence[Observation]
           ) -> Sequence[Observation] | None:
    """The observations a decision fits: the kept question's own once it has
    :data:`MIN_OWN`, else the model's pool once it has :data:`MIN_POOL`, else none."""
    if len(own) >= MIN_OWN:
        return own
    if len(pool) >= MIN_POOL:
        return pool
    return None


def decide(similarity: float, own: Sequence[Observation], pool: Sequence[Observation],
           delta: float, verify_rate: float, u: float) -> Verdict:
    """Serve the kept answer (``hit``) or send the question upstream and compare
    (``explore``), with ``u`` uniform in [0, 1) the draw that makes the choice.

    >>> right = [(0.8 + i / 100, True) for i in range(10)] + [(0.3, False), (0.4, False)]
    >>> decide(0.95, [], right, 0.5, 0.0, 0.99), decide(0.95, [(0.96, False)], right, 0.5, 0, 0.99)
    ('hit', 'explore')
    >>> decide(0.95, [], [], 0.5, 0.0, 0.99)  # nothing learned yet
    'explore'
    """
    wrong = worst_wrong(own)
    if wrong is not None and similarity <= wrong:
        return "explore"
    observations = chosen(own, pool)
    model = None if observations is None else fit(observations)
    if model is None:
        return "explore"
    tau = max(exploration(similarity, model, delta), verify_rate)
    return "explore" if u < tau else "hit"
