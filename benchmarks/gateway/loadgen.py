"""An open-loop HTTP/1.1 load generator, free of coordinated omission.

Request ``i`` is due at ``start + i / rate`` whatever happened to the ones before it: a slow
response never delays the next send. Each latency is measured from the request's *intended*
send time, so time a request spent waiting (for a free connection, for the generator itself)
counts against the server, as a user arriving at that moment would see it.

One request body is sent over and over on a pool of keep-alive connections (one request at a
time per connection, no pipelining), opened as needed up to ``max_connections``; past that,
requests queue here, their clock running. Responses are parsed by ``httptools`` (the C parser
uvicorn uses) on a raw ``asyncio.Protocol``: per request, one write and a few callbacks.

    outcomes = asyncio.run(run_load(target, rate=500, duration_s=20, warmup_s=3))
    stats = summarize(outcomes, warmup_s=3)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

import httptools

from common import percentile

perf = time.perf_counter


@dataclass(frozen=True)
class Target:
    """Where and what to send: one POST, the same bytes every time."""

    host: str
    port: int
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    stream: bool = False

    @property
    def request(self) -> bytes:
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 "Content-Type: application/json", f"Content-Length: {len(self.body)}",
                 *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    @property
    def marker(self) -> bytes:
        """Bytes a complete, successful response body contains."""
        return b"data: [DONE]" if self.stream else b'"choices"'


class Outcome:
    """One request: when it was due, issued, written, answered; what came back."""

    __slots__ = ("done", "error", "first_byte", "intended", "issued", "ok", "sent", "status")

    def __init__(self, intended: float) -> None:
        self.intended = intended  # all times: perf_counter seconds
        self.issued = 0.0  # when the scheduler handed it over (lateness of the generator)
        self.sent = 0.0  # when its bytes were written
        self.first_byte = 0.0  # first byte of the response body (TTFB for a stream)
        self.done = 0.0
        self.status = 0
        self.ok = False
        self.error: str | None = None


class _Connection(asyncio.Protocol):
    """One keep-alive connection carrying one request at a time."""

    def __init__(self, client: _Client) -> None:
        self.client = client
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.current: Outcome | None = None
        self.body = bytearray()
        self.idle_since = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def send(self, outcome: Outcome) -> None:
        assert self.transport is not None
        self.current = outcome
        self.body.clear()
        outcome.sent = perf()
        self.transport.write(self.client.request)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"bad response: {exc}")
            self.close()

    # httptools callbacks
    def on_headers_complete(self) -> None:
        if self.current is not None:
            self.current.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        cur = self.current
        if cur is not None:
            if not cur.first_byte:
                cur.first_byte = perf()
            self.body += body

    def on_message_complete(self) -> None:
        cur, self.current = self.current, None
        if cur is None:
            return
        cur.done = perf()
        cur.ok = cur.status == 200 and self.client.marker in self.body
        if not cur.ok:
            cur.error = f"status {cur.status}" if cur.status != 200 else "incomplete body"
        self.client.finished(cur)
        if self.parser.should_keep_alive():
            self.client.release(self)
        else:
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection closed before the response ended")
        self.client.forget(self)

    def _fail(self, why: str) -> None:
        cur, self.current = self.current, None
        if cur is not None:
            cur.done, cur.error = perf(), why
            self.client.finished(cur)

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


class _Client:
    """The connection pool: idle connections (last in, first out), and requests waiting for
    one when ``max_connections`` are all busy."""

    def __init__(self, target: Target, max_connections: int, idle_limit_s: float) -> None:
        self.target = target
        self.request = target.request
        self.marker = target.marker
        self.max_connections = max_connections
        self.idle_limit_s = idle_limit_s
        self.idle: list[_Connection] = []
        self.live: set[_Connection] = set()
        self.opening = 0
        self.waiting: deque[Outcome] = deque()
        self.unfinished = 0
        self.peak_connections = 0
        self.all_done = asyncio.Event()

    @property
    def connections(self) -> int:
        return len(self.live) + self.opening

    def submit(self, outcome: Outcome) -> None:
        self.unfinished += 1
        self.all_done.clear()
        now = perf()
        while self.idle:
            conn = self.idle.pop()
            if now - conn.idle_since < self.idle_limit_s:  # else the server may be closing it
                conn.send(outcome)
                return
            conn.close()
        if self.connections < self.max_connections:
            self._open(outcome)
        else:
            self.waiting.append(outcome)

    def _open(self, outcome: Outcome | None) -> None:
        self.opening += 1
        self.peak_connections = max(self.peak_connections, self.connections)
        asyncio.get_running_loop().create_task(self._connect(outcome))

    async def _connect(self, outcome: Outcome | None) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _Connection(self), self.target.host,
                                                   self.target.port)
        except OSError as exc:
            self.opening -= 1
            if outcome is not None:
                outcome.done, outcome.error = perf(), f"connect: {exc}"
                self.finished(outcome)
            return
        self.opening -= 1
        self.live.add(conn)
        if outcome is not None:
            conn.send(outcome)
        else:
            self.release(conn)

    def release(self, conn: _Connection) -> None:
        if self.waiting:
            conn.send(self.waiting.popleft())
        else:
            conn.idle_since = perf()
            self.idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        self.live.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        if self.waiting and self.connections < self.max_connections:
            self._open(self.waiting.popleft())

    def finished(self, outcome: Outcome) -> None:
        self.unfinished -= 1
        if self.unfinished == 0:
            self.all_done.set()

    async def prefill(self, n: int) -> None:
        """Open ``n`` idle connections before the clock starts."""
        loop = asyncio.get_running_loop()
        count = min(n, self.max_connections) - self.connections
        self.opening += count
        await asyncio.gather(*(loop.create_task(self._connect(None)) for _ in range(count)))

    def close_all(self) -> None:
        """Close every connection; a request still open on one stays a timeout."""
        for conn in list(self.live):
            conn.current = None
            conn.close()


async def run_load(target: Target, rate: float, duration_s: float, *, warmup_s: float = 0.0,
                   max_connections: int = 2048, timeout_s: float = 10.0,
                   idle_limit_s: float = 2.0) -> list[Outcome]:
    """Send ``rate`` requests per second for ``warmup_s + duration_s`` seconds on a fixed
    schedule; wait at most ``timeout_s`` after the last due time for the stragglers (those
    still open then fail as timeouts). Returns every request, warm-up included."""
    client = _Client(target, max_connections, idle_limit_s)
    await client.prefill(int(8 + rate * 0.02))
    gc.collect()
    gc.freeze()  # what exists now is never garbage: keep collections short
    outcomes = [Outcome(0.0) for _ in range(int(rate * (warmup_s + duration_s)))]
    start = perf() + 0.01
    for i, outcome in enumerate(outcomes):
        outcome.intended = due = start + i / rate
        if due > perf():
            # Never early: timers tick in whole milliseconds and may fire before ``due``.
            while (ahead := due - perf()) > 0:  # noqa: ASYNC110 - waiting for a time
                await asyncio.sleep(max(ahead, 0.001))
        elif i % 16 == 0:
            await asyncio.sleep(0)  # behind schedule: still let responses in
        outcome.issued = perf()
        client.submit(outcome)
    last_due = start + len(outcomes) / rate
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(client.all_done.wait(), max(0.1, last_due + timeout_s - perf()))
    for outcome in outcomes:
        if not outcome.done or outcome.done - outcome.intended > timeout_s:
            outcome.ok, outcome.error = False, f"timeout ({timeout_s:g} s)"
    client.close_all()
    await asyncio.sleep(0.05)
    gc.unfreeze()
    return outcomes


def summarize(outcomes: list[Outcome], warmup_s: float, stream: bool = False) -> dict[str, Any]:
    """Percentiles (ms) over the requests due after the warm-up: latency and TTFB over the
    successful ones, success rate over all; plus how late the generator itself issued them."""
    if not outcomes:
        return {"requests": 0}
    t0 = outcomes[0].intended
    measured = [o for o in outcomes if o.intended - t0 >= warmup_s]
    ok = [o for o in measured if o.ok]
    latency = [1000 * (o.done - o.intended) for o in ok]
    lag = [1000 * (o.issued - o.intended) for o in measured]
    errors: dict[str, int] = {}
    for o in measured:
        if not o.ok:
            key = o.error or "unknown"
            errors[key] = errors.get(key, 0) + 1
    span = measured[-1].intended - measured[0].intended if len(measured) > 1 else 0.0
    row: dict[str, Any] = {
        "requests": len(measured),
        "ok": len(ok),
        "success_rate": round(len(ok) / len(measured), 5) if measured else 0.0,
        "p50_ms": _ms(percentile(latency, 50)),
        "p90_ms": _ms(percentile(latency, 90)),
        "p99_ms": _ms(percentile(latency, 99)),
        "max_ms": _ms(max(latency, default=float("nan"))),
        "offered_rps": round((len(measured) - 1) / span, 1) if span else None,
        "generator_lag_p50_ms": _ms(percentile(lag, 50)),
        "generator_lag_p99_ms": _ms(percentile(lag, 99)),
        "errors": errors,
    }
    if stream:
        ttfb = [1000 * (o.first_byte - o.intended) for o in ok if o.first_byte]
        row["ttfb_p50_ms"] = _ms(percentile(ttfb, 50))
        row["ttfb_p99_ms"] = _ms(percentile(ttfb, 99))
    return row


def _ms(x: float) -> float | None:
    return None if x != x else round(x, 3)  # NaN -> None (JSON has no NaN)
