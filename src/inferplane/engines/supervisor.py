"""Starts the engine worker process, talks to it, and restarts it when it dies.

The gateway's side of the worker protocol (see ``engines/worker.py``). While the worker is
down or starting, :meth:`EngineSupervisor.generate` raises :class:`EngineUnavailable` (HTTP
503); requests in flight when it dies fail the same way. The supervisor restarts it with
exponential backoff, so the gateway recovers without a restart of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
import sys
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from inferplane.engines.backoff import Backoff
from inferplane.errors import EngineUnavailable

log = logging.getLogger("inferplane.engine")

Event = dict[str, Any]
_GONE: Event = {"ev": "gone"}
CANCEL_ACK_TIMEOUT_S = 10.0  # a step under heavy load can take a second or more
# What the worker reports of its load: sequences decoding and waiting for a slot, the share of
# KV-cache positions running sequences hold, prompt tokens looked up in and found in the prefix
# cache (counters), and its energy counter.
STATS = ("running", "waiting", "kv_cache_usage", "prefix_cache_queries", "prefix_cache_hits",
         "energy_charged_j", "energy_idle_j")


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What to start: the worker's command-line settings."""

    model: str
    parallel: int
    context: int
    batch: int
    threads: int | None
    startup_timeout_s: float = 120.0
    watts_per_core: float = 0.0  # the energy model's power of one busy core

    def argv(self, fd: int) -> list[str]:
        return [
            sys.executable, "-m", "inferplane.engines.worker", "--fd", str(fd),
            "--model", self.model, "--parallel", str(self.parallel),
            "--context", str(self.context), "--batch", str(self.batch),
            "--threads", str(self.threads or 0), "--watts-per-core", str(self.watts_per_core),
        ]


async def _last_event(events: asyncio.Queue[Event], timeout: float) -> Event | None:
    """Skip the events still in flight up to the request's terminal one."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            while (event := await events.get()) is not _GONE:
                if event["ev"] in ("done", "error"):
                    return event
    return None


class EngineSupervisor:
    def __init__(self, name: str, spec: WorkerSpec) -> None:
        self.name = name
        self.spec = spec
        self.info: Event = {}
        self.restarts = 0
        self._ready = asyncio.Event()
        self._stopping = False
        self._proc: asyncio.subprocess.Process | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._inflight: dict[str, asyncio.Queue[Event]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stats_ids = itertools.count()

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    async def start(self) -> None:
        """Start supervising in the background; returns at once."""
        self._task = asyncio.create_task(self._supervise(), name=f"engine-{self.name}")

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.ready

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to exit, then kill it if it does not within ``timeout``."""
        self._stopping = True
        if self._writer is not None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                self._writer.write(b'{"op":"shutdown"}\n')
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def generate(
        self, payload: Event, on_cancelled: Callable[[Event], None] | None = None
    ) -> AsyncGenerator[Event, None]:
        """Send one generation and yield its events until ``done`` or ``error``.

        Leaving early (the client went away) cancels it in the worker, which frees its slot
        and answers with the usage so far; that final event goes to ``on_cancelled``.
        """
        if not self.ready or self._writer is None:
            raise EngineUnavailable(f"engine {self.name!r} is not ready; retry shortly")
        request_id = str(payload["id"])
        events: asyncio.Queue[Event] = asyncio.Queue()
        self._inflight[request_id] = events
        finished = False
        try:
            self._send({"op": "generate", **payload})
            while True:
                event = await events.get()
                if event is _GONE:
                    raise EngineUnavailable(f"engine {self.name!r} stopped during the request")
                finished = event["ev"] in ("done", "error")
                yield event
                if finished:
                    return
        finally:
            if not finished and self.ready:
                self._send({"op": "cancel", "id": request_id})
                final = await _last_event(events, CANCEL_ACK_TIMEOUT_S)
                if final is not None and on_cancelled is not None:
                    on_cancelled(final)
            self._inflight.pop(request_id, None)

    async def stats(self, timeout: float = 2.0) -> Event:
        """The worker's own view of its load (``STATS``) and of its energy counter: joules
        given to requests, and idle joules."""
        if not self.ready:
            return {"running": 0, "waiting": 0}
        request_id = f"stats-{next(self._stats_ids)}"
        events: asyncio.Queue[Event] = asyncio.Queue()
        self._inflight[request_id] = events
        try:
            self._send({"op": "stats", "id": request_id})
            event = await asyncio.wait_for(events.get(), timeout)
        finally:
            self._inflight.pop(request_id, None)
        if event is _GONE:
            raise EngineUnavailable(f"engine {self.name!r} stopped")
        return {k: event[k] for k in STATS if k in event}

    def _send(self, message: Event) -> None:
        if self._writer is None:
            raise EngineUnavailable(f"engine {self.name!r} is not ready; retry shortly")
        self._writer.write(orjson.dumps(message) + b"\n")

    # -- the supervision loop --------------------------------------------------------------

    async def _supervise(self) -> None:
        backoff = Backoff()
        while not self._stopping:
            try:
                await self._run_once()
                backoff.reset()
            except Exception as exc:  # a failed start must not end supervision
                log.error("engine %s failed: %s", self.name, exc)
            if self._stopping:
                return
            self.restarts += 1
            wait = backoff.next()
            log.warning("engine %s exited; restarting in %.1fs", self.name, wait)
            await asyncio.sleep(wait)

    async def _run_once(self) -> None:
        parent, child = socket.socketpair()
        try:
            # A session of its own: Ctrl-C on the terminal, or a signal to the gateway's
            # group, never reaches it (not even while it imports, before it ignores them).
            self._proc = await asyncio.create_subprocess_exec(
                *self.spec.argv(child.fileno()), pass_fds=(child.fileno(),), start_new_session=True
            )
        finally:
            child.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=parent, limit=2**24)
        try:
            line = await asyncio.wait_for(reader.readline(), self.spec.startup_timeout_s)
            if not line:
                raise EngineUnavailable("the engine exited during start-up")
            self.info = orjson.loads(line)
            self._ready.set()
            log.info("engine %s ready (pid %s)", self.name, self._proc.pid)
            while line := await reader.readline():
                event = orjson.loads(line)
                queue = self._inflight.get(event.get("id", ""))
                if queue is not None:
                    queue.put_nowait(event)
        finally:
            self._ready.clear()
            self._writer.close()
            self._writer = None
            for queue in self._inflight.values():
                queue.put_nowait(_GONE)
            if self._proc.returncode is None and not self._stopping:
                self._proc.kill()
            await self._proc.wait()
