"""Queueing formulas the serving model uses: Poisson quantiles, M/D/1 and M/M/c (Erlang C) waits.

Waiting-time tails use the usual exponential approximation: a request waits with probability
``P(wait)``, and given that it waits, for an exponential time; so the q-quantile is 0 when
``1 - q >= P(wait)`` and ``mean_conditional x ln(P(wait) / (1 - q))`` otherwise.

>>> poisson_quantile(3.0, 0.5)
3.0
>>> round(erlang_c(2, 1.0), 4)
0.3333
"""

from __future__ import annotations

import math

_Z = {0.5: 0.0, 0.9: 1.2815515655446004, 0.95: 1.6448536269514722, 0.99: 2.3263478740408408,
      0.999: 3.090232306167813}


def normal_quantile(q: float) -> float:
    """Standard normal quantile (tabulated points, else Acklam-free bisection on erf)."""
    if q in _Z:
        return _Z[q]
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def poisson_quantile(mean: float, q: float) -> float:
    """Smallest k with P(X <= k) >= q for X ~ Poisson(mean); Cornish-Fisher above mean 50."""
    if mean <= 0:
        return 0.0
    if mean > 50:
        z = normal_quantile(q)
        return max(0.0, mean + z * math.sqrt(mean) + (z * z - 1) / 6)
    term = math.exp(-mean)
    cdf, k = term, 0
    while cdf < q and k < 10_000:
        k += 1
        term *= mean / k
        cdf += term
    return float(k)


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in an M/M/c queue with ``offered`` = lambda / mu."""
    if offered <= 0:
        return 0.0
    if offered >= servers:
        return 1.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    return servers * b / (servers - offered * (1 - b))


def tail_quantile(p_wait: float, conditional_mean: float, q: float) -> float:
    """q-quantile of a wait that happens with ``p_wait`` and is then exponential."""
    if p_wait <= 0 or 1 - q >= p_wait:
        return 0.0
    return conditional_mean * math.log(p_wait / (1 - q))


def md1_wait(rate: float, service_s: float, q: float) -> tuple[float, float]:
    """(mean, q-quantile) of the wait in an M/D/1 queue; infinite when saturated."""
    rho = rate * service_s
    if rho >= 1:
        return math.inf, math.inf
    if rho <= 0:
        return 0.0, 0.0
    mean = rho * service_s / (2 * (1 - rho))
    return mean, tail_quantile(rho, mean / rho, q)


def mmc_wait(servers: int, rate: float, hold_s: float, q: float) -> tuple[float, float]:
    """(mean, q-quantile) of the wait for one of ``servers`` slots held ``hold_s`` each."""
    if rate <= 0:
        return 0.0, 0.0
    capacity = servers / hold_s
    if rate >= capacity:
        return math.inf, math.inf
    p_wait = erlang_c(servers, rate * hold_s)
    conditional = 1.0 / (capacity - rate)
    return p_wait * conditional, tail_quantile(p_wait, conditional, q)
