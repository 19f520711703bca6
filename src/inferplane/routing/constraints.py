"""Hard constraints, applied before any scoring: governance (a version not approved, retired
or killed), residency, price cap, open circuit.

A candidate that fails one is never tried, whatever the policy. Each candidate is checked in
that order and rejected for the first constraint it fails, so a rejection names the most
fundamental reason (a deployment outside the residency is reported as such even if its
circuit is also open).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from inferplane.routing.candidate import Candidate, RequestProfile, max_cost_usd, usd


class Constraint(StrEnum):
    """Which hard constraint rejected a candidate (or, in a :class:`Refusal`, emptied the set)."""

    GOVERNANCE = "governance"
    RESIDENCY = "residency"
    PRICE = "price"
    BREAKER = "breaker"
    NONE_CONFIGURED = "none_configured"


@dataclass(frozen=True, slots=True)
class Rejection:
    deployment: str
    constraint: Constraint
    reason: str


@dataclass(frozen=True, slots=True)
class Admission:
    """The candidates that passed every hard constraint (input order kept) and the rest."""

    kept: tuple[Candidate, ...]
    rejected: tuple[Rejection, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why no deployment may serve a request, as one message fit for the client.

    ``constraint`` tells the caller how to answer: residency and price are the request's own
    limits (a 4xx); breaker (every otherwise-eligible circuit is open), governance (every
    deployment held back: not approved, retired, killed) and none_configured are the
    gateway's (503).
    """

    constraint: Constraint
    message: str

    @property
    def client_error(self) -> bool:
        return self.constraint in (Constraint.RESIDENCY, Constraint.PRICE)


def _braces(values: Iterable[str]) -> str:
    return "{" + ", ".join(sorted(values)) + "}"


def _residency_reason(candidate: Candidate, profile: RequestProfile) -> str | None:
    for allowed in (profile.allowed_regions, profile.allowed_jurisdictions,
                    profile.allowed_by_key):
        if allowed is not None and not {candidate.region, candidate.jurisdiction} & allowed:
            where = f"region {candidate.region}"
            if candidate.jurisdiction != candidate.region:
                where += f" (jurisdiction {candidate.jurisdiction})"
            return f"{where} is outside the allowed residency {_braces(allowed)}"
    return None


def _price_reason(candidate: Candidate, profile: RequestProfile) -> str | None:
    cap = profile.max_price_usd
    if cap is None:
        return None
    cost = max_cost_usd(candidate, profile)
    if cost <= cap:
        return None
    return f"expected cost {usd(cost)} exceeds the request's cap {usd(cap)}"


def admissible(candidates: Sequence[Candidate], profile: RequestProfile) -> Admission:
    """Split ``candidates`` into those that may serve ``profile`` and the rejected, with reasons.

    >>> eu = Candidate("eu-a", "m", "p", "eu-west-1", "eu")
    >>> us = Candidate("us-a", "m", "p", "us-east", "us")
    >>> adm = admissible([eu, us], RequestProfile(10, 10, allowed_jurisdictions=frozenset({"eu"})))
    >>> [c.name for c in adm.kept], adm.rejected[0].reason
    (['eu-a'], 'region us-east (jurisdiction us) is outside the allowed residency {eu}')
    """
    kept: list[Candidate] = []
    rejected: list[Rejection] = []
    for candidate in candidates:
        if candidate.held_back is not None:  # first: nothing else may let it through
            rejected.append(Rejection(candidate.name, Constraint.GOVERNANCE, candidate.held_back))
            continue
        reason = _residency_reason(candidate, profile)
        if reason is not None:
            rejected.append(Rejection(candidate.name, Constraint.RESIDENCY, reason))
            continue
        reason = _price_reason(candidate, profile)
        if reason is not None:
            rejected.append(Rejection(candidate.name, Constraint.PRICE, reason))
            continue
        if candidate.breaker_open:
            rejected.append(Rejection(candidate.name, Constraint.BREAKER, "circuit open"))
            continue
        kept.append(candidate)
    return Admission(tuple(kept), tuple(rejected))


def refusal(admission: Admission, alias: str) -> Refusal:
    """The message for an admission that kept nothing.

    The most recoverable cause wins: if any deployment failed only because its circuit is
    open, the request could be served once it closes (503); otherwise governance holding
    deployments back (503, naming each version or kill and its reason); otherwise a price cap
    that some in-residency deployment exceeded, else the residency itself (both the request's
    limits).

    >>> r = refusal(Admission((), (Rejection("a", Constraint.BREAKER, "circuit open"),)), "m")
    >>> r.constraint, r.client_error
    (<Constraint.BREAKER: 'breaker'>, False)
    """
    if admission.kept:
        raise ValueError("the admission kept candidates; there is nothing to refuse")
    by_constraint: dict[Constraint, list[Rejection]] = {}
    for rejection in admission.rejected:
        by_constraint.setdefault(rejection.constraint, []).append(rejection)

    def detail(constraint: Constraint) -> str:
        return "; ".join(f"{r.deployment}: {r.reason}" for r in by_constraint[constraint])

    if Constraint.BREAKER in by_constraint:
        names = ", ".join(r.deployment for r in by_constraint[Constraint.BREAKER])
        return Refusal(Constraint.BREAKER,
                       f"Every deployment of '{alias}' that could serve this request has its "
                       f"circuit open after recent failures ({names}); retry shortly.")
    if Constraint.GOVERNANCE in by_constraint:
        return Refusal(Constraint.GOVERNANCE,
                       f"No deployment of '{alias}' may serve requests now "
                       f"({detail(Constraint.GOVERNANCE)}).")
    if Constraint.PRICE in by_constraint:
        return Refusal(Constraint.PRICE,
                       f"Every deployment of '{alias}' allowed for this request costs more than "
                       f"its price cap ({detail(Constraint.PRICE)}).")
    if Constraint.RESIDENCY in by_constraint:
        return Refusal(Constraint.RESIDENCY,
                       f"No deployment of '{alias}' is in the allowed residency "
                       f"({detail(Constraint.RESIDENCY)}).")
    return Refusal(Constraint.NONE_CONFIGURED, f"No deployment of '{alias}' is available.")
