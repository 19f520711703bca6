"""One model's semantic cache: the I/O around the learned threshold (``threshold.py``).

A lookup embeds the request's question (``question.py``) off the event loop, finds the nearest
kept question of its scope, and lets :func:`threshold.decide` serve the kept answer or
*explore*. An explored request goes upstream like a miss; once its answer came back whole, the
answer is compared with the kept one (``answer_check.py``) in the background and the result
becomes an observation of the kept question (and of the model's pool). A kept answer found
wrong keeps the new question as an entry of its own; a question with no neighbour is kept too.
A failing shared store is a miss, never an error.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from redis.exceptions import RedisError

from inferplane.cache.answer_check import COMPARERS, Answers, Means
from inferplane.cache.embedder import Caller, Embedder
from inferplane.cache.entry import Entry, decode, encode
from inferplane.cache.failures import FailureLog
from inferplane.cache.judge import Judge
from inferplane.cache.question import Question
from inferplane.cache.semantic_store import Neighbour, SemanticStore
from inferplane.cache.threshold import decide
from inferplane.cache.vector_index import Vector
from inferplane.config import SemanticCacheConfig
from inferplane.errors import InferplaneError

DIGEST = "semantic"  # the digest every semantic entry carries (its scope is its partition)


@dataclass(slots=True)
class Probe:
    """One request's semantic lookup: its question and vector, the nearest kept question (if
    any), and the kept answer when it is served."""

    question: Question
    caller: Caller | None
    vector: Vector
    neighbour: Neighbour | None = None
    kept: Entry | None = None  # the neighbour's answer, decoded
    hit: Entry | None = None


class SemanticCache:
    def __init__(self, settings: SemanticCacheConfig, store: SemanticStore,
                 embedder: Embedder, draw: Callable[[], float] = random.random,
                 judge: Judge | None = None) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.draw = draw
        self.means = Means(embedder, settings.answer_similarity, judge)
        self._failures = FailureLog("semantic cache")

    async def lookup(self, question: Question, caller: Caller | None, verify: bool = False
                     ) -> Probe | None:
        """The probe of ``question``: with ``hit`` set when the kept answer is served. None
        when the embeddings or the store failed (a miss that keeps nothing). ``verify``:
        explore whatever the threshold says (the client asked for it)."""
        try:
            vector = (await self.embedder.embed([question.text], caller))[0]
            probe = Probe(question, caller, vector)
            neighbour = await self.store.nearest(question.scope, vector,
                                                 self.settings.min_similarity)
        except (InferplaneError, RedisError, OSError) as exc:
            self._failures.warn("lookup", exc)
            return None
        if neighbour is None:
            return probe
        entry = decode(neighbour.data, DIGEST)
        if entry is None:
            return probe
        probe.neighbour, probe.kept = neighbour, entry
        s = self.settings
        if not verify and decide(neighbour.similarity, neighbour.own, neighbour.pool,
                                 s.max_false_hit_rate, s.verify_rate, self.draw()) == "hit":
            probe.hit = entry
        return probe

    async def learn(self, probe: Probe, entry: Entry) -> None:
        """``probe`` went upstream and got ``entry``: judge the kept answer against it, and
        keep the question unless the kept answer was right."""
        try:
            right: bool | None = False
            if probe.neighbour is not None and probe.kept is not None:
                compare = COMPARERS[self.settings.compare]
                right = await compare(Answers(probe.question.text, probe.kept.text, entry.text,
                                              probe.caller), self.means)
                if right is not None:
                    await self.store.observe(probe.neighbour.key, probe.neighbour.similarity,
                                             right)
            if not right:
                tenant = None if probe.caller is None else probe.caller.principal.tenant_name
                await self.store.add(probe.question.scope, tenant, probe.vector,
                                     encode(replace(entry, digest=DIGEST)))
        except (InferplaneError, RedisError, OSError) as exc:
            self._failures.warn("store", exc)
