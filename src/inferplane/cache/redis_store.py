"""One model's entries in Redis, shared by every gateway process.

Each entry is a string ``{prefix}:{model}:{tenant}:{digest}`` that Redis expires after the
model's ``ttl_s``; an index per model (a sorted set of ``{tenant}:{digest}`` by expiry time)
bounds the entries to ``max_entries`` (the soonest to expire go first) and lets ``stats`` and
``purge`` find a model's or a tenant's entries without scanning the database. One Lua script
stores an entry and trims the index, atomically. The model's name is percent-encoded in keys,
so no name can reach another model's keys or act as a pattern.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import quote

import redis.asyncio as aioredis

from inferplane.cache.key import EntryKey
from inferplane.cache.store import Stats, tenant_label

PREFIX = "inferplane:cache"
SCAN_COUNT = 1000

_PUT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl, max = tonumber(ARGV[2]), tonumber(ARGV[4])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + ttl, ARGV[3])
local over = redis.call('ZCARD', KEYS[2]) - max
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[5] .. old[i]) end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
"""


class RedisStore:
    def __init__(self, client: aioredis.Redis, model: str, ttl_s: float, max_entries: int,
                 prefix: str = PREFIX) -> None:
        self._redis = client
        self._base = f"{prefix}:{quote(model, safe='')}:"
        self._index = self._base + "index"
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self._max_entries = max_entries
        self._put = client.register_script(_PUT)

    @staticmethod
    def _member(key: EntryKey) -> str:
        return f"{tenant_label(key.tenant)}:{key.digest}"

    async def get(self, key: EntryKey) -> bytes | None:
        data = await self._redis.get(self._base + self._member(key))
        return None if data is None else bytes(data)  # type: ignore[arg-type]

    async def put(self, key: EntryKey, data: bytes) -> None:
        member = self._member(key)
        await self._put(keys=[self._base + member, self._index],
                        args=[data, self._ttl_ms, member, self._max_entries, self._base])

    async def _members(self, tenant: str | None) -> list[str]:
        """The index's live members (of ``tenant``, or all), expired ones dropped first."""
        now_s, now_us = await self._redis.time()
        await self._redis.zremrangebyscore(self._index, "-inf", now_s * 1000 + now_us // 1000)
        match = None if tenant is None else f"{tenant}:*"
        return [m.decode() async for m, _ in self._redis.zscan_iter(
            self._index, match=match, count=SCAN_COUNT)]

    async def stats(self, tenant: str | None = None) -> Stats:
        members = await self._members(tenant)
        sizes: Sequence[int] = []
        if members:
            async with self._redis.pipeline(transaction=False) as pipe:
                for member in members:
                    pipe.strlen(self._base + member)
                sizes = await pipe.execute()
        live = [n for n in sizes if n]
        return Stats(len(live), sum(live))

    async def purge(self, tenant: str | None = None) -> int:
        members = await self._members(tenant)
        removed = 0
        for start in range(0, len(members), SCAN_COUNT):
            batch = members[start:start + SCAN_COUNT]
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(*(self._base + m for m in batch))
                pipe.zrem(self._index, *batch)
                deleted, _ = await pipe.execute()
            removed += int(deleted)
        return removed

    async def close(self) -> None:
        return None  # the client belongs to the ResponseCache
