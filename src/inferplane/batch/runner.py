"""The batch runner: a long-lived part of every gateway process (``gateway.py`` starts and
stops it) that moves batches through their lifecycle and runs their lines at low priority.

Each pass it looks at the active batches in the store and does what ``lifecycle.next_step``
says. Running lines: it claims as many as it has room for (``batch.max_in_flight`` per
process), and starts each once the line's model has room for batch work (``lifecycle.room``:
the deployments' ``batch.max_concurrency``, less the interactive requests in flight on hosted
upstreams; the embedded engine is told the line's priority and schedules interactive
sequences first). A line runs through its endpoint's handler (``endpoints.ENDPOINTS``), i.e.
the normal ``Generation`` path, under a request id derived from the batch and the line: run
again after a crash, it still leaves one ledger record, which the store keeps once by its id.
Claims are leases, renewed every third of ``batch.lease_s``: a process killed mid-batch leaves
its lines to whichever process claims them once the lease ran out; one stopped gracefully
gives them back at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from inferplane.batch.endpoints import ENDPOINTS, LineContext
from inferplane.batch.lifecycle import Share, Status, Step, next_step, room
from inferplane.batch.results import (
    CANCELLED,
    EXPIRED,
    answered,
    error_body,
    request_id,
    unrun,
)
from inferplane.batch.store import BatchStore, Claimed
from inferplane.config import ENGINE_PROVIDERS, DeploymentConfig
from inferplane.errors import AuthenticationFailed, InferplaneError
from inferplane.tenancy.records import OPEN, Principal

if TYPE_CHECKING:
    from inferplane.gateway import Gateway

log = logging.getLogger("inferplane.batch")

HOSTED_MAX_CONCURRENCY = 4  # a hosted deployment's batch share when its config names none
# The embedded engine's: one line at a time. On the CPU a step's time grows with each sequence
# in it almost as much as with the first (docs/engines.md), and an interactive request that
# arrives waits for the step in flight: more lines at once would buy the batch little
# throughput and cost interactive requests their first token.
EMBEDDED_MAX_CONCURRENCY = 1
ROOM_POLL_S = 0.02  # how often the line first in line for a model's room looks again
GATE_WAIT_S = 0.5  # how often the lines behind it look whether their batch closed


def default_share(d: DeploymentConfig) -> int:
    """The batch lines one process runs on ``d`` at once when its config names no number."""
    if d.provider == "llamacpp":
        return EMBEDDED_MAX_CONCURRENCY
    if d.provider in ENGINE_PROVIDERS and d.engine is not None:
        return d.engine.parallel  # an engine server's own scheduler batches them
    return HOSTED_MAX_CONCURRENCY


class BatchRunner:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.config = gateway.config.batch
        self._store: BatchStore | None = None
        self._loop: asyncio.Task[None] | None = None
        self._leases: asyncio.Task[None] | None = None
        self._lines: dict[tuple[str, int], asyncio.Task[None]] = {}
        self._claims: Counter[str] = Counter()  # claim token -> lines of it still running
        self._running: Counter[str] = Counter()  # model -> this process's lines running on it
        self._gates: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)  # model -> queue
        self._wake = asyncio.Event()
        # batches whose lines must not start any more (cancelled, out of window): why
        self._closing: dict[str, str] = {}
        self._steps: dict[Step, Callable[[dict[str, Any]], Awaitable[None]]] = {
            Step.START: self._start_batch, Step.RUN: self._run, Step.EXPIRE: self._expire,
            Step.CANCEL: self._cancel, Step.FINALIZE: self._finalize, Step.WAIT: self._wait,
        }

    @property
    def store(self) -> BatchStore:
        if self._store is None:
            self._store = BatchStore(self.gateway.db)
        return self._store

    def start(self) -> None:
        self._loop = asyncio.create_task(self._forever(), name="inferplane-batch-runner")
        self._leases = asyncio.create_task(self._renew_forever(), name="inferplane-batch-leases")

    def wake(self) -> None:
        """Look for work now (a batch was created or cancelled)."""
        self._wake.set()

    async def stop(self) -> None:
        """Stop taking lines, stop the running ones and give their lines back."""
        for task in (self._loop, self._leases, *self._lines.values()):
            if task is not None:
                task.cancel()
        tasks = [t for t in (self._loop, self._leases, *self._lines.values()) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._store is not None:
            try:
                await asyncio.to_thread(self._store.release, list(self._claims))
            except Exception:
                log.exception("giving back the batch lines this process held failed")
            self._store.close()

    async def _forever(self) -> None:
        while True:
            try:
                await self._pass()
            except Exception:
                log.exception("a batch runner pass failed; the next is in %.1fs",
                              self.config.poll_interval_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_interval_s)
            self._wake.clear()

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_s / 3)
            try:
                await asyncio.to_thread(self.store.renew, list(self._claims), self.config.lease_s)
            except Exception:
                log.exception("renewing the batch lines' leases failed")

    async def _pass(self) -> None:
        active = await asyncio.to_thread(self.store.active)
        now = time.time()
        self._closing = {b["id"]: CANCELLED if b["status"] == Status.CANCELLING else EXPIRED
                         for b in active
                         if b["status"] == Status.CANCELLING or now >= b["expires_at"]}
        for batch in active:
            lines = await asyncio.to_thread(self.store.lines, batch["id"])
            step = next_step(Status(batch["status"]), lines, time.time(), batch["expires_at"])
            await self._steps[step](batch)

    # -- the steps -----------------------------------------------------------------------

    async def _start_batch(self, batch: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.move, batch["id"], [Status.VALIDATING],
                                Status.IN_PROGRESS)

    async def _expire(self, batch: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.close_pending, batch["id"], EXPIRED)

    async def _cancel(self, batch: dict[str, Any]) -> None:
        await asyncio.to_thread(self.store.close_pending, batch["id"], CANCELLED)

    async def _wait(self, batch: dict[str, Any]) -> None:
        return None

    async def _finalize(self, batch: dict[str, Any]) -> None:
        store = self.store
        await asyncio.to_thread(store.move, batch["id"],
                                [Status.IN_PROGRESS, Status.CANCELLING], Status.FINALIZING)
        final = await asyncio.to_thread(store.finalize, batch["id"])
        if final is not None:
            log.info("batch %s %s", batch["id"], final)

    async def _run(self, batch: dict[str, Any]) -> None:
        free = self.config.max_in_flight - len(self._lines)
        if free <= 0:
            return
        claimed = await asyncio.to_thread(self.store.claim, batch["id"], free,
                                          self.config.lease_s)
        if not claimed:
            return
        principal, refused = await self._principal(batch)
        for line in claimed:
            self._claims[line.claim] += 1
            task = asyncio.create_task(self._line(line, batch["endpoint"], principal, refused))
            self._lines[(line.batch_id, line.index)] = task
            task.add_done_callback(functools.partial(self._forget, line))

    def _forget(self, line: Claimed, task: asyncio.Task[None]) -> None:
        """A line's task ended. One that failed (the store down) leaves its line claimed
        until the lease runs out; it is then run again, under the same request id."""
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("batch %s line %d: %s", line.batch_id, line.index, exc, exc_info=exc)
        self._lines.pop((line.batch_id, line.index), None)
        self._claims[line.claim] -= 1
        if self._claims[line.claim] <= 0:
            del self._claims[line.claim]
        if len(self._lines) <= self.config.max_in_flight * 3 // 4:  # room for a claim worth
            self._wake.set()  # a pass (not one per line: each pass reads the store)

    async def _principal(self, batch: dict[str, Any]) -> tuple[Principal, InferplaneError | None]:
        """Who the batch's lines run as: the key that created it, as it is now."""
        key_id = batch["key_id"]
        if key_id is None:
            return OPEN, None
        store = self.gateway.access.store
        key = await asyncio.to_thread(store.key, key_id)
        if key is None or not key.active(time.time()):
            return OPEN, AuthenticationFailed(
                f"The API key {key_id} that created the batch was revoked or has expired.")
        tenant = await asyncio.to_thread(store.tenant, key.tenant)
        return Principal(key, tenant), None

    # -- one line ------------------------------------------------------------------------

    def _shares(self, model: str) -> list[Share] | None:
        """The batch shares of ``model``'s deployments; None when it has none (the line's
        handler then answers why)."""
        router = self.gateway.router
        try:
            targets = router.targets(router.model(model).name)  # an alias: its model's
        except InferplaneError:
            return None
        shares = []
        for target in targets:
            d = target.deployment
            engine = d.provider in ENGINE_PROVIDERS
            limit = d.batch.max_concurrency
            shares.append(Share(default_share(d) if limit is None else limit,
                                router.stats[d.name].in_flight, not engine))
        return shares or None

    async def _room(self, model: str, batch_id: str) -> None:
        """Until the model's deployments have room for one more batch line (or the batch is
        cancelled or out of its window). Only one waiting line per model looks for room every
        ``ROOM_POLL_S``, the one holding the model's gate; the others wait for the gate,
        looking up every ``GATE_WAIT_S`` to see whether their batch closed meanwhile."""
        gate = self._gates[model]
        while batch_id not in self._closing:
            try:
                await asyncio.wait_for(gate.acquire(), GATE_WAIT_S)
            except TimeoutError:
                continue
            try:
                while batch_id not in self._closing:
                    shares = self._shares(model)
                    if shares is None or room(shares, self._running[model]) > 0:
                        return  # the caller counts the line as running before it yields
                    await asyncio.sleep(ROOM_POLL_S)
            finally:
                gate.release()

    async def _line(self, line: Claimed, endpoint: str, principal: Principal,
                    refused: InferplaneError | None) -> None:
        model = str(line.body.get("model", ""))
        await self._room(model, line.batch_id)
        closing = self._closing.get(line.batch_id)
        if closing is not None:  # cancelled or out of window while it waited: it never runs
            status: int | None = None
            result = unrun(line.batch_id, line.index, line.custom_id, closing)
        else:
            self._running[model] += 1
            try:
                status, body = await self._answer(line, endpoint, principal, refused)
            finally:
                self._running[model] -= 1
            result = answered(line.batch_id, line.index, line.custom_id, status, body)
        if not await asyncio.to_thread(self.store.finish, line, status, result):
            log.warning("batch %s line %d: its claim was lost before it finished",
                        line.batch_id, line.index)

    async def _answer(self, line: Claimed, endpoint: str, principal: Principal,
                      refused: InferplaneError | None) -> tuple[int, dict[str, Any]]:
        handler = ENDPOINTS.get(endpoint)
        if handler is None:
            return 400, error_body(f"Batches cannot call {endpoint} on this gateway.",
                                   "invalid_request_error")
        ctx = LineContext(self.gateway, line.batch_id, request_id(line.batch_id, line.index),
                          refused)
        try:
            return await handler(line.body, principal, ctx)
        except Exception:
            log.exception("batch %s line %d failed", line.batch_id, line.index)
            return 500, error_body("The server had an error while processing this request.",
                                   "api_error")
