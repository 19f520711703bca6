"""Model aliases -> the ordered deployments a request will try.

:meth:`Router.plan` joins configuration and live stats into :class:`Candidate` snapshots, applies
the hard constraints (the provider can serve the request, residency, price cap, circuit open),
ranks what is left with the alias's policy (an alias left with one deployment needs no ranking),
and appends each fallback alias's ranking after it. A model with a canary is split per request
first (``governance/canary.py``): a request in the canary's share ranks the canary's
deployments, then the incumbent's as its fallback; one outside it never sees the canary.
The decisions themselves are the pure functions of ``constraints.py`` and ``policy.py``.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from inferplane.engines.engine_metrics import EngineReading
from inferplane.errors import (
    GovernanceBlocked,
    InferplaneError,
    InvalidRequest,
    ModelNotFound,
    PriceCapExceeded,
    ResidencyUnsatisfiable,
    ServiceUnavailable,
)
from inferplane.governance.canary import Split, split
from inferplane.metering.meter import DeploymentMeter, build_meters
from inferplane.routing.candidate import Candidate, RequestProfile, merged_load
from inferplane.routing.constraints import Admission, Constraint, Rejection, admissible, refusal
from inferplane.routing.engine_load import engine_view
from inferplane.routing.health import BreakerConfig, CircuitBreaker, DeploymentStats
from inferplane.routing.policy import Decision, PolicyContext, get_policy
from inferplane.routing.request import VERSION_HEADER, RouteRequest
from inferplane.routing.retry import RetryPolicy

if TYPE_CHECKING:
    from inferplane.config import Config, DeploymentConfig, ModelConfig
    from inferplane.providers.base import Provider

_REFUSALS: dict[Constraint, type[InferplaneError]] = {
    Constraint.GOVERNANCE: GovernanceBlocked,
    Constraint.RESIDENCY: ResidencyUnsatisfiable,
    Constraint.PRICE: PriceCapExceeded,
}


@dataclass(frozen=True, slots=True)
class Target:
    deployment: DeploymentConfig
    provider: Provider
    meter: DeploymentMeter


@dataclass(frozen=True, slots=True)
class Plan:
    """The deployments to try, best first, and why (for the ledger)."""

    model: ModelConfig
    targets: tuple[Target, ...]
    decisions: tuple[Decision, ...]
    retry: RetryPolicy
    rejected: tuple[Rejection, ...] = ()
    canary: dict[str, Any] | None = None  # the model's canary and whether the request is in it

    @property
    def policy(self) -> str:
        return self.decisions[0].policy if self.decisions else self.model.routing.policy

    def reason(self) -> dict[str, Any]:
        """Each alias's ranking: the policy, its reason and the scores; and the deployments
        the hard constraints turned away, with why (when there were any)."""
        reason: dict[str, Any] = {"decisions": [
            {"policy": d.policy, "reason": d.reason, "order": list(d.names),
             "scores": dict(d.scores)} for d in self.decisions
        ]}
        if self.rejected:
            reason["rejected"] = rejections(self.rejected)
        if self.canary is not None:
            reason["canary"] = self.canary
        return reason


def rejections(rejected: tuple[Rejection, ...]) -> list[dict[str, str]]:
    """The routing reason's record of the candidates the hard constraints turned away."""
    return [{"deployment": r.deployment, "constraint": r.constraint, "reason": r.reason}
            for r in rejected]


class Router:
    def __init__(self, config: Config, providers: Mapping[str, Provider],
                 rng: random.Random | None = None,
                 meters: Mapping[str, DeploymentMeter] | None = None) -> None:
        meters = meters if meters is not None else build_meters(config)
        self._models: dict[str, ModelConfig] = {}
        self._targets: dict[str, list[Target]] = {}
        self._retry: dict[str, RetryPolicy] = {}  # by model name: fixed by the configuration
        for model in config.models:
            targets = [
                Target(d, providers[d.name], meters[d.name])
                for d in config.deployments if d.model == model.name
            ]
            for name in (model.name, *model.aliases):
                self._models[name] = model
                self._targets[name] = targets
            r = model.routing.retry
            self._retry[model.name] = RetryPolicy(
                max_attempts_per_deployment=r.per_deployment, max_attempts=r.max_attempts,
                deadline_s=r.deadline_s, base_s=r.backoff_base_s, cap_s=r.backoff_cap_s)
        breaker = BreakerConfig(**config.breaker.model_dump())
        self.stats = {d.name: DeploymentStats(breaker=CircuitBreaker(breaker))
                      for d in config.deployments}
        self.context = PolicyContext(rng=rng or random.Random())
        self._turns = itertools.count()
        # deployment -> why governance holds it back, and model -> its canary; both replaced
        # whole by governance/live.py
        self.held_back: Mapping[str, str] = {}
        self.canaries: Mapping[str, Split] = {}
        # deployment -> the last reading of its engine's own metrics (engines/scraper.py)
        self.engine_readings: Mapping[str, EngineReading] = {}
        # deployment -> the kill that stops it: all that holds back a pinned version
        self.killed: Mapping[str, str] = {}

    def model_names(self) -> list[str]:
        return list(self._targets)

    def model(self, name: str) -> ModelConfig:
        model = self._models.get(name)
        if model is None:
            raise ModelNotFound(
                f"The model '{name}' does not exist. Available: {', '.join(self._targets)}.",
                param="model",
            )
        return model

    def targets(self, model: str) -> list[Target]:
        self.model(model)
        return self._targets[model]

    def plan(self, request: RouteRequest) -> Plan:
        """The ordered attempts for ``request``; raises when no deployment may serve it."""
        model = self.model(request.model)
        if request.version is not None:
            return self._pinned_plan(request, model, request.version)
        ranking = _Ranking(self, request, next(self._turns), self.held_back)
        canary: dict[str, Any] | None = None
        for alias in (model.name, *model.routing.fallbacks):
            alias_model = self.model(alias)
            by_name = self._servable(request, alias)
            groups = split(self.canaries.get(alias_model.name), alias_model.name,
                           request.sticky_key, list(by_name))
            if groups.share is not None:
                canary, turned = self._canary_note(alias_model.name, groups.share)
                ranking.rejected += [Rejection(n, Constraint.GOVERNANCE, turned)
                                     for n in groups.turned_away]
            for group in groups.tried:
                ranking.rank(alias_model, alias, [by_name[n] for n in group])
        return ranking.plan(model, canary)

    def shadow_plan(self, request: RouteRequest, deployments: frozenset[str]) -> Plan:
        """A plan over a shadow version's ``deployments`` alone, for a mirrored copy of
        ``request``: the request's own constraints (residency, price cap) and the breakers
        apply; governance's holdback, which keeps them from live traffic, does not (the
        caller leaves killed ones out)."""
        model = self.model(request.model)
        ranking = _Ranking(self, request, next(self._turns), {})
        by_name = self._servable(request, model.name)
        ranking.rank(model, model.name, [t for n, t in by_name.items() if n in deployments])
        return ranking.plan(model, None)

    def _pinned_plan(self, request: RouteRequest, model: ModelConfig, version: str) -> Plan:
        """A plan over ``version``'s deployments of the model alone, whatever their stage (an
        evaluation before approval): only a kill holds them back, and nothing falls back."""
        servable = self._servable(request, model.name)
        versions = {t.deployment.version_name for t in self._targets[model.name]}
        if version not in versions:
            raise InvalidRequest(f"The model '{model.name}' has no version '{version}' (its "
                                 f"versions: {', '.join(sorted(versions))}).",
                                 param=VERSION_HEADER)
        ranking = _Ranking(self, request, next(self._turns), self.killed)
        ranking.rank(model, model.name, [t for t in servable.values()
                                         if t.deployment.version_name == version])
        return ranking.plan(model, None)

    def _servable(self, request: RouteRequest, alias: str) -> dict[str, Target]:
        return {t.deployment.name: t for t in self._targets[alias]
                if t.provider.serves(request.endpoint, request.needs, request.extensions_wire)
                and t.provider.ready}

    def _canary_note(self, model: str, share: bool) -> tuple[dict[str, Any], str]:
        """What the record says of ``model``'s canary, and why a request outside its share
        does not reach it."""
        c = self.canaries[model]
        note = {"model": model, "version": c.version, "percent": c.percent, "share": share}
        return note, f"version {c.version} is in canary at {c.percent:g}%; not this request"

    def _profile(self, request: RouteRequest, model: ModelConfig) -> RequestProfile:
        routing = model.routing
        caps = [c for c in (request.max_price_usd, routing.max_request_usd) if c is not None]
        return RequestProfile(
            prompt_tokens=request.prompt_tokens, output_tokens=request.output_tokens,
            prefix_key=request.prefix_key, allowed_regions=request.residency,
            allowed_jurisdictions=(frozenset(routing.residency)
                                   if routing.residency is not None else None),
            allowed_by_key=request.key_residency,
            max_price_usd=min(caps) if caps else None,
            slo_ttft_s=routing.slo.ttft_s, slo_tpot_s=routing.slo.tpot_s,
        )

    def _candidate(self, target: Target, alias: str, now: float, held: Mapping[str, str]
                   ) -> Candidate:
        """``held``: the deployments governance holds back, and why (for a pinned version, the
        killed ones only; for a shadow's copy, none)."""
        d = target.deployment
        live = self.stats[d.name].snapshot(now)
        input_price, output_price, cached_price = _prices(target, live.itl_s)
        footprint = target.meter.footprint
        engine = d.engine
        reading = self.engine_readings.get(d.name)
        # an engine Inferplane does not start may say how many sequences it runs at once
        capacity = d.max_in_flight or (engine.parallel if engine is not None else None) or (
            reading.load.slots if reading is not None else None)
        view = engine_view(reading, capacity, now)
        reported = target.provider.upstream_load()
        in_flight, capacity = merged_load(
            live.in_flight if view is None else max(live.in_flight, view.in_flight), capacity,
            reported.in_flight if reported is not None else None,
            reported.capacity if reported is not None else None)
        return Candidate(
            name=d.name, alias=alias, provider=d.provider, region=d.region,
            jurisdiction=d.area, input_per_mtok=input_price, output_per_mtok=output_price,
            cached_input_per_mtok=cached_price, weight=d.weight, in_flight=in_flight,
            capacity=capacity,
            ttft_s=live.ttft_s, itl_s=live.itl_s, error_rate=live.error_rate,
            grid_gco2_per_kwh=footprint.grid_gco2_per_kwh,
            joules_per_output_token=target.meter.joules_per_output_token, pue=footprint.pue,
            breaker_open=live.breaker_open,
            held_back=held.get(d.name),
            engine_waiting=None if view is None else view.waiting,
            kv_cache_usage=None if view is None else view.kv_cache_usage,
            saturated=None if view is None else view.saturated,
        )

    def _refusal(self, request: RouteRequest, model: ModelConfig,
                 rejected: list[Rejection]) -> Exception:
        if not rejected:
            providers = [t.provider for t in self._targets[model.name]]
            if not any(p.serves(request.endpoint, request.needs, request.extensions_wire)
                       for p in providers):
                return unserved(request, providers)
            return ServiceUnavailable(
                f"No deployment of '{request.model}' is ready (starting or restarting); "
                "retry shortly.")
        why = refusal(Admission((), tuple(rejected)), request.model)
        error = _REFUSALS.get(why.constraint, ServiceUnavailable)(why.message)
        error.routing_reason = {"decisions": [], "rejected": rejections(tuple(rejected))}
        return error


class _Ranking:
    """One plan in the making: each group of deployments ranked in turn (the model's, a
    canary's split of them, each fallback alias's), after the ones before it."""

    def __init__(self, router: Router, request: RouteRequest, turn: int,
                 held: Mapping[str, str]) -> None:
        self.router, self.request, self.turn, self.held = router, request, turn, held
        self.now = time.monotonic()
        self.context: PolicyContext | None = None  # built for the first group with a choice
        self.targets: dict[str, Target] = {}  # by deployment name, in order of preference
        self.decisions: list[Decision] = []
        self.rejected: list[Rejection] = []

    def rank(self, model: ModelConfig, alias: str, group: list[Target]) -> None:
        """Rank ``group`` (deployments of ``model``, asked for as ``alias``) after the groups
        ranked before it, once the hard constraints let them through."""
        router = self.router
        profile = router._profile(self.request, model)
        admission = admissible([router._candidate(t, alias, self.now, self.held)
                                for t in group], profile)
        self.rejected += admission.rejected
        if not admission.kept:
            return
        policy = model.routing.policy
        if len(admission.kept) == 1:  # nothing to choose between: no scoring
            decision = only_candidate(policy, admission.kept[0], len(admission.rejected))
        else:
            self.context = self.context or replace(router.context, turn=self.turn)
            decision = get_policy(policy)(admission.kept, profile, self.context)
        self.decisions.append(decision)
        by_name = {t.deployment.name: t for t in group}
        for name in decision.names:
            self.targets.setdefault(name, by_name[name])

    def plan(self, model: ModelConfig, canary: dict[str, Any] | None) -> Plan:
        """The plan of what was ranked; raises the refusal when nothing was let through."""
        if not self.targets:
            raise self.router._refusal(self.request, model, self.rejected)
        return Plan(model, tuple(self.targets.values()), tuple(self.decisions),
                    self.router._retry[model.name], tuple(self.rejected), canary)


def unserved(request: RouteRequest, providers: list[Provider]) -> InvalidRequest:
    """Why no deployment of the model can serve the request: the endpoint, or the first
    feature it asks for that none honours (a 400 naming that field)."""
    endpoint = [p for p in providers if p.serves(request.endpoint)]
    if not endpoint:
        return InvalidRequest(f"No deployment of '{request.model}' supports {request.endpoint}.",
                              param="model")
    for need in sorted(request.needs):
        if not any(p.honours(need, request.extensions_wire) for p in endpoint):
            what = "tool calls" if need == "tools" else f"the field '{need}'"
            return InvalidRequest(
                f"No deployment of '{request.model}' supports {what}: remove it, or ask for a "
                "model served where it is honoured (see docs/api.md).", param=need,
                code="unsupported_parameter")
    return InvalidRequest(f"No one deployment of '{request.model}' supports every field of the "
                          f"request: {', '.join(sorted(request.needs))}.",
                          param=sorted(request.needs)[0], code="unsupported_parameter")


def only_candidate(policy: str, candidate: Candidate, rejected: int) -> Decision:
    """The decision for an alias with one admissible deployment: any policy puts it first, so
    none is run; the reason says so (and how many the hard constraints turned away).

    >>> only_candidate("cost", Candidate("a", "m", "p", "us", "us"), 0).reason
    'cost: the only deployment that may serve it'
    >>> only_candidate("latency", Candidate("a", "m", "p", "us", "us"), 2).reason
    'latency: the only deployment that may serve it (2 refused by constraints)'
    """
    reason = f"{policy}: the only deployment that may serve it"
    if rejected:
        reason += f" ({rejected} refused by constraints)"
    return Decision(policy, (candidate,), {candidate.name: None}, reason)


def _prices(target: Target, itl_s: float | None) -> tuple[float, float, float | None]:
    """USD per million input, output and cached-input tokens: the deployment's price or its
    catalog list price (base tier). A deployment on our own hardware has no list price: its
    output price is its hourly cost over the tokens it makes in an hour at its measured
    inter-token latency (an upper bound: batching shares that time), and its input tokens are
    counted free."""
    price, d = target.meter.price, target.deployment
    if price is not None:
        return price.base.input, price.base.output, price.base.cached_input
    if d.hardware is not None and itl_s is not None:
        per_second = d.hardware.usd_per_hour * d.hardware.count / 3600
        return 0.0, per_second * itl_s * 1_000_000, None
    return 0.0, 0.0, None
