"""The gateway's response cache: each cached model's settings and store, built from the
configuration, and the I/O around them (lookups that fail open, stores in the background,
stats and purges for the admin API and the CLI)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inferplane.cache.embedder import Caller, Embedder, LocalEmbedder, ModelEmbedder, OwnRequests
from inferplane.cache.entry import Entry, decode, encode
from inferplane.cache.failures import FailureLog
from inferplane.cache.judge import Judge
from inferplane.cache.key import EntryKey, Scope, entry_key, serving_of
from inferplane.cache.memory import MemoryStore
from inferplane.cache.model import ModelCache
from inferplane.cache.policy import NEITHER, decide, directives
from inferplane.cache.question import question
from inferplane.cache.redis_store import RedisStore
from inferplane.cache.semantic import Probe, SemanticCache
from inferplane.cache.semantic_redis import RedisSemanticStore
from inferplane.cache.semantic_store import MemorySemanticStore, SemanticStore
from inferplane.cache.store import CacheStore
from inferplane.cache.turn import CacheTurn
from inferplane.config import CacheConfig, Config
from inferplane.errors import NotFound
from inferplane.protocol.types import GenerationRequest

REDIS_CONNECTIONS = 16  # per gateway process
REDIS_TIMEOUT_S = 1.0  # a lookup slower than this is a miss


class ResponseCache:
    """Every cached model's :class:`ModelCache`, found by the model's name or any alias. A model
    without ``cache:`` is not here, and its requests pay one dictionary lookup."""

    def __init__(self, models: Mapping[str, ModelCache],
                 redis: aioredis.Redis | None = None, config: Config | None = None) -> None:
        self._by_name = dict(models)
        self._config = config
        self._redis = redis
        self._pending: set[asyncio.Task[None]] = set()
        self._failures = FailureLog("response cache")

    @classmethod
    def build(cls, config: Config, own: OwnRequests | None = None) -> ResponseCache:
        """The caches of ``config``'s models; ``own``: the gateway's own requests, which a
        semantic cache with ``embeddings: <model>`` or ``judge: <model>`` makes."""
        redis = None
        if config.redis.url is not None and any(
                m.cache is not None and m.cache.backend == "redis" for m in config.models):
            redis = aioredis.Redis.from_url(
                config.redis.url, max_connections=REDIS_CONNECTIONS,
                socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S)
        by_name: dict[str, ModelCache] = {}
        for m in config.models:
            if m.cache is None:
                continue
            s = m.cache
            store: CacheStore = (
                RedisStore(redis, m.name, s.ttl_s, s.max_entries) if redis is not None
                and s.backend == "redis" else MemoryStore(s.ttl_s, s.max_entries, s.max_bytes))
            model = ModelCache(m.name, s, serving_of(config, m.name), store,
                               semantic=_semantic(m.name, s, redis, own))
            by_name.update(dict.fromkeys([m.name, *m.aliases], model))
        return cls(by_name, redis, config)

    def follow(self, held_back: Collection[str], canaries: Collection[str] = ()) -> None:
        """Governance changed which deployments may serve (``held_back``: those that may not;
        ``canaries``: the models with a canary in progress): each model's entries are keyed by
        what serves it now, so an answer of a version that no longer serves is never replayed.
        While a model's canary runs, which version answers depends on who asks, so its requests
        bypass the cache (the registry's snapshot calls this)."""
        if self._config is None:
            return
        for model in self.models:
            model.serving = serving_of(self._config, model.name, held_back)
            model.paused = model.name in canaries

    def start(self) -> None:
        """Start what follows shared state in the background (a Redis semantic cache's
        index); nothing waits for it."""
        for m in self.models:
            if m.semantic is not None:
                m.semantic.store.start()

    @property
    def models(self) -> list[ModelCache]:
        return list({id(m): m for m in self._by_name.values()}.values())

    def turn(self, req: GenerationRequest, caller: Caller, headers: Mapping[str, str]
             ) -> CacheTurn | None:
        """How ``caller``'s ``req`` deals with the cache; None when its model has no cache."""
        model = self._by_name.get(req.model)
        if model is None:
            return None
        asked = directives(headers)
        decision = NEITHER if model.paused else decide(model.settings, req.params, asked)
        scope = Scope(caller.principal.tenant_name, model.name, req.model, model.serving)
        key = entry_key(scope, req)
        if model.semantic is None or not decision.read:
            return CacheTurn(self, model, key, decision)
        asks = question(scope, req, model.settings.semantic.max_question_chars)
        return CacheTurn(self, model, key, decision, asks, caller, asked.verify)

    async def get(self, model: ModelCache, key: EntryKey) -> Entry | None:
        """The entry kept under ``key``, or None (a failing store is a miss)."""
        try:
            data = await model.store.get(key)
        except (RedisError, OSError) as exc:
            self._failures.warn("lookup", exc)
            return None
        return None if data is None else decode(data, key.digest)

    def put_later(self, model: ModelCache, key: EntryKey, entry: Entry) -> None:
        """Keep ``entry`` under ``key``, off the request's path."""
        data = encode(entry)
        if len(data) > model.settings.max_entry_bytes:
            return
        task = asyncio.create_task(self._put(model, key, data))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def learn_later(self, model: ModelCache, probe: Probe, entry: Entry) -> None:
        """Verify and keep a semantic lookup's upstream answer, off the request's path."""
        if model.semantic is None or len(encode(entry)) > model.settings.max_entry_bytes:
            return
        task = asyncio.create_task(model.semantic.learn(probe, entry))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, model: ModelCache, key: EntryKey, data: bytes) -> None:
        try:
            await model.store.put(key, data)
        except (RedisError, OSError) as exc:
            self._failures.warn("store", exc)

    def _selected(self, model: str | None) -> list[ModelCache]:
        if model is None:
            return self.models
        found = self._by_name.get(model)
        if found is None:
            raise NotFound(f"The model '{model}' has no cache (or does not exist).",
                           param="model")
        return [found]

    async def stats(self, model: str | None = None, tenant: str | None = None
                    ) -> list[dict[str, Any]]:
        """Per cached model (or ``model`` alone): its backend, limits and what it holds for
        ``tenant`` (a label, ``-`` for no tenant; None: all)."""
        out = []
        for m in self._selected(model):
            held = await m.store.stats(tenant)
            s = m.settings
            row: dict[str, Any] = {
                "model": m.name, "backend": s.backend, "tenant": tenant,
                "entries": held.entries, "bytes": held.bytes, "ttl_s": s.ttl_s,
                "max_entries": s.max_entries,
                "max_bytes": s.max_bytes if s.backend == "memory" else None}
            if m.semantic is not None:
                semantic = await m.semantic.store.stats(tenant)
                row["semantic"] = {"entries": semantic.entries, "bytes": semantic.bytes,
                                   "max_false_hit_rate": s.semantic.max_false_hit_rate}
            out.append(row)
        return out

    async def purge(self, model: str | None = None, tenant: str | None = None) -> int:
        """Drop the entries of ``model`` (or every cached model) of ``tenant`` (or all)."""
        purged = 0
        for m in self._selected(model):
            purged += await m.store.purge(tenant)
            if m.semantic is not None:
                purged += await m.semantic.store.purge(tenant)
        return purged

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        for m in self.models:
            await m.store.close()
            if m.semantic is not None:
                await m.semantic.store.close()
        if self._redis is not None:
            await self._redis.aclose()


def _semantic(model: str, settings: CacheConfig, redis: aioredis.Redis | None,
              own: OwnRequests | None) -> SemanticCache | None:
    """The model's semantic cache, where it enables one: its embeddings (a model of the
    gateway's, or the shipped encoder, loaded once per process), its judge, and a store like
    the exact cache's backend."""
    s = settings.semantic
    if not s.enabled:
        return None
    if own is None and (s.embeddings is not None or s.judge is not None):
        raise ValueError("a semantic cache that asks models of the gateway needs its requests")
    embedder: Embedder
    if s.embeddings is not None and own is not None:
        embedder = ModelEmbedder(s.embeddings, own)
    else:
        from inferplane.embedding import shipped_encoder  # loaded only where a model needs it

        embedder = LocalEmbedder(shipped_encoder())
    store: SemanticStore = (
        RedisSemanticStore(redis, model, settings.ttl_s, settings.max_entries)
        if redis is not None and settings.backend == "redis"
        else MemorySemanticStore(settings.ttl_s, settings.max_entries))
    judge = None if s.judge is None or own is None else Judge(s.judge, own)
    return SemanticCache(s, store, embedder, judge=judge)
