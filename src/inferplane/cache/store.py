"""The contract of a place that keeps one model's entries: bytes by key, with a time to live,
counted and purged by tenant. Backends: ``memory.py`` (this process) and ``redis_store.py``
(shared by every gateway process); a semantic index keyed by the same scopes fits beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from inferplane.cache.key import EntryKey

NO_TENANT = "-"  # the label of entries made without API keys (no tenant)


def tenant_label(tenant: str | None) -> str:
    """The tenant as it is written in keys and filters.

    >>> tenant_label(None), tenant_label("acme")
    ('-', 'acme')
    """
    return NO_TENANT if tenant is None else tenant


@dataclass(frozen=True, slots=True)
class Stats:
    """What a store holds (for one tenant, or all)."""

    entries: int
    bytes: int


class CacheStore(Protocol):
    """One model's entries. ``tenant`` filters (a label, :func:`tenant_label`): None is every
    tenant. Failures of a shared store are the caller's to absorb: a cache never fails a
    request."""

    async def get(self, key: EntryKey) -> bytes | None: ...
    async def put(self, key: EntryKey, data: bytes) -> None: ...
    async def stats(self, tenant: str | None = None) -> Stats: ...
    async def purge(self, tenant: str | None = None) -> int: ...
    async def close(self) -> None: ...
