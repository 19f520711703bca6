"""The drift monitor: the request path hands each finished request to a bounded queue (dropped,
and counted, when full: a deque append, no lock, no wake-up; the idle worker looks again every
:data:`POLL_S`); a worker thread embeds the prompts in batches, keeps each model's (and busy
tenant's) windows, and re-tests a window every ``evaluate_every`` new samples. Texts live
only in the queue and the batch being embedded: never stored, logged or exported.

The windows live in this process's memory, read through the admin API (``GET /admin/v1/drift``)
and ``/metrics``: prompts' embeddings stay out of the store (they are derived from the texts),
and drift is a property of the traffic each process sees. With ``inferplane up --workers N``
each worker judges its own share of the traffic.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from inferplane.config.drift import DriftConfig
from inferplane.drift.features import EndedRequest, sample
from inferplane.drift.windows import Report, Windows
from inferplane.ledger.record import UsageRecord

if TYPE_CHECKING:
    from inferplane.embedding import TextEncoder

log = logging.getLogger("inferplane.drift")

#: The most prompt characters embedded (MiniLM reads 256 tokens at most anyway).
EMBED_CHARS = 1000
#: Ended requests embedded together.
BATCH = 32
#: How long the idle worker sleeps before looking at the queue again (seconds).
POLL_S = 0.02
#: Once the queue has been empty this long, windows with samples not yet tested are tested
#: (so a pause in traffic does not leave the last few out of the verdict; seconds).
CATCH_UP_S = 1.0
Key = tuple[str, str | None]  # (model, tenant); None: every tenant of the model


def _default_encoder() -> TextEncoder:
    from inferplane.embedding import shipped_encoder

    return shipped_encoder()


class DriftMonitor:
    """``canonical``: the model name a request's model (or alias) stands for; None: not one
    of ours (the request is not looked at)."""

    def __init__(self, config: DriftConfig, canonical: Callable[[str], str | None],
                 encoder: Callable[[], TextEncoder] | None = _default_encoder,
                 seed: int | None = None) -> None:
        self.config = config
        self._canonical = canonical
        self._make_encoder = encoder if config.embeddings else None
        self._queue: deque[EndedRequest] = deque()
        self._capacity = config.queue_size
        self._stopping = threading.Event()
        self._taken = 0  # requests the worker took off the queue
        self._judged = 0  # of those, the ones it is done with
        self._random = random.Random(seed)
        self._rng = np.random.default_rng(seed)
        self._lock = threading.Lock()  # the windows, against a reset from the admin API
        self._published = threading.Lock()  # the reports, which readers take while tests run
        self._windows: dict[Key, Windows] = {}
        self._reports: dict[Key, list[Report]] = {}
        self._thread: threading.Thread | None = None
        self.dropped = 0  # finished requests the full queue turned away
        self.processed = 0  # samples taken into the windows
        self.embedded = 0  # prompts embedded

    # -- the request path ---------------------------------------------------------------------

    def offer(self, record: UsageRecord, prompt: str, completion: str) -> None:
        """A request ended: queue what drift needs of it, unless the sample skips it or the
        queue is full. A few microseconds; never blocks."""
        rate = self.config.sample_rate
        if rate < 1.0 and self._random.random() >= rate:
            return
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            return
        self._queue.append(EndedRequest(record.model, record.tenant, record.prompt_tokens,
                                        record.completion_tokens, record.finish_reason,
                                        record.status, prompt, completion))

    # -- the worker ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._work, name="inferplane-drift", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after its batch (what is still queued is dropped: the process is
        stopping); a worker stuck longer than ``timeout`` is left, a daemon thread."""
        if self._thread is None:
            return
        self._stopping.set()
        self._thread.join(timeout)
        self._thread = None

    def _work(self) -> None:
        encoder = self._load_encoder()
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                self.take(batch, encoder)
            except Exception:
                log.exception("drift: a batch of %d requests could not be judged", len(batch))
            finally:
                self._judged += len(batch)

    def _load_encoder(self) -> TextEncoder | None:
        if self._make_encoder is None:
            return None
        try:
            return self._make_encoder()
        except Exception as exc:  # the package is missing or broken: judge without topics
            log.warning("drift: no text encoder (%s); the topic test is off", exc)
            return None

    def _next_batch(self) -> list[EndedRequest] | None:
        """Up to :data:`BATCH` queued requests, once there is one; None: stop. Waiting, it
        catches up once the queue has been empty for :data:`CATCH_UP_S`."""
        pending = self._queue
        idle_since: float | None = time.monotonic()
        while not pending:
            if self._stopping.wait(POLL_S):
                return None
            if idle_since is not None and time.monotonic() - idle_since >= CATCH_UP_S:
                self.catch_up()
                idle_since = None
        if self._stopping.is_set():
            return None
        size = min(len(pending), BATCH)
        self._taken += size  # before the queue looks empty: wait_idle reads both
        return [pending.popleft() for _ in range(size)]

    def catch_up(self) -> None:
        """Test every window that took samples since its last test."""
        with self._lock:
            for key in [k for k, w in self._windows.items() if w.since_evaluated]:
                self._evaluate(key)

    def take(self, batch: Iterable[EndedRequest], encoder: TextEncoder | None) -> None:
        """Turn finished requests into samples, add them to their windows, and re-test the
        windows that have seen ``evaluate_every`` new samples (the worker's step; public for
        the benchmark and tests, which drive it without the thread)."""
        mine = [(model, done) for done in batch
                if (model := self._canonical(done.model)) is not None]
        vectors: list[npt.NDArray[np.float32] | None] = [None] * len(mine)
        if encoder is not None and mine:
            encoded = encoder.encode([done.prompt[:EMBED_CHARS] for _, done in mine])
            vectors = list(encoded)
            self.embedded += len(mine)
        due: set[Key] = set()
        with self._lock:
            for (model, done), vector in zip(mine, vectors, strict=True):
                features = sample(done, vector)
                for key in self._keys(model, done.tenant):
                    windows = self._windows[key]
                    windows.add(features)
                    if windows.since_evaluated >= self.config.evaluate_every:
                        due.add(key)
                self.processed += 1
            for key in sorted(due, key=lambda k: (k[0], k[1] or "")):
                self._evaluate(key)

    def _keys(self, model: str, tenant: str | None) -> list[Key]:
        keys: list[Key] = [(model, None)]
        if tenant is not None:
            key = (model, tenant)
            if key not in self._windows:
                tracked = sum(1 for m, t in self._windows if m == model and t is not None)
                if tracked >= self.config.max_tenants:
                    return [self._open(keys[0])]
            keys.append(key)
        return [self._open(k) for k in keys]

    def _open(self, key: Key) -> Key:
        if key not in self._windows:
            self._windows[key] = Windows(self.config.reference_size, self.config.window_size)
        return key

    def _evaluate(self, key: Key) -> None:
        cfg = self.config
        windows = self._windows[key]
        if key[1] is not None and len(windows.reference) < cfg.min_samples:
            windows.since_evaluated = 0  # a tenant shows once it has traffic enough
            return
        rows = windows.evaluate(key[0], key[1], min_samples=cfg.min_samples, alpha=cfg.alpha,
                                permutations=cfg.permutations, rng=self._rng)
        with self._published:
            self._reports[key] = rows

    # -- what the admin API and the metrics read ------------------------------------------------

    def reports(self, model: str | None = None) -> list[Report]:
        """The latest verdicts, per model (every tenant) then per tenant, in feature order."""
        with self._published:
            items = sorted(self._reports.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
        return [row for (m, _t), rows in items if model is None or m == model for row in rows]

    def reset(self, model: str | None = None) -> int:
        """Make the current window of ``model`` (every model: None), and of its tenants, the
        reference; the number of windows reset."""
        with self._lock:
            keys = [k for k in self._windows if model is None or k[0] == model]
            for key in keys:
                self._windows[key].reset()
                with self._published:
                    self._reports.pop(key, None)
                self._evaluate(key)
        return len(keys)

    def wait_idle(self, timeout: float) -> bool:
        """Whether, within ``timeout`` seconds, the queue emptied and every window's latest
        samples were tested (tests)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and self._judged == self._taken:
                with self._lock:
                    if not any(w.since_evaluated for w in self._windows.values()):
                        return True
            time.sleep(0.01)
        return False
