"""One request's dealings with its model's cache: the lookup before routing (exact, then by
meaning where the model has a semantic cache), the recording of the answer on its way to the
client, and the store once the request ended well (and, for a semantic lookup that went
upstream, the verification of the kept answer against the new one)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from typing import Protocol

from inferplane.cache.embedder import Caller
from inferplane.cache.entry import Entry, Saved
from inferplane.cache.key import EntryKey
from inferplane.cache.model import ModelCache
from inferplane.cache.policy import BYPASS, HIT, MISS, SEMANTIC_HIT, Decision, Outcome, storable
from inferplane.cache.question import Question
from inferplane.cache.recorder import Recorder
from inferplane.cache.semantic import Probe
from inferplane.ledger.record import UsageRecord
from inferplane.protocol.types import GenerationRequest, StreamEvent


class Keeper(Protocol):
    """Where a turn reads and keeps its model's entries (``service.ResponseCache``)."""

    async def get(self, model: ModelCache, key: EntryKey) -> Entry | None: ...
    def put_later(self, model: ModelCache, key: EntryKey, entry: Entry) -> None: ...
    def learn_later(self, model: ModelCache, probe: Probe, entry: Entry) -> None: ...


class CacheTurn:
    def __init__(self, cache: Keeper, model: ModelCache, key: EntryKey,
                 decision: Decision, question: Question | None = None,
                 caller: Caller | None = None, verify: bool = False) -> None:
        """``question``: what the semantic cache matches (None: no semantic lookup);
        ``caller``: the request, for the semantic cache's own requests; ``verify``: a would-be
        semantic hit goes upstream and is checked."""
        self.cache = cache
        self.model = model
        self.key = key
        self.decision = decision
        self.question = question
        self.caller = caller
        self.verify = verify
        self.outcome: Outcome = BYPASS
        self.probe: Probe | None = None
        self._recorder: Recorder | None = None

    async def lookup(self) -> Entry | None:
        """The kept answer, when the request may read one and there is one: an identical
        request's, else (semantic cache) a paraphrase's that the learned threshold lets answer."""
        if not self.decision.read:
            return None
        self.outcome = MISS
        if self.model.settings.exact:
            entry = await self.cache.get(self.model, self.key)
            if entry is not None:
                self.outcome = HIT
                return entry
        semantic = self.model.semantic
        if semantic is None or self.question is None:
            return None
        self.probe = await semantic.lookup(self.question, self.caller, self.verify)
        if self.probe is None or self.probe.hit is None:
            return None
        self.outcome = SEMANTIC_HIT
        return self.probe.hit

    def upstream(self, req: GenerationRequest) -> GenerationRequest:
        """``req`` as sent upstream: when its answer may be kept, translated rather than relayed
        (the cache keeps the answer's text, not one protocol's frames)."""
        return replace(req, wire=None) if self.decision.store and req.wire else req

    def watch(self, events: AsyncGenerator[StreamEvent, None]
              ) -> AsyncGenerator[StreamEvent, None]:
        """An attempt's events, recorded when the answer may be kept (a new attempt starts a
        new recording)."""
        if not self.decision.store:
            return events
        self._recorder = Recorder()
        return self._recorder.watch(events)

    def store(self, record: UsageRecord) -> None:
        """The request ended with ``record``: keep its answer if it may be kept."""
        recorder, self._recorder = self._recorder, None
        if recorder is None or self.outcome in (HIT, SEMANTIC_HIT):
            return
        finished = recorder.finished
        if finished is None or not storable(record.status, finished.finish_reason,
                                            recorder.opaque):
            return
        saved = Saved(record.cost_usd, record.energy_j, record.co2_g)
        entry = Entry(self.key.digest, recorder.text, finished.finish_reason, finished.usage,
                      saved, record.ts, finished.stop_sequence, record.deployment)
        if self.model.settings.exact:
            self.cache.put_later(self.model, self.key, entry)
        if self.probe is not None:
            self.cache.learn_later(self.model, self.probe, entry)
