"""One model's entries in this process: least recently used first out, bounded by entries and
by bytes, each entry served until its time to live runs out."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from inferplane.cache.key import EntryKey
from inferplane.cache.store import Stats, tenant_label


class _Kept(NamedTuple):
    data: bytes
    expires: float  # on the store's clock


class MemoryStore:
    def __init__(self, ttl_s: float, max_entries: int, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.clock = clock
        self.bytes = 0
        self.evictions = 0
        self._entries: OrderedDict[EntryKey, _Kept] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: EntryKey) -> bytes | None:
        kept = self._entries.get(key)
        if kept is None:
            return None
        if kept.expires <= self.clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return kept.data

    async def put(self, key: EntryKey, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        if key in self._entries:
            self._drop(key)
        self._entries[key] = _Kept(data, self.clock() + self.ttl_s)
        self.bytes += len(data)
        while len(self._entries) > self.max_entries or self.bytes > self.max_bytes:
            self._drop(next(iter(self._entries)))
            self.evictions += 1

    def _drop(self, key: EntryKey) -> None:
        self.bytes -= len(self._entries.pop(key).data)

    def _matching(self, tenant: str | None) -> list[EntryKey]:
        now = self.clock()
        for key in [k for k, kept in self._entries.items() if kept.expires <= now]:
            self._drop(key)
        return [k for k in self._entries if tenant is None or tenant_label(k.tenant) == tenant]

    async def stats(self, tenant: str | None = None) -> Stats:
        keys = self._matching(tenant)
        return Stats(len(keys), sum(len(self._entries[k].data) for k in keys))

    async def purge(self, tenant: str | None = None) -> int:
        keys = self._matching(tenant)
        for key in keys:
            self._drop(key)
        return len(keys)

    async def close(self) -> None:
        self._entries.clear()
        self.bytes = 0
