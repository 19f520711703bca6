"""Continuous-batching bookkeeping for the embedded engine: no I/O, no llama.cpp.

Each engine step decodes one batch. The scheduler decides what goes in it: one token for every
sequence that is generating (decode first, so running streams keep a steady pace), then prompt
chunks of sequences still prefilling, within ``batch_tokens``. A sequence waiting for a slot is
admitted as soon as one frees, so new requests join while others decode.

Prefix reuse: a slot keeps its KV cache after its sequence ends, and the scheduler remembers
which tokens it holds. A new sequence goes to the free slot whose cached tokens share the
longest prefix with its prompt (at least ``MIN_REUSE`` tokens), and prefills only the rest: a
shared system prompt or a growing conversation is decoded once. Without a match it takes an
empty slot, else the one released longest ago, so the caches kept are the recently used ones.

Priority: a sequence is interactive (a client waits for it) or a batch line (the Batch API),
which takes only the capacity interactive ones leave. Waiting interactive sequences are admitted
before any waiting batch line; batch lines never hold the last free slot(s) (``reserved``, one
by default), so an interactive request arriving while a batch runs finds a slot at once; a step
that prefills an interactive prompt holds no batch work (its client waits for the first token);
a step's token budget goes to interactive sequences first (decode, then prefill) and to
batch lines with what is left; and a batch line's prompt is prefilled :data:`BATCH_CHUNK`
tokens a step, so no step of batch work is long: an interactive request arriving while one
runs waits for it to end before its own prompt is decoded.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_REUSE = 16  # a shorter shared prefix (a BOS and a turn marker) is not worth a slot choice
# Most prompt tokens of a batch line prefilled in one step. A prefill step's time grows with its
# tokens (gemma-3-270m, 2 CPU cores: about 4 ms a step plus 3.4 ms a prompt token, against
# 22 ms for a step decoding one token: docs/engines.md), and a chunk is a few ms longer in
# all than the same tokens in one step.
BATCH_CHUNK = 16


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
    energy_j: float = 0.0
    reused: int = 0  # prompt tokens found in the slot's cache, not prefilled again
    submitted_at: float = 0.0  # when it joined the queue (the worker's clock)
    queue_seconds: float | None = None  # from submitted until its first step, once known
    history: list[int] = field(default_factory=list)  # the tokens the slot's KV cache holds
    batch: bool = False  # a batch line: scheduled after interactive sequences

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


Trim = Callable[[int, int], bool]


def _keep_everything(_slot: int, _keep: int) -> bool:
    return True


class Scheduler:
    """``trim(slot, keep)`` cuts a slot's KV cache back to its first ``keep`` positions (0:
    empty it) before a new sequence uses the slot, and says whether it could."""

    def __init__(self, n_slots: int, batch_tokens: int, trim: Trim = _keep_everything,
                 reserved: int = 1) -> None:
        """``reserved``: slots batch lines leave free for interactive sequences (at most
        ``n_slots - 1``: a batch line can always run when no one else does)."""
        if n_slots < 1 or batch_tokens < 1 or reserved < 0:
            raise ValueError("n_slots and batch_tokens must be positive, reserved >= 0")
        self.batch_tokens = batch_tokens
        self.batch_slots = n_slots - min(reserved, n_slots - 1)  # most slots batch lines hold
        self._free = set(range(n_slots))
        self._cached: dict[int, list[int]] = {}  # free slot -> the tokens its KV cache holds
        self._released: dict[int, int] = {}  # free slot -> when it was released (a counter)
        self._clock = 0
        self._waiting: deque[Sequence] = deque()
        self.running: dict[str, Sequence] = {}
        self._trim = trim
        self.prefix_queries = 0  # prompt tokens of every admitted sequence (vLLM's meaning)
        self.prefix_hits = 0  # of those, the tokens found in a slot's cache

    def __len__(self) -> int:
        return len(self._waiting) + len(self.running)

    @property
    def waiting(self) -> int:
        """Sequences waiting for a slot."""
        return len(self._waiting)

    def kv_tokens(self) -> int:
        """Positions of the KV cache the running sequences hold (a free slot's cached prefix
        is reusable, not in use: vLLM counts its cached free blocks the same way)."""
        return sum(len(seq.history) for seq in self.running.values())

    def submit(self, seq: Sequence) -> None:
        self._waiting.append(seq)

    def _next_waiting(self) -> Sequence | None:
        """The waiting sequence to admit now: the first interactive one, else the first batch
        line while batch lines hold fewer than ``batch_slots`` slots."""
        for seq in self._waiting:
            if not seq.batch:
                return seq
        running_batch = sum(1 for s in self.running.values() if s.batch)
        if running_batch >= self.batch_slots:
            return None
        return next(iter(self._waiting), None)

    def remove(self, seq_id: str) -> Sequence | None:
        """Drop a sequence (finished or cancelled) and free its slot; None if unknown."""
        seq = self.running.pop(seq_id, None)
        if seq is not None:
            self._free.add(seq.slot)
            self._cached[seq.slot] = seq.history
            self._clock += 1
            self._released[seq.slot] = self._clock
            return seq
        for waiting in self._waiting:
            if waiting.id == seq_id:
                self._waiting.remove(waiting)
                return waiting
        return None

    def plan(self) -> list[Work]:
        """The next step's batch; admits waiting sequences into free slots first."""
        while self._free and (seq := self._next_waiting()) is not None:
            self._waiting.remove(seq)
            seq.slot, reuse = self._best_slot(seq.prompt)
            self._free.remove(seq.slot)
            cached = self._cached.pop(seq.slot, None)
            if cached and not self._trim(seq.slot, reuse):
                self._trim(seq.slot, 0)  # cannot keep part of it: start the slot empty
                reuse = 0
            seq.history = cached[:reuse] if cached else []
            seq.n_fed = seq.reused = reuse
            self.prefix_queries += len(seq.prompt)
            self.prefix_hits += reuse
            self.running[seq.id] = seq
        budget = self.batch_tokens
        # the budget goes to interactive decode, interactive prefill, then the same for batch
        # lines; without batch lines this is: every decode first, then prefill chunks
        decode: set[str] = set()
        chunks: list[tuple[Sequence, list[int]]] = []
        # an interactive prompt being prefilled (a client waiting for its first token) has
        # the step to itself: batch lines skip it, so they cost its TTFT nothing but the step
        # already running when it arrived
        prefilling = any(s.prefilling and not s.batch for s in self.running.values())
        for batch in (False, True) if not prefilling else (False,):
            group = [seq for seq in self.running.values() if seq.batch == batch]
            for seq in sorted(group, key=lambda s: s.slot):
                if not seq.prefilling and seq.next_token is not None and budget > 0:
                    decode.add(seq.id)
                    budget -= 1
            for seq in group:
                if seq.prefilling and budget > 0:
                    room = min(budget, BATCH_CHUNK) if batch else budget
                    chunk = seq.prompt[seq.n_fed : seq.n_fed + room]
                    chunks.append((seq, chunk))
                    budget -= len(chunk)
        # llama.cpp (one KV stream per sequence) decodes a step's tokens in one pass only when
        # their slots are consecutive and increasing; out of order, each becomes its own pass.
        work: list[Work] = []
        for seq in sorted(self.running.values(), key=lambda s: s.slot):
            if seq.id in decode:
                assert seq.next_token is not None
                work.append(Work(seq, [seq.next_token], seq.n_fed, True))
        for seq, chunk in chunks:
            work.append(Work(seq, chunk, seq.n_fed, seq.n_fed + len(chunk) == len(seq.prompt)))
        return work

    def forget_caches(self) -> list[int]:
        """Stop trusting what free slots hold; returns those slots, for the caller to empty."""
        slots = sorted(self._cached)
        self._cached.clear()
        return slots

    def _best_slot(self, prompt: list[int]) -> tuple[int, int]:
        """The free slot to use and how many prompt tokens its cache already holds. At least
        the prompt's last token is always decoded again, for its logits."""
        empty = [slot for slot in self._free if not self._cached.get(slot)]
        best = min(empty) if empty else min(self._free, key=lambda s: self._released.get(s, 0))
        reuse = 0
        for slot in sorted(self._free):
            common = min(_common_prefix(self._cached.get(slot, ()), prompt), len(prompt) - 1)
            if common >= MIN_REUSE and common > reuse:
                best, reuse = slot, common
        return best, reuse

    @staticmethod
    def advance(item: Work) -> None:
        """Record that ``item`` was decoded: its tokens are now in the KV cache."""
        item.seq.history += item.tokens
        item.seq.n_fed += len(item.tokens)
        if not item.seq.prefilling:
            item.seq.next_token = None


def _common_prefix(a: list[int] | tuple[()], b: list[int]) -> int:
    """>>> _common_prefix([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
