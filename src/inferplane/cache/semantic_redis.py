"""One model's semantic entries shared by every gateway process through Redis.

Redis holds the truth: each answer under ``…:e:<key>`` and its observations under ``…:o:<key>``
(both expiring after the time to live), the model's pool of observations, a counter handing
out keys, and a stream (``…:log``) of every vector added and every purge. Each process keeps
its own in-process index (:class:`semantic_store.Catalog`), loaded from the stream when it
starts and following it after: a question kept by one process is found by the others as soon
as they read the stream (a blocking read, so within milliseconds). A process loads the stream
in the background from its start on; until it has, its lookups see fewer kept questions (a
miss, never an error). A lookup searches the local index, then reads the neighbour's answer
and observations in one round trip; an answer gone from Redis (expired, purged) drops its
vector locally.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final
from urllib.parse import quote

import numpy as np
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inferplane.cache.semantic_store import OWN_MAX, POOL_MAX, Catalog, Neighbour
from inferplane.cache.store import Stats, tenant_label
from inferplane.cache.threshold import Observation
from inferplane.cache.vector_index import Vector

PREFIX: Final = "inferplane:semantic"
BLOCK_MS: Final = 500  # under the client's 1 s socket timeout
BATCH: Final = 200  # stream entries applied at a time
log = logging.getLogger("inferplane.cache")


def _observations(raw: list[Any]) -> list[Observation]:
    out = []
    for item in raw:
        s, right = bytes(item).decode().split(",")
        out.append((float(s), right == "1"))
    return out


class RedisSemanticStore:
    def __init__(self, client: aioredis.Redis, model: str, ttl_s: float, max_entries: int,
                 prefix: str = PREFIX) -> None:
        self._redis = client
        self._base = f"{prefix}:{quote(model, safe='')}:"
        self._ttl_ms = max(1, round(ttl_s * 1000))
        self.catalog = Catalog(max_entries)
        self._last = "0-0"  # the stream position this process has applied
        self._follower: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Follow the stream in the background (again after a failure): the index loads from
        it, and lookups meanwhile search what has loaded so far."""
        if self._follower is None or self._follower.done():
            self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            try:
                got: Any = await self._redis.xread({self._base + "log": self._last},
                                                   count=BATCH, block=BLOCK_MS)
                for _, events in got or []:
                    for event_id, fields in events:
                        self._apply(fields)
                        self._last = event_id.decode()
                await asyncio.sleep(0)  # a long log loads in batches, between requests
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("semantic cache: reading the shared index failed: %s", exc)
                await asyncio.sleep(1.0)

    def _apply(self, fields: dict[bytes, bytes]) -> None:
        if b"purge" in fields:
            tenant = fields[b"purge"].decode()
            for key in self.catalog.keys(None if tenant == "*" else tenant):
                self.catalog.drop(key)
            return
        expires = int(fields[b"x"]) / 1000
        if expires <= time.time():
            return
        key = int(fields[b"k"])
        if key in self.catalog.index:  # this process's own add, read back
            return
        vector = np.frombuffer(fields[b"v"], dtype=np.float32)
        tenant = fields[b"t"].decode()
        self.catalog.put(key, fields[b"s"].decode(), tenant, vector, expires)

    async def nearest(self, scope: str, vector: Vector, floor: float = -1.0
                      ) -> Neighbour | None:
        self.start()
        self.catalog.sweep()
        while (found := self.catalog.nearest(scope, vector, floor)) is not None:
            key, similarity = found
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.get(f"{self._base}e:{key}")
                pipe.lrange(f"{self._base}o:{key}", 0, -1)
                pipe.lrange(self._base + "pool", 0, -1)
                data, own, pool = await pipe.execute()
            if data is not None:
                return Neighbour(key, similarity, bytes(data), _observations(own),
                                 _observations(pool))
            self.catalog.drop(key)  # expired or purged: look again without it
        return None

    async def add(self, scope: str, tenant: str | None, vector: Vector, data: bytes) -> int:
        self.start()
        key = int(await self._redis.incr(self._base + "next"))
        expires_ms = int(time.time() * 1000) + self._ttl_ms
        vec = np.asarray(vector, dtype=np.float32).tobytes()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(f"{self._base}e:{key}", data, px=self._ttl_ms)
            pipe.xadd(self._base + "log", {"k": key, "s": scope, "t": tenant_label(tenant),
                                           "v": vec, "x": expires_ms},
                      maxlen=self.catalog.max_entries, approximate=True)
            pipe.pexpire(self._base + "log", self._ttl_ms)
            await pipe.execute()
        self.catalog.put(key, scope, tenant, np.frombuffer(vec, dtype=np.float32),
                         expires_ms / 1000)
        return key

    async def observe(self, key: int, similarity: float, right: bool) -> None:
        value = f"{similarity:.4f},{int(right)}"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.rpush(f"{self._base}o:{key}", value)
            pipe.ltrim(f"{self._base}o:{key}", -OWN_MAX, -1)
            pipe.pexpire(f"{self._base}o:{key}", self._ttl_ms)
            pipe.rpush(self._base + "pool", value)
            pipe.ltrim(self._base + "pool", -POOL_MAX, -1)
            await pipe.execute()

    async def stats(self, tenant: str | None = None) -> Stats:
        self.start()
        keys = self.catalog.keys(tenant)
        if not keys:
            return Stats(0, 0)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.strlen(f"{self._base}e:{key}")
            sizes = [int(n) for n in await pipe.execute()]
        live = [n for n in sizes if n]
        return Stats(len(live), sum(live))

    async def purge(self, tenant: str | None = None) -> int:
        self.start()
        keys = self.catalog.keys(tenant)
        removed = 0
        if keys:
            removed = int(await self._redis.delete(*(f"{self._base}e:{k}" for k in keys)))
            await self._redis.delete(*(f"{self._base}o:{k}" for k in keys))
        await self._redis.xadd(self._base + "log", {"purge": tenant or "*"})
        for key in keys:
            self.catalog.drop(key)
        return removed

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                await self._follower
