"""Where the admission counters live: this process's memory, or Redis when several gateway
processes must share them. Both follow the rules of ``admission.py``; in Redis each admission
and each settlement is one Lua script, so the check-then-charge of every scope is atomic
across processes, and the buckets use Redis's clock, so processes need no clock agreement.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inferplane.errors import ServiceUnavailable
from inferplane.tenancy.admission import (
    NANOS_PER_USD,
    Charge,
    Demand,
    Limits,
    LocalCounters,
    Refusal,
    Reservation,
    nanos,
)

log = logging.getLogger("inferplane.tenancy")
# (scope, budget key) -> nano-dollars the ledger says the period has spent so far
SpentSource = Callable[[str, str], Awaitable[int]]
REDIS_CONNECTIONS = 32  # per gateway process
REDIS_WAIT_S = 5.0  # longest a request waits for a free connection
HOLD_S = 3600.0  # a reservation whose request never settles (its process died) lapses after


class Counters(Protocol):
    async def admit(self, limits: Sequence[Limits], demand: Demand) -> Reservation | Refusal: ...
    async def settle(self, reservation: Reservation, tokens: int, cost_nanos: int) -> None: ...
    async def close(self) -> None: ...


class MemoryCounters:
    """One gateway process: the counters in memory (limits are per process)."""

    def __init__(self, spent: SpentSource, hold_s: float = HOLD_S) -> None:
        self._spent = spent
        self.local = LocalCounters(hold_s)

    async def admit(self, limits: Sequence[Limits], demand: Demand) -> Reservation | Refusal:
        for scope, key in self.local.unseeded(limits, time.time()):
            self.local.seed(scope, key, await self._spent(scope, key))
        return self.local.admit(limits, demand, uuid.uuid4().hex, time.monotonic(), time.time())

    async def settle(self, reservation: Reservation, tokens: int, cost_nanos: int) -> None:
        self.local.settle(reservation, tokens, cost_nanos, time.monotonic())

    async def close(self) -> None:
        return None


_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local n, tokens, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local member, hold = ARGV[4], tonumber(ARGV[5])
local function f(x) return string.format('%.17g', x) end
local function level(key, cap)
  local v = redis.call('HMGET', key, 'l', 't')
  if not v[1] then return cap end
  return math.min(cap, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * cap / 60)
end
local levels = {}
for i = 0, n - 1 do
  local k, a = i * 4, 6 + i * 4
  local rpm, tpm, budget = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  if rpm then
    local l = level(KEYS[k + 1], rpm)
    if l < 1 then return {0, i, 'rpm', f((1 - l) * 60 / rpm)} end
    levels[k + 1] = l
  end
  if tpm then
    local l, need = level(KEYS[k + 2], tpm), math.min(tokens, tpm)
    if l < need then return {0, i, 'tpm', f((need - l) * 60 / tpm)} end
    levels[k + 2] = l
  end
  if budget then
    if redis.call('EXISTS', KEYS[k + 3]) == 0 then return {2, i} end
    local lapsed = redis.call('ZRANGEBYSCORE', KEYS[k + 4], '-inf', now)
    if #lapsed > 0 then
      local sum = 0
      for _, m in ipairs(lapsed) do sum = sum + tonumber(string.match(m, ':(%d+)$')) end
      redis.call('HINCRBY', KEYS[k + 3], 'reserved', -sum)
      redis.call('ZREMRANGEBYSCORE', KEYS[k + 4], '-inf', now)
    end
    local v = redis.call('HMGET', KEYS[k + 3], 'spent', 'reserved')
    local used = tonumber(v[1] or '0') + tonumber(v[2] or '0')
    if used + cost > budget then return {0, i, 'budget', f(used)} end
  end
end
for i = 0, n - 1 do
  local k, a = i * 4, 6 + i * 4
  local rpm, tpm = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  if rpm then
    redis.call('HSET', KEYS[k + 1], 'l', f(levels[k + 1] - 1), 't', f(now))
    redis.call('EXPIRE', KEYS[k + 1], 61)
  end
  if tpm then
    local l = levels[k + 2] - tokens
    redis.call('HSET', KEYS[k + 2], 'l', f(l), 't', f(now))
    redis.call('EXPIRE', KEYS[k + 2], math.ceil((tpm - l) * 60 / tpm) + 61)
  end
  if tonumber(ARGV[a + 2]) then
    redis.call('HINCRBY', KEYS[k + 3], 'reserved', cost)
    redis.call('ZADD', KEYS[k + 4], f(now + hold), member)
    local ttl = tonumber(ARGV[a + 3])
    if ttl > 0 then
      redis.call('EXPIRE', KEYS[k + 3], ttl)
      redis.call('EXPIRE', KEYS[k + 4], ttl)
    end
  end
end
return {1}
"""

_SETTLE = """
local n, refund, cost, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
for i = 0, n - 1 do
  local k, a = i * 3, 5 + i * 2
  local tpm = tonumber(ARGV[a])
  if tpm then
    local v = redis.call('HMGET', KEYS[k + 1], 'l', 't')
    if v[1] then
      local l = math.min(tpm, tonumber(v[1]) + refund)
      redis.call('HSET', KEYS[k + 1], 'l', string.format('%.17g', l))
    end
  end
  if ARGV[a + 1] == '1' then
    if redis.call('ZREM', KEYS[k + 3], member) == 1 then
      redis.call('HINCRBY', KEYS[k + 2], 'reserved', -tonumber(string.match(member, ':(%d+)$')))
    end
    redis.call('HINCRBY', KEYS[k + 2], 'spent', cost)
  end
end
return 1
"""

_PERIOD_TTL_S = {"day": 2 * 86400, "week": 14 * 86400, "month": 62 * 86400, "total": 0}


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


class RedisCounters:
    """Counters shared by every gateway process through one Redis. Redis errors refuse the
    request (503): limits and budgets fail closed."""

    def __init__(self, url: str, spent: SpentSource, *, prefix: str = "inferplane",
                 hold_s: float = HOLD_S) -> None:
        # A burst waits for one of a few connections (each script takes microseconds) rather
        # than opening one per request.
        pool = aioredis.BlockingConnectionPool.from_url(url, max_connections=REDIS_CONNECTIONS,
                                                         timeout=REDIS_WAIT_S)
        self._redis: aioredis.Redis = aioredis.Redis(connection_pool=pool)
        self._spent = spent
        self._prefix = prefix
        self._hold_s = hold_s
        self._admit = self._redis.register_script(_ADMIT)
        self._settle = self._redis.register_script(_SETTLE)

    def _key(self, scope: str, what: str) -> str:
        return f"{self._prefix}:{scope}:{what}"

    async def admit(self, limits: Sequence[Limits], demand: Demand) -> Reservation | Refusal:
        rid = uuid.uuid4().hex
        member = f"{rid}:{demand.cost_nanos}"
        for _ in range(len(limits) + 1):  # at most one seeding per scope
            wall = time.time()
            keys: list[str] = []
            args: list[Any] = [len(limits), demand.tokens, demand.cost_nanos, member,
                               self._hold_s]
            for lim in limits:
                budget_key = lim.budget_key(wall) or "-"
                keys += [self._key(lim.scope, "rpm"), self._key(lim.scope, "tpm"),
                         self._key(lim.scope, f"budget:{budget_key}"),
                         self._key(lim.scope, f"holds:{budget_key}")]
                cap = None if lim.budget is None else nanos(lim.budget.usd)
                ttl = 0 if lim.budget is None else _PERIOD_TTL_S[lim.budget.period]
                args += [_opt(lim.rpm), _opt(lim.tpm), _opt(cap), ttl]
            reply = await self._call(self._admit, keys, args)
            if reply[0] == 1:
                return Reservation(rid, demand, tuple(
                    Charge(lim.scope, lim.tpm, lim.budget_key(wall)) for lim in limits))
            lim = limits[int(reply[1])]
            if reply[0] == 2:  # the budget period is new to Redis: seed it from the ledger
                key = lim.budget_key(wall)
                assert key is not None
                spent = await self._spent(lim.scope, key)
                await self._seed(self._key(lim.scope, f"budget:{key}"), spent, lim)
                continue
            kind, value = reply[2].decode(), float(reply[3])
            if kind == "budget":
                assert lim.budget is not None
                return Refusal(lim.scope, "budget", None, lim.budget.usd, value / NANOS_PER_USD)
            limit = lim.rpm if kind == "rpm" else lim.tpm
            return Refusal(lim.scope, kind, value, float(limit or 0))
        raise ServiceUnavailable("the budget counters could not be seeded; retry shortly")

    async def _seed(self, key: str, spent: int, lim: Limits) -> None:
        assert lim.budget is not None
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hsetnx(key, "spent", spent)
                pipe.hsetnx(key, "reserved", 0)
                if ttl := _PERIOD_TTL_S[lim.budget.period]:
                    pipe.expire(key, ttl)
                await pipe.execute()
        except RedisError as exc:
            raise _unavailable() from exc

    async def settle(self, reservation: Reservation, tokens: int, cost_nanos: int) -> None:
        member = f"{reservation.id}:{reservation.demand.cost_nanos}"
        keys: list[str] = []
        args: list[Any] = [len(reservation.charges), reservation.demand.tokens - tokens,
                           cost_nanos, member]
        for charge in reservation.charges:
            budget_key = charge.budget_key or "-"
            keys += [self._key(charge.scope, "tpm"),
                     self._key(charge.scope, f"budget:{budget_key}"),
                     self._key(charge.scope, f"holds:{budget_key}")]
            args += [_opt(charge.tpm), "1" if charge.budget_key is not None else "0"]
        await self._call(self._settle, keys, args)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        try:
            return await script(keys=keys, args=args)
        except RedisError as exc:
            log.warning("Redis refused a limits script: %s: %s", type(exc).__name__, exc)
            raise _unavailable() from exc

    async def close(self) -> None:
        await self._redis.aclose()


def _unavailable() -> ServiceUnavailable:
    error = ServiceUnavailable("The rate-limit and budget store (Redis) is unavailable; "
                               "requests are refused until it is back.")
    error.code = "limits_unavailable"
    return error
