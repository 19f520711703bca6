"""Continuous batching on one replica in steady state: TTFT and TPOT percentiles under a rate.

An analytic model (no simulation, so a plan can try thousands of layouts in about a second):

* Prefill is interleaved with decode (chunked prefill, ``chunk_tokens`` per iteration). It takes
  a share ``rho_p = rate x prefill occupancy`` of the replica's time, so a decode token takes
  ``t_step(N) / (1 - rho_p)`` on average.
* Concurrency N solves Little's law ``N = rate x osl x TPOT(N)`` (bisection; the step time grows
  with N). If even the batch limit cannot carry the rate, the replica is unstable.
* TPOT percentiles: concurrency taken as Poisson(N) (an M/G/inf population, capped at the batch
  limit), plus the prefills that arrive during one request's decode, Poisson(rate x decode time),
  spread over its ``osl`` tokens. Taking both at the same quantile errs on the slow side.
* TTFT = prefill latency (the prompt's own compute plus the decode iterations its chunks ride
  on) + the wait in the prefill queue (M/D/1) + the wait for a free batch slot (M/M/c, Erlang C,
  with each slot held for a request's whole life). Tails use the exponential approximation of
  ``queueing.py``; M/M/c for near-constant holding times also errs on the slow side.

``saturated`` is the other regime: a batch kept full from a backlog, as offline benchmarks run
(ML.ENERGY's steady-state windows): throughput and energy per output token at a fixed batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from inferplane.planner.errors import PlannerError
from inferplane.planner.layout import Replica
from inferplane.planner.power import idle_watts, step_watts
from inferplane.planner.queueing import md1_wait, mmc_wait, poisson_quantile
from inferplane.planner.roofline import StepTime, decode_step, prefill
from inferplane.planner.speculative import Speculation, expected_tokens

QUANTILES = (0.5, 0.99)


@dataclass(frozen=True)
class Workload:
    """Requests per second, prompt (input) tokens and output tokens per request."""

    rate: float
    isl: int
    osl: int

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.isl < 1 or self.osl < 1:
            raise PlannerError("rate must be > 0 and isl, osl >= 1")

    @property
    def decode_context(self) -> float:
        """Mean context length during decode: the prompt plus half the output."""
        return self.isl + self.osl / 2

    @property
    def max_context(self) -> int:
        return self.isl + self.osl


@dataclass(frozen=True)
class Engine:
    """The serving engine's knobs the plan chooses or the user sets."""

    batch_limit: int
    chunk_tokens: int = 2048
    speculation: Speculation | None = None


@dataclass(frozen=True)
class Percentiles:
    p50: float
    p99: float

    def at(self, percentile: float) -> float:
        """The value at ``percentile`` (50 or 99, an SLO's choices)."""
        return self.p50 if percentile == 50.0 else self.p99


@dataclass(frozen=True)
class DecodeCost:
    """Seconds per generated token of one sequence at a batch, the raw step, and chip power."""

    seconds: float
    step: StepTime
    watts: float | None


@dataclass(frozen=True)
class ReplicaLoad:
    """One replica's steady state at a rate."""

    stable: bool
    reason: str
    concurrency: float
    ttft: Percentiles
    tpot: Percentiles
    decode: DecodeCost
    prefill: StepTime
    prefill_share: float
    watts_per_chip: float | None
    joules_per_token: float | None


def decode_cost(replica: Replica, batch: float, context: float,
                spec: Speculation | None) -> DecodeCost:
    """Time per output token of one sequence when ``batch`` sequences decode together."""
    hw = replica.hardware
    one = decode_step(replica, batch, context)
    if spec is None:
        return DecodeCost(one.total_s, one, step_watts(hw, one))
    verify = decode_step(replica, batch, context, tokens_per_seq=spec.draft_tokens + 1)
    draft_s = spec.draft_tokens * spec.draft_cost * one.total_s
    seconds = (verify.total_s + draft_s) / expected_tokens(spec)
    wv, wd = step_watts(hw, verify), step_watts(hw, one)
    watts = None if wv is None or wd is None else \
        (wv * verify.total_s + wd * draft_s) / (verify.total_s + draft_s)
    return DecodeCost(seconds, verify, watts)


def _concurrency(replica: Replica, load: Workload, engine: Engine, rho_p: float) -> float | None:
    """N with N = rate x osl x TPOT(N), or None when the batch limit cannot carry the rate."""
    ctx, spec = load.decode_context, engine.speculation

    def excess(n: float) -> float:
        tpot = decode_cost(replica, max(n, 1.0), ctx, spec).seconds / (1 - rho_p)
        return load.rate * load.osl * tpot - n

    hi = float(engine.batch_limit)
    if excess(hi) > 0:
        return None
    lo = 0.0
    for _ in range(40):
        mid = (lo + hi) / 2
        if excess(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-3 * max(1.0, hi):
            break
    return hi


def steady_state(replica: Replica, load: Workload, engine: Engine) -> ReplicaLoad:
    """TTFT/TPOT percentiles, concurrency and energy of one replica serving ``load``."""
    spec = engine.speculation
    pre = prefill(replica, load.isl)
    rho_p = load.rate * pre.occupancy_s
    n = _concurrency(replica, load, engine, rho_p) if rho_p < 1 else None
    if n is None:
        why = "prefill saturates the replica" if rho_p >= 1 else \
            f"decode cannot carry the rate within a batch of {engine.batch_limit}"
        cost = decode_cost(replica, engine.batch_limit, load.decode_context, spec)
        inf = Percentiles(math.inf, math.inf)
        return ReplicaLoad(False, why, float(engine.batch_limit), inf, inf, cost, pre,
                           min(rho_p, 1.0), None, None)
    ctx = load.decode_context
    cost = decode_cost(replica, max(n, 1.0), ctx, spec)
    tpot_mean = cost.seconds / (1 - rho_p)
    decode_life = load.osl * tpot_mean
    ride = cost.step.total_s * min(1.0, n)  # a decode iteration each prefill chunk shares
    latency = pre.total_s + math.ceil(load.isl / engine.chunk_tokens) * ride
    service = pre.occupancy_s + load.isl / engine.chunk_tokens * ride
    ttft, tpot = [], []
    for q in QUANTILES:
        nq = min(float(engine.batch_limit), poisson_quantile(n, q))
        kq = poisson_quantile(load.rate * decode_life, q)
        tpot.append(decode_cost(replica, max(nq, 1.0), ctx, spec).seconds
                    + kq * pre.occupancy_s / load.osl)
        _, wait_prefill = md1_wait(load.rate, service, q)
        _, wait_slot = mmc_wait(engine.batch_limit, load.rate, decode_life + latency, q)
        ttft.append(latency + wait_prefill + wait_slot)
    stable = math.isfinite(ttft[-1])
    watts = _mean_watts(replica, pre, cost, rho_p, n)
    joules = None if watts is None else watts * replica.chips / (load.rate * load.osl)
    return ReplicaLoad(stable, "" if stable else "prefill queue saturates", n,
                       Percentiles(ttft[0], ttft[1]), Percentiles(tpot[0], tpot[1]),
                       cost, pre, rho_p, watts, joules)


def _mean_watts(replica: Replica, pre: StepTime, cost: DecodeCost, rho_p: float,
                n: float) -> float | None:
    hw = replica.hardware
    w_pre, w_idle = step_watts(hw, pre), idle_watts(hw)
    if w_pre is None or cost.watts is None or w_idle is None:
        return None
    decoding = (1 - rho_p) * (1 - math.exp(-n))
    return rho_p * w_pre + decoding * cost.watts + (1 - rho_p - decoding) * w_idle


@dataclass(frozen=True)
class Saturated:
    """A replica kept at a full batch: output tokens/s and joules per output token."""

    tokens_per_s: float
    joules_per_token: float | None
    decode: DecodeCost
    prefill: StepTime


def saturated(replica: Replica, batch: int, isl: int, osl: int,
              spec: Speculation | None = None) -> Saturated:
    """Throughput and energy with ``batch`` sequences always decoding, prefills interleaved."""
    cost = decode_cost(replica, batch, isl + osl / 2, spec)
    pre = prefill(replica, isl)
    decode_share, prefill_share = cost.seconds / batch, pre.occupancy_s / osl
    per_token = decode_share + prefill_share
    w_pre = step_watts(replica.hardware, pre)
    joules = None if cost.watts is None or w_pre is None else \
        replica.chips * (cost.watts * decode_share + w_pre * prefill_share)
    return Saturated(1.0 / per_token, joules, cost, pre)
