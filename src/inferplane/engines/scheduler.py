"""Continuous-batching bookkeeping for the embedded engine: no I/O, no llama.cpp.

Each engine step decodes one batch. The scheduler decides what goes in it: one token for every
sequence that is generating (decode first, so running streams keep a steady pace), then prompt
chunks of sequences still prefilling, within ``batch_tokens``. A sequence waiting for a slot is
admitted as soon as one frees, so new requests join while others decode.
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass


@dataclass(slots=True)
class Sequence:
    """One request's state inside the engine."""

    id: str
    prompt: list[int]
    max_new_tokens: int
    slot: int = -1
    n_fed: int = 0
    next_token: int | None = None
    generated: int = 0
    engine_seconds: float = 0.0

    @property
    def prefilling(self) -> bool:
        return self.n_fed < len(self.prompt)


@dataclass(frozen=True, slots=True)
class Work:
    """A run of tokens of one sequence in the step's batch, at positions ``pos``, ``pos+1``..."""

    seq: Sequence
    tokens: list[int]
    pos: int
    wants_logits: bool


class Scheduler:
    def __init__(self, n_slots: int, batch_tokens: int) -> None:
        if n_slots < 1 or batch_tokens < 1:
            raise ValueError("n_slots and batch_tokens must be positive")
        self.batch_tokens = batch_tokens
        self._free = list(range(n_slots))  # a min-heap: the lowest free slot is taken first
        self._waiting: deque[Sequence] = deque()
        self.running: dict[str, Sequence] = {}

    def __len__(self) -> int:
        return len(self._waiting) + len(self.running)

    def submit(self, seq: Sequence) -> None:
        self._waiting.append(seq)

    def remove(self, seq_id: str) -> Sequence | None:
        """Drop a sequence (finished or cancelled) and free its slot; None if unknown."""
        seq = self.running.pop(seq_id, None)
        if seq is not None:
            heapq.heappush(self._free, seq.slot)
            return seq
        for waiting in self._waiting:
            if waiting.id == seq_id:
                self._waiting.remove(waiting)
                return waiting
        return None

    def plan(self) -> list[Work]:
        """The next step's batch; admits waiting sequences into free slots first."""
        while self._waiting and self._free:
            seq = self._waiting.popleft()
            seq.slot = heapq.heappop(self._free)
            self.running[seq.id] = seq
        budget = self.batch_tokens
        work: list[Work] = []
        # llama.cpp (one KV stream per sequence) decodes a step's tokens in one pass only when
        # their slots are consecutive and increasing; out of order, each becomes its own pass.
        for seq in sorted(self.running.values(), key=lambda s: s.slot):
            if not seq.prefilling and seq.next_token is not None and budget > 0:
                work.append(Work(seq, [seq.next_token], seq.n_fed, True))
                budget -= 1
        for seq in self.running.values():
            if seq.prefilling and budget > 0:
                chunk = seq.prompt[seq.n_fed : seq.n_fed + budget]
                done = seq.n_fed + len(chunk) == len(seq.prompt)
                work.append(Work(seq, chunk, seq.n_fed, done))
                budget -= len(chunk)
        return work

    @staticmethod
    def advance(item: Work) -> None:
        """Record that ``item`` was decoded: its tokens are now in the KV cache."""
        item.seq.n_fed += len(item.tokens)
        if not item.seq.prefilling:
            item.seq.next_token = None
