"""Router.plan on a parsed configuration with stand-in providers: an alias left with a single
deployment is not scored, and says so; the hard constraints still apply to it."""

from __future__ import annotations

import time
from typing import cast

import pytest

from inferplane.config import Config, parse_config
from inferplane.engines.engine_metrics import EngineLoad, EngineReading, ray_serve
from inferplane.errors import InvalidRequest, ResidencyUnsatisfiable, ServiceUnavailable
from inferplane.providers.base import Provider
from inferplane.routing.request import RouteRequest
from inferplane.routing.router import Plan, Router


class StandIn:
    """What the router asks of a provider: which requests it serves, and whether it is up."""

    ready = True

    def serves(self, endpoint: str, needs: frozenset[str] = frozenset(),
               wire: str | None = None) -> bool:
        return endpoint == "chat.completions" and all(self.honours(n, wire) for n in needs)

    def honours(self, need: str, wire: str | None = None) -> bool:
        return need == "tools"  # a deployment that honours tools and nothing more


def deployment(name: str, model: str, region: str, input_price: float) -> str:
    return (f"  - {{name: {name}, model: {model}, provider: openai, region: {region},\n"
            f"     base_url: 'http://127.0.0.1:9/v1', api_key: 'env:KEY', upstream_model: m,\n"
            f"     price: {{input_per_mtok: {input_price}, output_per_mtok: 1.0}}}}\n")


CONFIG = (
    "models:\n"
    "  - {name: solo, routing: {policy: cost}}\n"
    "  - {name: pair, routing: {policy: cost}}\n"
    "  - {name: chain, routing: {policy: latency, fallbacks: [solo]}}\n"
    "deployments:\n"
    + deployment("solo-us", "solo", "us-east-1", 0.5)
    + deployment("pair-us", "pair", "us-east-1", 0.5)
    + deployment("pair-eu", "pair", "eu-west-1", 0.1)
    + deployment("chain-us", "chain", "us-east-1", 0.5)
)


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Router:
    monkeypatch.setenv("KEY", "sk-test")
    config, problems = parse_config(CONFIG, known_providers={"openai"})
    assert problems == [] and isinstance(config, Config)
    providers = {d.name: cast(Provider, StandIn()) for d in config.deployments}
    return Router(config, providers)


def plan(router: Router, model: str, residency: str | None = None) -> Plan:
    return router.plan(RouteRequest(
        model=model, endpoint="chat.completions", prompt_tokens=100, output_tokens=50,
        residency=frozenset({residency}) if residency else None))


def test_a_single_deployment_is_not_scored_and_the_reason_says_why(router: Router) -> None:
    p = plan(router, "solo")
    assert [t.deployment.name for t in p.targets] == ["solo-us"]
    assert p.policy == "cost"
    assert p.reason() == {"decisions": [{
        "policy": "cost", "reason": "cost: the only deployment that may serve it",
        "order": ["solo-us"], "scores": {"solo-us": None}}]}


def test_two_admissible_deployments_are_ranked_by_the_policy(router: Router) -> None:
    p = plan(router, "pair")
    assert [t.deployment.name for t in p.targets] == ["pair-eu", "pair-us"]  # cheaper first
    decision = p.reason()["decisions"][0]
    assert decision["reason"].startswith("cost: $")
    assert set(decision["scores"]) == {"pair-eu", "pair-us"}
    assert all(score is not None for score in decision["scores"].values())


def test_one_left_by_the_constraints_counts_the_others(router: Router) -> None:
    p = plan(router, "pair", residency="us-east-1")
    assert [t.deployment.name for t in p.targets] == ["pair-us"]
    assert p.reason()["decisions"][0]["reason"] == (
        "cost: the only deployment that may serve it (1 refused by constraints)")


def test_the_constraints_still_refuse_a_single_deployment(router: Router) -> None:
    with pytest.raises(ResidencyUnsatisfiable):
        plan(router, "solo", residency="eu-west-1")
    stats = router.stats["solo-us"]
    for _ in range(50):  # enough failures to open its circuit
        stats.end(time.monotonic(), ok=False)
    with pytest.raises(ServiceUnavailable, match="circuit open"):
        plan(router, "solo")


def test_each_alias_of_a_fallback_chain_keeps_its_own_decision(router: Router) -> None:
    p = plan(router, "chain")
    assert [t.deployment.name for t in p.targets] == ["chain-us", "solo-us"]
    assert [d["policy"] for d in p.reason()["decisions"]] == ["latency", "cost"]
    assert p.policy == "latency"


@pytest.mark.parametrize("need", ["logprobs", "ignore_eos", "frequency_penalty"])
def test_a_field_no_deployment_honours_is_refused_with_400_naming_it(router: Router,
                                                                    need: str) -> None:
    request = RouteRequest(model="pair", endpoint="chat.completions",
                           needs=frozenset({"tools", need}))
    with pytest.raises(InvalidRequest) as refused:
        router.plan(request)
    assert refused.value.status == 400 and refused.value.param == need
    assert refused.value.code == "unsupported_parameter"
    assert f"'{need}'" in refused.value.message
# -- a canary's split and a shadow's plan -----------------------------------------------------

def keyed(router: Router, model: str, key: str, residency: str | None = None) -> Plan:
    return router.plan(RouteRequest(
        model=model, endpoint="chat.completions", prompt_tokens=100, output_tokens=50,
        sticky_key=key, residency=frozenset({residency}) if residency else None))


def test_a_canary_takes_its_share_first_and_never_the_rest(router: Router) -> None:
    from inferplane.governance.canary import Split, takes

    router.canaries = {"pair": Split("v-us", 50.0, frozenset({"pair-us"}))}
    keys = [f"user:{i}" for i in range(60)]
    for key in keys:
        p = keyed(router, "pair", key)
        names = [t.deployment.name for t in p.targets]
        if takes(50.0, "pair", key):  # the canary first, the incumbent as its fallback
            assert names == ["pair-us", "pair-eu"] and p.reason()["canary"]["share"] is True
        else:
            assert names == ["pair-eu"]
            assert p.reason()["rejected"] == [{
                "deployment": "pair-us", "constraint": "governance",
                "reason": "version v-us is in canary at 50%; not this request"}]
    inside = next(k for k in keys if takes(50.0, "pair", k))
    stats = router.stats["pair-us"]
    for _ in range(50):  # the canary's circuit opens: its share goes to the incumbent
        stats.end(time.monotonic(), ok=False)
    p = keyed(router, "pair", inside)
    assert [t.deployment.name for t in p.targets] == ["pair-eu"]
    assert p.reason()["rejected"][0]["constraint"] == "breaker"


def test_a_shadow_plan_ignores_the_holdback_but_not_the_requests_limits(router: Router) -> None:
    router.held_back = {"pair-us": "version pair-us is in shadow"}
    assert [t.deployment.name for t in plan(router, "pair").targets] == ["pair-eu"]
    request = RouteRequest(model="pair", endpoint="chat.completions", prompt_tokens=100,
                           output_tokens=50)
    shadow = router.shadow_plan(request, frozenset({"pair-us"}))
    assert [t.deployment.name for t in shadow.targets] == ["pair-us"]
    with pytest.raises(ResidencyUnsatisfiable):
        router.shadow_plan(RouteRequest(model="pair", endpoint="chat.completions",
                                        residency=frozenset({"eu-west-1"})),
                           frozenset({"pair-us"}))


# -- the load an upstream reports of itself (engines on Ray Serve: their /load board) ----------

def board(in_flight: int, capacity: int) -> str:
    return (f'{{"replicas": 1, "running": {min(in_flight, capacity)}, "waiting": 0, '
            f'"in_flight": {in_flight}, "capacity": {capacity}, "kv_cache_usage": 0.1}}')


def test_the_upstreams_own_load_and_capacity_rank_least_busy(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEY", "sk-test")
    config, problems = parse_config(
        "models:\n  - {name: pair, routing: {policy: least-busy}}\ndeployments:\n"
        + deployment("ray-a", "pair", "local", 0.5) + deployment("ray-b", "pair", "local", 0.5),
        known_providers={"openai"})
    assert problems == [] and isinstance(config, Config)
    router = Router(config, {d.name: cast(Provider, StandIn()) for d in config.deployments})
    # ray-a: 6 of 8 slots held by other gateways; ray-b: 1 of 2 (its replicas scaled down)
    now = time.monotonic()
    router.engine_readings = {"ray-a": EngineReading(ray_serve(board(6, 8)), now, 1.0),
                              "ray-b": EngineReading(ray_serve(board(1, 2)), now, 1.0)}
    p = plan(router, "pair")
    assert [t.deployment.name for t in p.targets] == ["ray-b", "ray-a"]
    assert p.reason()["decisions"][0]["scores"] == {"ray-a": 0.75, "ray-b": 0.5}
    # this gateway's own count wins where it is higher than the (older) report
    for _ in range(3):
        router.stats["ray-b"].start(time.monotonic())
    p = plan(router, "pair")
    assert [t.deployment.name for t in p.targets] == ["ray-a", "ray-b"]
    # a stale report, or none: this gateway's own count, no capacity
    router = Router(config, {d.name: cast(Provider, StandIn()) for d in config.deployments})
    router.engine_readings = {"ray-a": EngineReading(EngineLoad(5, 0, capacity=8), now - 10, 1.0)}
    assert plan(router, "pair").reason()["decisions"][0]["scores"] == {"ray-a": 0.0,
                                                                      "ray-b": 0.0}
