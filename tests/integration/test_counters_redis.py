"""The Redis counters against a real Redis: the same decisions as the in-memory rules for the
same sequence, exact under concurrency, seeded from the ledger, failing closed."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from inferplane.errors import ServiceUnavailable
from inferplane.tenancy.admission import Demand, Limits, Refusal, Reservation, nanos
from inferplane.tenancy.budget import Budget
from inferplane.tenancy.counters import MemoryCounters, RedisCounters

pytestmark = pytest.mark.asyncio


def scope() -> str:
    return uuid.uuid4().hex[:12]


async def no_spend(_scope: str, _key: str) -> int:
    return 0


def verdict(outcome: Reservation | Refusal) -> str:
    return "ok" if isinstance(outcome, Reservation) else f"{outcome.scope}:{outcome.kind}"


async def test_redis_and_memory_decide_alike(redis_url: str) -> None:
    s = scope()
    limits = [Limits(f"key:{s}", rpm=12, tpm=3000),
              Limits(f"tenant:{s}", budget=Budget(0.05, "month"))]
    redis, memory = RedisCounters(redis_url, no_spend), MemoryCounters(no_spend)
    sequence = [(150, 0.004, 120), (900, 0.01, 300), (900, 0.01, 900), (400, 0.02, 10),
                (50, 0.001, 50)] * 6
    decisions: dict[str, list[str]] = {"redis": [], "memory": []}
    try:
        for name, counters in (("redis", redis), ("memory", memory)):
            for tokens, usd, used in sequence:
                outcome = await counters.admit(limits, Demand(tokens, nanos(usd)))
                decisions[name].append(verdict(outcome))
                if isinstance(outcome, Reservation):
                    await counters.settle(outcome, used, nanos(usd / 2))
    finally:
        await redis.close()
    assert decisions["redis"] == decisions["memory"]
    assert len(set(decisions["redis"])) >= 3, decisions  # ok and two kinds of refusal


async def test_concurrent_admissions_are_exact(redis_url: str) -> None:
    """Four connections' worth of admissions at once against a budget of exactly 37
    reservations and an RPM limit of 50: 37 admitted, the rest refused by the budget."""
    s = scope()
    limits = [Limits(f"key:{s}", rpm=50), Limits(f"tenant:{s}", budget=Budget(0.37, "day"))]
    clients = [RedisCounters(redis_url, no_spend) for _ in range(4)]
    try:
        outcomes = await asyncio.gather(*(
            clients[i % 4].admit(limits, Demand(10, nanos(0.01))) for i in range(200)))
    finally:
        for c in clients:
            await c.close()
    verdicts = [verdict(o) for o in outcomes]
    assert verdicts.count("ok") == 37
    assert set(verdicts) == {"ok", f"tenant:{s}:budget"}


async def test_a_new_period_is_seeded_from_the_ledger(redis_url: str) -> None:
    s = scope()
    asked: list[tuple[str, str]] = []

    async def spent(scope_: str, key: str) -> int:
        asked.append((scope_, key))
        return nanos(0.95)

    counters = RedisCounters(redis_url, spent)
    limits = [Limits(f"tenant:{s}", budget=Budget(1.0, "month"))]
    try:
        assert isinstance(await counters.admit(limits, Demand(1, nanos(0.04))), Reservation)
        refused = await counters.admit(limits, Demand(1, nanos(0.04)))
        assert isinstance(refused, Refusal) and refused.used == pytest.approx(0.99)
    finally:
        await counters.close()
    assert len(asked) == 1 and asked[0][1].startswith("month:")


async def test_redis_down_fails_closed() -> None:
    counters = RedisCounters("redis://127.0.0.1:1/0", no_spend)
    try:
        with pytest.raises(ServiceUnavailable) as info:
            await counters.admit([Limits("key:x", rpm=5)], Demand(1, 0))
        assert info.value.code == "limits_unavailable"
    finally:
        await counters.close()
