"""The layout search: feasibility, SLOs met, ranking, and what binds each option."""

from __future__ import annotations

import math

import pytest

from inferplane.planner.catalog import Catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.plan import CapacityPlan, PlanRequest, evaluate, plan
from inferplane.planner.precision import PRECISIONS
from inferplane.planner.serving import Workload
from inferplane.planner.slo import Slo, parse_slo

from .conftest import replica


def request(catalog: Catalog, model: str = "llama-3.1-70b", hardware: str = "h100,b200,mi300x",
            rate: float = 20.0, isl: int = 2000, osl: int = 300,
            slo: str = "ttft=1s,tpot=50ms", quant: str = "bf16") -> PlanRequest:
    return PlanRequest(
        model=catalog.find_model(model),
        hardware=tuple(catalog.find_hardware(h) for h in hardware.split(",")),
        workload=Workload(rate, isl, osl), slo=parse_slo(slo), quant=PRECISIONS[quant],
        kv_quant=PRECISIONS["bf16"])


@pytest.fixture(scope="module")
def issue_plan(catalog: Catalog) -> CapacityPlan:
    """The issue's example: 70B at 20 req/s, 2000 in / 300 out, TTFT 1 s, TPOT 50 ms."""
    return plan(request(catalog))


def test_every_option_meets_the_slo_and_the_cheapest_comes_first(
    issue_plan: CapacityPlan,
) -> None:
    options = issue_plan.options
    assert [o.hardware.id for o in options] and not issue_plan.infeasible
    costs = [o.usd_per_mtok for o in options]
    assert all(c is not None for c in costs)
    assert costs == sorted(c for c in costs if c is not None)
    for o in options:
        assert o.load.stable
        assert o.load.ttft.p99 <= 1.0 and o.load.tpot.p99 <= 0.050
        assert o.chips == o.replicas * o.replica.chips
        assert o.capacity_tokens_s >= 20 * 300  # the fleet carries the traffic
        assert o.replica.fits_weights


def test_cost_is_chips_times_price_over_tokens(issue_plan: CapacityPlan) -> None:
    o = issue_plan.options[0]
    assert o.price is not None and o.usd_per_hour is not None
    assert o.usd_per_hour == pytest.approx(o.chips * o.price.usd_per_hour)
    assert o.usd_per_mtok == pytest.approx(o.usd_per_hour / (20 * 300 * 3600) * 1e6)
    assert o.kw is not None and o.joules_per_token is not None
    assert o.kw * 1e3 == pytest.approx(o.joules_per_token * 20 * 300, rel=1e-6)


def test_70b_bf16_never_runs_on_one_80gb_chip(issue_plan: CapacityPlan, catalog: Catalog
                                              ) -> None:
    h100 = next(o for o in issue_plan.candidates if o.hardware.id == "h100")
    assert all(o.replica.chips >= 2 for o in issue_plan.candidates if o.hardware.id == "h100")
    result = evaluate(request(catalog), replica(catalog, "llama-3.1-70b", "h100"))
    assert isinstance(result, str) and result.startswith("memory capacity: weights need 141 GB")
    assert h100.replica.chips >= 2


def test_memory_binds_when_the_weights_set_the_chip_count(catalog: Catalog) -> None:
    easy = plan(request(catalog, hardware="h200", rate=0.5, slo="ttft=10s,tpot=200ms"))
    best = easy.options[0]
    assert best.replica.chips == 2 and best.replicas == 1
    assert best.binding == "memory capacity: weights need 141 GB"


def test_slo_binds_when_latency_needs_more_replicas_than_throughput(catalog: Catalog) -> None:
    tight = plan(request(catalog, hardware="h100", rate=20, slo="ttft=1s,tpot=50ms"))
    best = tight.options[0]
    assert best.binding.startswith("SLO: TTFT p99")
    assert "throughput alone" in best.detail


def test_a_tighter_slo_never_costs_less(catalog: Catalog) -> None:
    loose = plan(request(catalog, hardware="h100", slo="ttft=5s,tpot=100ms")).options[0]
    tight = plan(request(catalog, hardware="h100", slo="ttft=0.5s,tpot=30ms")).options[0]
    assert loose.usd_per_mtok is not None and tight.usd_per_mtok is not None
    assert tight.usd_per_mtok >= loose.usd_per_mtok


def test_more_traffic_needs_more_chips(catalog: Catalog) -> None:
    chips = [plan(request(catalog, hardware="h100", rate=r)).options[0].chips
             for r in (2, 20, 80)]
    assert chips == sorted(chips) and chips[0] < chips[-1]


def test_infeasible_hardware_says_why(catalog: Catalog) -> None:
    result = plan(request(catalog, hardware="rubin,epyc-2c,h100"))
    reasons = {i.hardware.id: i.reason for i in result.infeasible}
    assert "no published compute rate for bf16" in reasons["rubin"]
    assert reasons["epyc-2c"].startswith("SLO: one decode step takes")
    assert [o.hardware.id for o in result.options] == ["h100"]
    fp4 = plan(request(catalog, hardware="rubin", quant="fp4"))
    assert fp4.options and fp4.options[0].usd_per_mtok is None  # no public price: unranked


def test_unpriced_hardware_ranks_after_priced(catalog: Catalog) -> None:
    result = plan(request(catalog, hardware="gb200,h100"))
    assert [o.hardware.id for o in result.options] == ["h100", "gb200"]


def test_moe_plan_uses_fewer_chips_than_its_dense_peer(catalog: Catalog) -> None:
    moe = plan(request(catalog, model="qwen3-30b-a3b", hardware="h100")).options[0]
    dense = plan(request(catalog, model="qwen3-32b", hardware="h100")).options[0]
    assert moe.chips < dense.chips


def test_slo_without_finite_targets_is_rejected() -> None:
    with pytest.raises(PlannerError):
        parse_slo("p=99")
    assert math.isinf(Slo().ttft_s)
