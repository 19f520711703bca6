"""One model's cache as the gateway holds it: its settings, what serves the model now (part of
every key), its store, and its semantic cache where it has one."""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.cache.semantic import SemanticCache
from inferplane.cache.store import CacheStore
from inferplane.config import CacheConfig


@dataclass(slots=True)
class ModelCache:
    """One model's cache: its settings, what serves it now (part of every key, recomputed when
    governance changes what may serve: :meth:`ResponseCache.follow`), its store."""

    name: str
    settings: CacheConfig
    serving: str
    store: CacheStore
    paused: bool = False  # a canary runs: requests bypass the cache
    semantic: SemanticCache | None = None  # paraphrases too, where the model enables it
