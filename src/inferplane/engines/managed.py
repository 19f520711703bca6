"""An engine server (llama-server, vLLM, SGLang) in a process Inferplane starts, watches and
stops: the HTTP counterpart of the embedded engine's ``supervisor.py``.

Each run: the server starts in a session of its own (Ctrl-C on the terminal reaches the gateway
only, and the whole group is signalled at the end: vLLM and SGLang start workers of their own),
its output appended to its log file; it is ready once its health endpoint answers 200. While it
runs its health is checked every ``health_interval_s``; :data:`HEALTH_FAILURES` failures in a
row kill it (a hung server). When it exits, requests in flight fail (the provider answers 503)
and it is started again after a backoff (``backoff.py``), like the embedded engine.

:meth:`ManagedEngine.stop` is the gateway's last step for it, after the HTTP server has drained
its requests: SIGTERM to the group, SIGKILL after ``stop_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from inferplane.engines.backoff import Backoff
from inferplane.engines.http_get import get
from inferplane.errors import EngineStartError
from inferplane.providers.http_client import Pool

log = logging.getLogger("inferplane.engine")

HEALTH_FAILURES = 3
LOG_TAIL_BYTES = 400


@dataclass(frozen=True, slots=True)
class ServerRun:
    """One start of the server: its full command line and where it listens."""

    argv: list[str]
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class ServerSpec:
    """What does not change between starts."""

    log_path: Path
    health_path: str = "/health"
    startup_timeout_s: float = 120.0
    stop_timeout_s: float = 15.0
    health_interval_s: float = 2.0
    health_timeout_s: float = 5.0


def log_tail(path: Path, size: int = LOG_TAIL_BYTES) -> str:
    """The last line of the log with text on it, for a one-line error."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            lines = [line.strip() for line in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return ""
    return next((line for line in reversed(lines) if line), "")


class ManagedEngine:
    """Starts the server ``prepare()`` describes (called again before each start: a port picked
    afresh, the program looked up again), and keeps it running until :meth:`stop`."""

    def __init__(self, name: str, spec: ServerSpec, prepare: Callable[[], ServerRun]) -> None:
        self.name = name
        self.spec = spec
        self.prepare = prepare
        self.restarts = 0
        self.run: ServerRun | None = None  # the current (or last) start
        self._proc: asyncio.subprocess.Process | None = None
        self._ready = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._pool: Pool | None = None
        # called when a restarted server is ready again (the router's breaker is reset)
        self.on_restart: list[Callable[[], None]] = []

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def url(self) -> str | None:
        """Where the server listens while it runs."""
        return self.run.url if self.run is not None and self.ready else None

    def current_url(self) -> str | None:
        """:attr:`url`, as a function (for the metrics reader)."""
        return self.url

    async def start(self) -> None:
        """Check the first start's settings now (raising :class:`EngineStartError`), then
        start and supervise in the background; returns at once."""
        first = self.prepare()
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._pool = Pool()
        self._task = asyncio.create_task(self._supervise(first), name=f"engine-{self.name}")

    async def wait_ready(self, timeout: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout)
        return self.ready

    async def stop(self) -> None:
        self._stopping = True
        self._ready.clear()
        await self._terminate()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._pool is not None:
            await self._pool.close()

    # -- the supervision loop --------------------------------------------------------------

    async def _supervise(self, first: ServerRun) -> None:
        backoff = Backoff()
        run: ServerRun | None = first
        while not self._stopping:
            try:
                if run is None:
                    run = self.prepare()
                served = await self._run_once(run)
                if served:
                    backoff.reset()
            except EngineStartError as exc:
                log.error("engine %s cannot start: %s", self.name, exc)
            except Exception:  # a failed start must not end supervision
                log.exception("engine %s failed", self.name)
            run = None
            if self._stopping:
                return
            self.restarts += 1
            wait = backoff.next()
            log.warning("engine %s exited; restarting in %.1fs (log: %s)", self.name, wait,
                        self.spec.log_path)
            await asyncio.sleep(wait)

    async def _run_once(self, run: ServerRun) -> bool:
        """One start to exit; whether it got as far as serving."""
        self.run = run
        with self.spec.log_path.open("ab") as out:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            out.write(f"--- {stamp} inferplane starts: {' '.join(run.argv)}\n".encode())
            out.flush()
            self._proc = await asyncio.create_subprocess_exec(
                *run.argv, stdout=out, stderr=asyncio.subprocess.STDOUT,
                stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        proc = self._proc
        exited = asyncio.create_task(proc.wait())
        try:
            if not await self._until_healthy(run, exited):
                return False
            self._ready.set()
            log.info("engine %s ready at %s (pid %s)", self.name, run.url, proc.pid)
            if self.restarts:
                for callback in self.on_restart:
                    callback()
            await self._watch(run, exited)
            return True
        finally:
            self._ready.clear()
            if proc.returncode is None and not self._stopping:
                self._signal(signal.SIGKILL)
            with contextlib.suppress(asyncio.CancelledError):
                await exited
            if not self._stopping:
                log.error("engine %s exited with status %s: %s", self.name, proc.returncode,
                          log_tail(self.spec.log_path))

    async def _healthy(self, run: ServerRun) -> bool:
        assert self._pool is not None
        try:
            status, _ = await get(self._pool, run.url + self.spec.health_path,
                                  self.spec.health_timeout_s)
        except (OSError, TimeoutError):
            return False
        return status == 200

    async def _until_healthy(self, run: ServerRun, exited: asyncio.Task[int]) -> bool:
        deadline = time.monotonic() + self.spec.startup_timeout_s
        while time.monotonic() < deadline:
            if exited.done():
                return False
            if await self._healthy(run):
                return True
            await asyncio.wait({exited}, timeout=0.2)
        log.error("engine %s not healthy after %.0fs; killing it", self.name,
                  self.spec.startup_timeout_s)
        return False

    async def _watch(self, run: ServerRun, exited: asyncio.Task[int]) -> None:
        failures = 0
        while not exited.done():
            await asyncio.wait({exited}, timeout=self.spec.health_interval_s)
            if exited.done() or self._stopping:
                return
            failures = 0 if await self._healthy(run) else failures + 1
            if failures >= HEALTH_FAILURES:
                log.error("engine %s failed %d health checks in a row; killing it",
                          self.name, failures)
                return

    def _signal(self, sig: signal.Signals) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)  # its own session: the group is the server and its workers

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        self._signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), self.spec.stop_timeout_s)
        except TimeoutError:
            log.warning("engine %s did not stop in %.0fs; killing it", self.name,
                        self.spec.stop_timeout_s)
            self._signal(signal.SIGKILL)
            await proc.wait()
