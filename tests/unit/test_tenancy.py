"""Tenancy's pure parts: keys, budgets, durations, and the admission rules of LocalCounters."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings, strategies as st

from inferplane.tenancy.admission import (
    NANOS_PER_USD,
    Demand,
    Limits,
    LocalCounters,
    Refusal,
    Reservation,
    nanos,
)
from inferplane.tenancy.budget import Budget, parse_budget, parse_duration, period_start
from inferplane.tenancy.keys import Scope, hash_secret, key_id, model_allowed, new_key, verify
from inferplane.tenancy.records import ApiKey, Principal, Tenant


def test_budgets_and_durations_parse_or_say_how() -> None:
    assert parse_budget("$5/day") == Budget(5.0, "day")
    assert parse_budget("20usd") == Budget(20.0, "month")
    assert parse_budget("0.5 USD / total") == Budget(0.5, "total")
    for bad in ("lots", "5eur", "5usd/fortnight", "-3usd", ""):
        with pytest.raises(ValueError, match=r"write e\.g\."):
            parse_budget(bad)
    with pytest.raises(ValueError, match="largest supported"):
        parse_budget("9000001usd/month")
    assert parse_duration("2w") == 14 * 86400
    for bad in ("forever", "0d", "5y", "-1h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_budget_periods_start_in_utc() -> None:
    new_year = dt.datetime(2027, 1, 1, 0, 0, 1, tzinfo=dt.UTC).timestamp()
    assert period_start("month", new_year) == dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    assert period_start("month", new_year - 2) == dt.datetime(
        2026, 12, 1, tzinfo=dt.UTC).timestamp()
    assert period_start("week", new_year) == dt.datetime(2026, 12, 28, tzinfo=dt.UTC).timestamp()


def test_keys_are_random_and_only_their_hash_identifies_them() -> None:
    keys = [new_key() for _ in range(50)]
    assert len({k.secret for k in keys}) == len({k.id for k in keys}) == 50
    for k in keys:
        assert key_id(k.secret) == k.id and hash_secret(k.secret) == k.hash
        assert k.secret not in k.hash and verify(k.secret, k.hash)
        assert not verify(k.secret[:-1] + ("A" if k.secret[-1] != "A" else "B"), k.hash)
    assert key_id("ipk_short_x") is None and key_id(keys[0].secret + "x") is None


def test_scopes_and_models() -> None:
    tenant = Tenant("acme", rpm=10)
    admin = Principal(ApiKey("a" * 12, "ops", scopes=frozenset({Scope.ADMIN})), None)
    reader = Principal(ApiKey("b" * 12, "acme", scopes=frozenset({Scope.READ_LEDGER}),
                              models=("chat-*",), rpm=5), tenant)
    assert admin.has(Scope.VIEWER) and admin.has(Scope.READ_LEDGER) and admin.operator
    assert not admin.has(Scope.INFERENCE)
    assert not reader.operator and not reader.has(Scope.INFERENCE)
    assert reader.may_use("chat-small") and not reader.may_use("embed")
    assert [lim.scope for lim in reader.limits()] == ["key:bbbbbbbbbbbb", "tenant:acme"]
    assert admin.limits() == []
    assert model_allowed(("a*", "b"), "b") and not model_allowed(("a*",), "ba")


T0, WALL = 1000.0, 1_790_000_000.0


def counters(*seeds: tuple[str, str, int]) -> LocalCounters:
    local = LocalCounters(hold_s=60)
    for scope, key, spent in seeds:
        local.seed(scope, key, spent)
    return local


def admit(local: LocalCounters, limits: list[Limits], tokens: int = 10, usd: float = 0.0,
          at: float = T0, rid: str = "r") -> Reservation | Refusal:
    for scope, key in local.unseeded(limits, WALL + at - T0):
        local.seed(scope, key, 0)
    return local.admit(limits, Demand(tokens, nanos(usd)), rid, at, WALL + at - T0)


def test_rpm_bucket_lets_a_burst_through_then_refills() -> None:
    local, lim = counters(), [Limits("key:k", rpm=6)]
    assert all(isinstance(admit(local, lim), Reservation) for _ in range(6))
    refused = admit(local, lim)
    assert isinstance(refused, Refusal) and refused.kind == "rpm"
    assert refused.retry_after_s == pytest.approx(10.0)
    assert isinstance(admit(local, lim, at=T0 + 10.0), Reservation)
    assert isinstance(admit(local, lim, at=T0 + 10.0), Refusal)


def test_tpm_bucket_charges_the_estimate_and_settles_to_the_actual() -> None:
    local, lim = counters(), [Limits("key:k", tpm=100)]
    first = admit(local, lim, tokens=60)
    assert isinstance(first, Reservation)
    refused = admit(local, lim, tokens=60)
    assert isinstance(refused, Refusal) and refused.kind == "tpm"
    local.settle(first, tokens=10, cost_nanos=0, now=T0)  # 50 back
    assert isinstance(admit(local, lim, tokens=60), Reservation)
    # An estimate over the whole limit needs a full bucket, and leaves it in debt.
    local2 = counters()
    big = admit(local2, lim, tokens=250)
    assert isinstance(big, Reservation)
    assert isinstance(admit(local2, lim, tokens=1, at=T0 + 59), Refusal)


def test_checks_pass_together_or_charge_nothing() -> None:
    local = counters()
    key = Limits("key:k", rpm=100)
    tenant = Limits("tenant:t", budget=Budget(1.0, "total"))
    assert isinstance(admit(local, [key, tenant], usd=0.6), Reservation)
    refused = admit(local, [key, tenant], usd=0.6)
    assert isinstance(refused, Refusal) and refused.scope == "tenant:t"
    assert refused.used == pytest.approx(0.6)
    assert local.rpm["key:k"].level == pytest.approx(99.0)  # the refused one took nothing


def test_budget_reserves_then_settles_and_lapsed_holds_are_released() -> None:
    budget = Limits("key:k", budget=Budget(1.0, "month"))
    local = counters()
    held = admit(local, [budget], usd=0.7, rid="a")
    assert isinstance(held, Reservation)
    assert isinstance(admit(local, [budget], usd=0.7, rid="b"), Refusal)
    local.settle(held, tokens=0, cost_nanos=nanos(0.2), now=T0)
    assert isinstance(admit(local, [budget], usd=0.7, rid="c"), Reservation)  # 0.2 + 0.7
    # "c" never settles (its process died): its hold lapses after hold_s.
    assert isinstance(admit(local, [budget], usd=0.7, rid="d", at=T0 + 30), Refusal)
    assert isinstance(admit(local, [budget], usd=0.7, rid="e", at=T0 + 61), Reservation)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 400), st.floats(0, 1), st.booleans()),
                min_size=1, max_size=120))
def test_spend_never_passes_the_budget_when_reservations_bound_costs(
        steps: list[tuple[int, float, bool]]) -> None:
    """Random interleavings of admissions and settlements: with each real cost at most its
    reservation, spend + reservations stay within the budget at every step."""
    limit = Limits("tenant:t", budget=Budget(2.5, "total"))
    local = counters()
    open_: list[tuple[Reservation, float]] = []
    for i, (cents, share, settle_first) in enumerate(steps):
        if settle_first and open_:
            reservation, actual = open_.pop(0)
            local.settle(reservation, 0, nanos(actual), T0)
        outcome = admit(local, [limit], usd=cents / 100, rid=str(i))
        if isinstance(outcome, Reservation):
            open_.append((outcome, cents / 100 * share))
        state = local.budgets[("tenant:t", "total:0")]
        assert state.spent + state.reserved <= 2.5 * NANOS_PER_USD
    for reservation, actual in open_:
        local.settle(reservation, 0, nanos(actual), T0)
    state = local.budgets[("tenant:t", "total:0")]
    assert state.reserved == 0 and state.spent <= 2.5 * NANOS_PER_USD
