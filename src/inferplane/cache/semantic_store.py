"""Where one model's semantic entries live: kept questions' vectors (searched by scope), their
answers, and what verification observed about each (its own observations, and the model's
pool). :class:`MemorySemanticStore` keeps them in this process; ``semantic_redis.py`` shares
them between gateway processes.
"""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, NamedTuple, Protocol

from inferplane.cache.store import Stats, tenant_label
from inferplane.cache.threshold import Observation
from inferplane.cache.vector_index import ScopedIndex, Vector

OWN_MAX: Final = 64  # observations kept per entry (the latest)
POOL_MAX: Final = 512  # observations kept per model (the latest)


@dataclass(frozen=True, slots=True)
class Neighbour:
    """The nearest kept question of a scope: its key, similarity, answer (``entry.encode``d)
    and observations."""

    key: int
    similarity: float
    data: bytes
    own: list[Observation] = field(default_factory=list)
    pool: list[Observation] = field(default_factory=list)


class SemanticStore(Protocol):
    def start(self) -> None: ...  # begin following shared state, where there is any
    async def nearest(self, scope: str, vector: Vector, floor: float = -1.0
                      ) -> Neighbour | None: ...
    async def add(self, scope: str, tenant: str | None, vector: Vector, data: bytes) -> int: ...
    async def observe(self, key: int, similarity: float, right: bool) -> None: ...
    async def stats(self, tenant: str | None = None) -> Stats: ...
    async def purge(self, tenant: str | None = None) -> int: ...
    async def close(self) -> None: ...


class _Meta(NamedTuple):
    tenant: str  # its label (store.tenant_label)
    expires: float  # on the catalog's clock


class Catalog:
    """This process's index of a model's kept questions: vectors by scope, each with its tenant
    and expiry, oldest first out beyond ``max_entries``."""

    def __init__(self, max_entries: int, clock: Callable[[], float] = time.time) -> None:
        self.index = ScopedIndex()
        self.max_entries = max_entries
        self.clock = clock
        self.meta: OrderedDict[int, _Meta] = OrderedDict()

    def __len__(self) -> int:
        return len(self.meta)

    def put(self, key: int, scope: str, tenant: str | None, vector: Vector,
            expires: float) -> list[int]:
        """Index ``key``; the keys dropped to make room (expired first, then the oldest)."""
        dropped = self.sweep()
        self.index.add_now(scope, key, vector)
        self.meta[key] = _Meta(tenant_label(tenant), expires)
        self.meta.move_to_end(key)
        while len(self.meta) > self.max_entries:
            oldest = next(iter(self.meta))
            self.drop(oldest)
            dropped.append(oldest)
        return dropped

    def sweep(self) -> list[int]:
        """Drop the expired keys (kept in insertion order: with one time to live, expiry
        order) and say which."""
        now, dropped = self.clock(), []
        while self.meta:
            key, meta = next(iter(self.meta.items()))
            if meta.expires > now:
                break
            self.drop(key)
            dropped.append(key)
        return dropped

    def drop(self, key: int) -> None:
        self.meta.pop(key, None)
        self.index.remove_now(key)

    def nearest(self, scope: str, vector: Vector, floor: float = -1.0
                ) -> tuple[int, float] | None:
        """The nearest key in ``scope`` and its similarity; None when there is none at
        ``floor`` or above (nothing kept for it is then read)."""
        found = self.index.search_now(scope, vector, 1)
        return found[0] if found and found[0][1] >= floor else None

    def keys(self, tenant: str | None) -> list[int]:
        self.sweep()
        return [k for k, m in self.meta.items() if tenant is None or m.tenant == tenant]


class _Kept(NamedTuple):
    data: bytes
    own: deque[Observation]


class MemorySemanticStore:
    """One model's semantic entries in this gateway process."""

    def __init__(self, ttl_s: float, max_entries: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.ttl_s = ttl_s
        self.catalog = Catalog(max_entries, clock)
        self._kept: dict[int, _Kept] = {}
        self._pool: deque[Observation] = deque(maxlen=POOL_MAX)
        self._keys = itertools.count(1)

    def start(self) -> None:
        return None  # nothing shared to follow

    async def nearest(self, scope: str, vector: Vector, floor: float = -1.0
                      ) -> Neighbour | None:
        for key in self.catalog.sweep():
            self._kept.pop(key, None)
        found = self.catalog.nearest(scope, vector, floor)
        if found is None:
            return None
        kept = self._kept[found[0]]
        return Neighbour(found[0], found[1], kept.data, list(kept.own), list(self._pool))

    async def add(self, scope: str, tenant: str | None, vector: Vector, data: bytes) -> int:
        key = next(self._keys)
        self._kept[key] = _Kept(data, deque(maxlen=OWN_MAX))
        for dropped in self.catalog.put(key, scope, tenant, vector,
                                        self.catalog.clock() + self.ttl_s):
            self._kept.pop(dropped, None)
        return key

    async def observe(self, key: int, similarity: float, right: bool) -> None:
        self._pool.append((similarity, right))
        kept = self._kept.get(key)
        if kept is not None:
            kept.own.append((similarity, right))

    async def stats(self, tenant: str | None = None) -> Stats:
        keys = self.catalog.keys(tenant)
        return Stats(len(keys), sum(len(self._kept[k].data) for k in keys))

    async def purge(self, tenant: str | None = None) -> int:
        keys = self.catalog.keys(tenant)
        for key in keys:
            self.catalog.drop(key)
            self._kept.pop(key, None)
        return len(keys)

    async def close(self) -> None:
        self._kept.clear()
        self.catalog.index.clear()
        self.catalog.meta.clear()
