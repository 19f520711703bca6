"""Queueing formulas and the continuous-batching steady state."""

from __future__ import annotations

import itertools
import math

import pytest

from inferplane.planner.catalog import Catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.queueing import (
    erlang_c,
    md1_wait,
    mmc_wait,
    normal_quantile,
    poisson_quantile,
)
from inferplane.planner.serving import Engine, Workload, decode_cost, saturated, steady_state

from .conftest import replica


def test_erlang_c_known_values() -> None:
    assert erlang_c(1, 0.5) == pytest.approx(0.5)  # M/M/1: P(wait) = rho
    assert erlang_c(2, 1.0) == pytest.approx(1 / 3)
    assert erlang_c(10, 5.0) == pytest.approx(0.0361, abs=1e-4)
    assert erlang_c(4, 4.0) == 1.0


def test_poisson_and_normal_quantiles() -> None:
    assert poisson_quantile(0.0, 0.99) == 0
    assert poisson_quantile(1.0, 0.99) == 4  # P(X<=3)=0.981, P(X<=4)=0.996
    assert poisson_quantile(400.0, 0.5) == pytest.approx(400, abs=1)
    assert poisson_quantile(400.0, 0.99) == pytest.approx(400 + 2.326 * 20, abs=2)
    assert normal_quantile(0.975) == pytest.approx(1.95996, abs=1e-4)


def test_md1_and_mmc_waits() -> None:
    mean, p99 = md1_wait(rate=5.0, service_s=0.1, q=0.99)  # rho = 0.5
    assert mean == pytest.approx(0.5 * 0.1 / (2 * 0.5))
    assert p99 == pytest.approx(0.1 * math.log(0.5 / 0.01))
    assert md1_wait(10.0, 0.1, 0.99)[0] == math.inf
    mean, p99 = mmc_wait(100, rate=1.0, hold_s=10.0, q=0.99)  # 10 of 100 slots busy
    assert mean == pytest.approx(0, abs=1e-12) and p99 == 0.0
    assert mmc_wait(10, rate=2.0, hold_s=10.0, q=0.5)[0] == math.inf


def test_workload_validation() -> None:
    with pytest.raises(PlannerError):
        Workload(rate=0, isl=10, osl=10)
    assert Workload(1, 1000, 300).decode_context == 1150


def test_larger_batch_raises_throughput_and_tpot(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-8b", "h100")
    batches = (1, 8, 32, 64, 128, 256)
    throughput = [saturated(r, b, 1000, 300).tokens_per_s for b in batches]
    tpot = [decode_cost(r, b, 1150, None).seconds for b in batches]
    assert throughput == sorted(throughput) and tpot == sorted(tpot)
    assert throughput[-1] > 10 * throughput[0]


def test_steady_state_latency_rises_with_rate(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-70b", "h100", tp=4)
    engine = Engine(batch_limit=128)
    loads = [steady_state(r, Workload(rate, 2000, 300), engine) for rate in (0.5, 2.0, 4.0)]
    assert all(load.stable for load in loads)
    for a, b in itertools.pairwise(loads):
        assert b.concurrency > a.concurrency
        assert b.ttft.p99 >= a.ttft.p99 and b.tpot.p99 > a.tpot.p99
    for load in loads:
        assert load.ttft.p99 >= load.ttft.p50 and load.tpot.p99 >= load.tpot.p50
        # Little's law holds at the solution
        mean_tpot = load.decode.seconds / (1 - load.prefill_share)
        rate = load.concurrency / (300 * mean_tpot)
        assert rate in (pytest.approx(0.5, rel=0.01), pytest.approx(2.0, rel=0.01),
                        pytest.approx(4.0, rel=0.01))
    # the TTFT floor is the prompt's own prefill
    assert loads[0].ttft.p50 >= loads[0].prefill.total_s


def test_overload_is_unstable(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-8b", "h100")
    too_much = steady_state(r, Workload(500.0, 1000, 300), Engine(batch_limit=64))
    assert not too_much.stable and too_much.reason
    prefill_bound = steady_state(r, Workload(200.0, 8000, 10), Engine(batch_limit=256))
    assert not prefill_bound.stable and "prefill" in prefill_bound.reason
