"""Admission: may this request start, given the rate limits and budgets of its key and tenant?

The rules, shared word for word by :class:`LocalCounters` (one process) and the Redis script in
``counters.py`` (several processes), and checked against each other in the tests:

- **RPM** is a token bucket of ``rpm`` tokens refilled at ``rpm / 60`` per second: a request
  takes one. A full bucket lets a burst of ``rpm`` through, then one per ``60 / rpm`` seconds, so
  any window of ``T`` seconds admits at most ``rpm + rpm * T / 60`` requests.
- **TPM** is a token bucket of ``tpm`` tokens: a request needs ``min(estimate, tpm)`` tokens in
  it and takes its whole ``estimate`` (prompt upper bound + maximum output), which may leave the
  bucket in debt; settling gives back ``estimate - actual``.
- **Budget**: a request reserves its maximum possible cost and is admitted only if
  ``spent + reserved + its reservation <= budget``; settling releases the reservation and adds
  the real cost. So the spend of a period exceeds its budget by at most the sum, over the
  requests in flight when it ran out, of ``max(0, real cost - reservation)``: nothing when each
  reservation is a true upper bound (see ``docs/tenancy.md`` for when it is one).
- All the checks of a request (key and tenant) pass together or none is charged.

Money is counted in integer nano-dollars so many small costs add up exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from inferplane.tenancy.budget import Budget, period_start

NANOS_PER_USD = 1_000_000_000
LimitKind = Literal["rpm", "tpm", "budget"]


def nanos(usd: float) -> int:
    """US dollars -> nano-dollars, rounded up (a reservation never falls short by rounding).

    >>> nanos(0.0000015), nanos(0.0)
    (1500, 0)
    """
    return max(0, math.ceil(usd * NANOS_PER_USD - 1e-6))


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one scope: a key (``key:<id>``) or a tenant (``tenant:<name>``)."""

    scope: str
    rpm: int | None = None
    tpm: int | None = None
    budget: Budget | None = None

    def budget_key(self, now: float) -> str | None:
        """Names the budget period containing ``now`` (a new period starts from zero)."""
        if self.budget is None:
            return None
        return f"{self.budget.period}:{int(period_start(self.budget.period, now))}"


@dataclass(frozen=True, slots=True)
class Demand:
    """What a request may use at most: tokens (prompt upper bound + maximum output) and cost."""

    tokens: int
    cost_nanos: int


@dataclass(frozen=True, slots=True)
class Charge:
    """What one scope was charged for an admitted request, to settle later."""

    scope: str
    tpm: int | None  # the scope's TPM limit, when it has one
    budget_key: str | None


@dataclass(frozen=True, slots=True)
class Reservation:
    id: str
    demand: Demand
    charges: tuple[Charge, ...]


@dataclass(frozen=True, slots=True)
class Refusal:
    scope: str
    kind: LimitKind
    retry_after_s: float | None  # None: not before the budget period ends (or never)
    limit: float
    used: float = 0.0  # budget: spent + reserved, USD


@dataclass(slots=True)
class Bucket:
    level: float
    at: float

    def refill(self, capacity: int, now: float) -> float:
        """The level at ``now``: ``capacity / 60`` per second, never above ``capacity``.

        >>> Bucket(0.0, 0.0).refill(60, 2.5)
        2.5
        >>> Bucket(59.0, 0.0).refill(60, 10.0)
        60.0
        """
        return min(float(capacity), self.level + max(0.0, now - self.at) * capacity / 60.0)


def wait_s(need: float, level: float, capacity: int) -> float:
    """Seconds until a bucket at ``level`` holds ``need`` tokens.

    >>> wait_s(1, 0.5, 60)
    0.5
    """
    return max(0.0, (need - level) * 60.0 / capacity)


@dataclass(slots=True)
class BudgetState:
    spent: int = 0
    reserved: int = 0
    holds: dict[str, tuple[int, float]] = field(default_factory=dict)  # id -> (nanos, expiry)

    def expire(self, now: float) -> None:
        """Release reservations whose request never settled (its process died)."""
        for rid, (amount, expiry) in list(self.holds.items()):
            if expiry <= now:
                del self.holds[rid]
                self.reserved -= amount


class LocalCounters:
    """The rules above for one process, in memory. A budget period must be seeded (with what
    the ledger says it has spent so far) before its first request: :meth:`unseeded`."""

    def __init__(self, hold_s: float = 3600.0) -> None:
        self._hold_s = hold_s
        self.rpm: dict[str, Bucket] = {}
        self.tpm: dict[str, Bucket] = {}
        self.budgets: dict[tuple[str, str], BudgetState] = {}

    def unseeded(self, limits: Sequence[Limits], wall: float) -> list[tuple[str, str]]:
        """The (scope, budget key) periods of ``limits`` not seeded yet."""
        keys = ((lim.scope, lim.budget_key(wall)) for lim in limits)
        return [(scope, key) for scope, key in keys
                if key is not None and (scope, key) not in self.budgets]

    def seed(self, scope: str, budget_key: str, spent_nanos: int) -> None:
        self.budgets.setdefault((scope, budget_key), BudgetState(spent_nanos))

    def admit(self, limits: Sequence[Limits], demand: Demand, rid: str, now: float,
              wall: float) -> Reservation | Refusal:
        """Check every scope, then charge every scope, or refuse without charging any.
        ``now`` is a monotonic clock for the buckets, ``wall`` the time of day for budgets."""
        for lim in limits:
            refused = self._check(lim, demand, now, wall)
            if refused is not None:
                return refused
        charges = []
        for lim in limits:
            if lim.rpm is not None:
                bucket = self.rpm[lim.scope]
                bucket.level, bucket.at = bucket.refill(lim.rpm, now) - 1, now
            if lim.tpm is not None:
                bucket = self.tpm[lim.scope]
                bucket.level, bucket.at = bucket.refill(lim.tpm, now) - demand.tokens, now
            key = lim.budget_key(wall)
            if key is not None:
                state = self.budgets[(lim.scope, key)]
                state.reserved += demand.cost_nanos
                state.holds[rid] = (demand.cost_nanos, wall + self._hold_s)
            charges.append(Charge(lim.scope, lim.tpm, key))
        return Reservation(rid, demand, tuple(charges))

    def _check(self, lim: Limits, demand: Demand, now: float, wall: float) -> Refusal | None:
        if lim.rpm is not None:
            level = self.rpm.setdefault(lim.scope, Bucket(lim.rpm, now)).refill(lim.rpm, now)
            if level < 1:
                return Refusal(lim.scope, "rpm", wait_s(1, level, lim.rpm), lim.rpm)
        if lim.tpm is not None:
            level = self.tpm.setdefault(lim.scope, Bucket(lim.tpm, now)).refill(lim.tpm, now)
            need = min(demand.tokens, lim.tpm)
            if level < need:
                return Refusal(lim.scope, "tpm", wait_s(need, level, lim.tpm), lim.tpm)
        key = lim.budget_key(wall)
        if key is not None and lim.budget is not None:
            state = self.budgets[(lim.scope, key)]  # KeyError: not seeded
            state.expire(wall)
            if state.spent + state.reserved + demand.cost_nanos > nanos(lim.budget.usd):
                return Refusal(lim.scope, "budget", None, lim.budget.usd,
                               (state.spent + state.reserved) / NANOS_PER_USD)
        return None

    def settle(self, reservation: Reservation, tokens: int, cost_nanos: int,
               now: float) -> None:
        """The request ended having used ``tokens`` and cost ``cost_nanos``."""
        for charge in reservation.charges:
            bucket = self.tpm.get(charge.scope)
            if charge.tpm is not None and bucket is not None:
                bucket.level = min(float(charge.tpm),
                                   bucket.level + reservation.demand.tokens - tokens)
            if charge.budget_key is not None:
                state = self.budgets.get((charge.scope, charge.budget_key))
                if state is None:
                    continue
                held = state.holds.pop(reservation.id, None)
                if held is not None:
                    state.reserved -= held[0]
                state.spent += cost_nanos
