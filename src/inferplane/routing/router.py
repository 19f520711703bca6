"""Model aliases -> the ordered deployments a request will try.

:meth:`Router.plan` joins configuration and live stats into :class:`Candidate` snapshots, applies
the hard constraints (the provider can serve the request, residency, price cap, circuit open),
ranks what is left with the alias's policy (an alias left with one deployment needs no ranking),
and appends each fallback alias's ranking after it.
The decisions themselves are the pure functions of ``constraints.py`` and ``policy.py``.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from inferplane.errors import (
    GovernanceBlocked,
    InferplaneError,
    InvalidRequest,
    ModelNotFound,
    PriceCapExceeded,
    ResidencyUnsatisfiable,
    ServiceUnavailable,
)
from inferplane.metering.meter import DeploymentMeter, build_meters
from inferplane.routing.candidate import Candidate, RequestProfile
from inferplane.routing.constraints import Admission, Constraint, Rejection, admissible, refusal
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
        # deployment -> why governance holds it back; replaced whole by governance/live.py
        self.held_back: Mapping[str, str] = {}
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
        now = time.monotonic()
        turn = next(self._turns)
        context: PolicyContext | None = None  # built for the first alias with a choice to make
        targets: dict[str, Target] = {}  # by deployment name, in order of preference
        decisions: list[Decision] = []
        rejected: list[Rejection] = []
        pinned = request.version
        aliases = (model.name,) if pinned is not None else (model.name, *model.routing.fallbacks)
        for alias in aliases:
            alias_model = self.model(alias)
            by_name = {t.deployment.name: t for t in self._pinned(alias, pinned)
                       if t.provider.serves(request.endpoint, request.needs)
                       and t.provider.ready}
            profile = self._profile(request, alias_model)
            admission = admissible([self._candidate(t, alias, now, pinned is not None)
                                    for t in by_name.values()], profile)
            rejected += admission.rejected
            if not admission.kept:
                continue
            policy = alias_model.routing.policy
            if len(admission.kept) == 1:  # nothing to choose between: no scoring
                decision = only_candidate(policy, admission.kept[0], len(admission.rejected))
            else:
                context = context or replace(self.context, turn=turn)
                decision = get_policy(policy)(admission.kept, profile, context)
            decisions.append(decision)
            for name in decision.names:
                targets.setdefault(name, by_name[name])
        if not targets:
            raise self._refusal(request, model, rejected)
        return Plan(model, tuple(targets.values()), tuple(decisions), self._retry[model.name],
                    tuple(rejected))

    def _pinned(self, alias: str, version: str | None) -> list[Target]:
        """The alias's deployments, only those of ``version`` when the request pins one."""
        targets = self._targets[alias]
        if version is None:
            return targets
        pinned = [t for t in targets if t.deployment.version_name == version]
        if not pinned:
            versions = sorted({t.deployment.version_name for t in targets})
            raise InvalidRequest(f"The model '{alias}' has no version '{version}' (its versions: "
                                 f"{', '.join(versions)}).", param=VERSION_HEADER)
        return pinned

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

    def _candidate(self, target: Target, alias: str, now: float, pinned: bool = False
                   ) -> Candidate:
        """``pinned``: the request names this version (an evaluation), so only a kill holds
        it back, not its stage."""
        d = target.deployment
        live = self.stats[d.name].snapshot(now)
        input_price, output_price, cached_price = _prices(target, live.itl_s)
        footprint = target.meter.footprint
        engine = d.engine
        return Candidate(
            name=d.name, alias=alias, provider=d.provider, region=d.region,
            jurisdiction=d.area, input_per_mtok=input_price, output_per_mtok=output_price,
            cached_input_per_mtok=cached_price, weight=d.weight, in_flight=live.in_flight,
            capacity=d.max_in_flight or (engine.parallel if engine is not None else None),
            ttft_s=live.ttft_s, itl_s=live.itl_s, error_rate=live.error_rate,
            grid_gco2_per_kwh=footprint.grid_gco2_per_kwh,
            joules_per_output_token=target.meter.joules_per_output_token, pue=footprint.pue,
            breaker_open=live.breaker_open,
            held_back=(self.killed if pinned else self.held_back).get(d.name),
        )

    def _refusal(self, request: RouteRequest, model: ModelConfig,
                 rejected: list[Rejection]) -> Exception:
        if not rejected:
            providers = [t.provider for t in self._targets[model.name]]
            if not any(p.serves(request.endpoint, request.needs) for p in providers):
                return unserved(request, providers)
            return ServiceUnavailable(
                f"No deployment of '{request.model}' is ready (starting or restarting); "
                "retry shortly.")
        why = refusal(Admission((), tuple(rejected)), request.model)
        error = _REFUSALS.get(why.constraint, ServiceUnavailable)(why.message)
        error.routing_reason = {"decisions": [], "rejected": rejections(tuple(rejected))}
        return error


def unserved(request: RouteRequest, providers: list[Provider]) -> InvalidRequest:
    """Why no deployment of the model can serve the request: the endpoint, or the first
    feature it asks for that none honours (a 400 naming that field)."""
    endpoint = [p for p in providers if p.serves(request.endpoint)]
    if not endpoint:
        return InvalidRequest(f"No deployment of '{request.model}' supports {request.endpoint}.",
                              param="model")
    for need in sorted(request.needs):
        if not any(p.honours(need) for p in endpoint):
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
