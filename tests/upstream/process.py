"""Run upstream servers as real subprocesses on free loopback ports, for tests and benchmarks.

    with UpstreamProcess(name="up1", api_key="sk-test") as up:
        up.add_faults({"kind": "status", "status": 429, "retry_after": 1})
        client = openai.OpenAI(base_url=up.url + "/v1", api_key="sk-test", max_retries=0)
        ...
        assert up.requests()[-1]["auth_ok"]

``upstreams(3)`` starts several at once and stops them all on exit.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


class UpstreamProcess:
    """One ``python -m tests.upstream.server`` process and its control API."""

    def __init__(self, name: str = "upstream", *, api_key: str | None = "test-key",
                 args: Sequence[str] = (), host: str = "127.0.0.1",
                 python: str = sys.executable) -> None:
        self.name = name
        self.api_key = api_key
        self.host = host
        self.port = 0
        key = ["--api-key", api_key] if api_key is not None else []
        self.argv = [python, "-m", "tests.upstream.server", "--host", host, "--port", "0",
                     "--name", name, *key, *args]
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix=f"upstream-{name}-", suffix=".log")[1])
        self._http = httpx.Client(timeout=10)

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123`` (OpenAI clients add ``/v1``)."""
        return f"http://{self.host}:{self.port}"

    def launch(self) -> UpstreamProcess:
        """Start the process without waiting for it (see ``wait_ready``)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=log,
                                         cwd=ROOT, env=env)
        return self

    def wait_ready(self, timeout: float = 30.0) -> UpstreamProcess:
        """Read the ``READY <port>`` line, then check the server answers."""
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while not self.port:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"upstream {self.name} not ready: {self._tail()}")
                line = self.proc.stdout.readline().decode()
                if not line:
                    raise RuntimeError(f"upstream {self.name} exited: {self._tail()}")
                if line.startswith("READY "):
                    self.port = int(line.split()[1])
        self.control("GET", "health")
        return self

    def start(self, timeout: float = 30.0) -> UpstreamProcess:
        return self.launch().wait_ready(timeout)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
        self._http.close()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.log.exists() and not self.log.stat().st_size:
            self.log.unlink()  # kept when the server wrote warnings or errors
        return code

    def __enter__(self) -> UpstreamProcess:
        return self if self.port else self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    # ---- control API ----------------------------------------------------------------------

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Call ``/_control/<path>`` and return its JSON; raises on an error status."""
        r = self._http.request(method, f"{self.url}/_control/{path}", json=json)
        r.raise_for_status()
        return r.json()

    def add_faults(self, *faults: dict[str, Any]) -> list[dict[str, Any]]:
        """Queue faults in order; returns all pending ones."""
        return list(self.control("POST", "faults", list(faults))["pending"])

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def requests(self) -> list[dict[str, Any]]:
        return list(self.control("GET", "requests")["requests"])

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def stats(self) -> dict[str, Any]:
        return dict(self.control("GET", "stats"))

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change settings at run time, e.g. ``configure(cached_tokens=3)``."""
        return dict(self.control("PATCH", "settings", changes))

    def reset(self) -> None:
        """Forget faults, the request log and counters (between tests)."""
        self.clear_faults()
        self.clear_requests()
        self.control("DELETE", "stats")


@contextmanager
def upstreams(n: int, *, prefix: str = "up", **kwargs: Any) -> Iterator[list[UpstreamProcess]]:
    """Start ``n`` servers named ``up1..upN`` in parallel; stop them all on exit."""
    with ExitStack() as stack:
        procs = [UpstreamProcess(f"{prefix}{i + 1}", **kwargs) for i in range(n)]
        for p in procs:
            stack.callback(p.stop)
            p.launch()
        yield [p.wait_ready() for p in procs]
