"""A lean HTTP/1.1 client for upstreams: keep-alive pools of asyncio protocols parsed by
httptools (llhttp), the parser uvicorn serves with.

The gateway's own cost before an upstream's first byte is mostly its HTTP stack: a general
client library builds header multidicts, tracing hooks, cookie jars and several coroutines for
every request. Here a request is one pre-encoded head plus the body, written in one call on a
pooled connection, and the response arrives by parser callbacks straight into a byte buffer the
reader drains. It does what an upstream call needs and no more: ``POST``/``GET``, bodies of known
length, responses delimited by length, chunks or close (never compressed: it asks for
``identity`` and refuses anything else), TLS, connect deadlines, flow control on large bodies.

A connection is reused only once its last response has ended. A caller done with a response
whose protocol has ended (an SSE stream after its last event) may :meth:`Response.release` it
before the body's last bytes (the chunked terminator) arrive: the connection takes them in the
background, within :data:`DRAIN_S` and :data:`DRAIN_BYTES`, and only then goes back to the pool;
a caller that stops early for another reason (its client left) closes it (:meth:`Response.close`),
which tells the upstream to stop generating. Idle connections older than :data:`IDLE_S` are
closed rather than reused: a peer or a middlebox may have dropped them silently.

A request sent on a reused connection that the server had closed meanwhile (it sees the close
before any byte of a response) is sent once more on a fresh connection: nothing of it was
processed, and a keep-alive race must not surface as an upstream failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httptools

HIGH_WATER = 256 * 1024  # buffered body bytes above which the socket stops being read
DRAIN_S = 1.0  # how long a released response may take to end before its connection is dropped
DRAIN_BYTES = 64 * 1024  # and how many more body bytes it may send meanwhile
IDLE_S = 15.0  # an idle connection older than this is closed, not reused


class ClientError(Exception):
    """Any failure of the transport."""


class ConnectError(ClientError):
    """No connection could be made (refused, unresolvable, TLS handshake failed)."""


class Disconnected(ClientError):
    """The connection broke, or the server sent what is not HTTP/1.1."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.scheme == "https"


def split(url: str) -> tuple[Origin, str]:
    """The origin and the request target (path and query) of an absolute URL.

    >>> split("https://api.example.com/v1/chat?x=1")
    (Origin(scheme='https', host='api.example.com', port=443), '/v1/chat?x=1')
    >>> split("http://127.0.0.1:8080")[1]
    '/'
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConnectError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), target


class Response:
    """One response: its status and headers, then its body as it arrives. When done,
    :meth:`release` it (the connection is reused once the body has ended, which it may still
    do in the background) or :meth:`close` it (the connection is dropped)."""

    __slots__ = ("_conn", "_done", "headers", "reason", "status")

    def __init__(self, conn: _Connection, status: int, reason: str,
                 headers: dict[str, str]) -> None:
        self._conn = conn
        self._done = False
        self.status = status
        self.reason = reason
        self.headers = headers  # lower-case names; a repeated header keeps its last value

    def read_nowait(self) -> bytes:
        """The body bytes that have arrived and not been read (empty when none)."""
        return self._conn.take()

    def at_eof(self) -> bool:
        """The whole body has arrived and been read."""
        return self._conn.complete and not self._conn.body

    async def readany(self) -> bytes:
        """The next body bytes, waiting for some; empty once the body has ended."""
        conn = self._conn
        while not conn.body and not conn.complete:
            await conn.wait()
        return conn.take()

    async def read(self) -> bytes:
        """The rest of the body."""
        parts = []
        while chunk := await self.readany():
            parts.append(chunk)
        return b"".join(parts)

    def release(self) -> None:
        """Done with it, the rest of the body unwanted: the connection is reused once the body
        has ended (at once if it has; else within :data:`DRAIN_S`, or it is dropped)."""
        if not self._done:
            self._done = True
            self._conn.finish(reuse=True)

    def close(self) -> None:
        if not self._done:
            self._done = True
            self._conn.finish(reuse=False)

    def __del__(self) -> None:  # dropped unfinished (its reader was cancelled or closed first)
        if not self._done:
            with contextlib.suppress(Exception):  # the loop may be closed by now
                self.close()


class _Connection(asyncio.Protocol):
    """One keep-alive connection; it parses the response of the request in flight."""

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.body = bytearray()
        self.complete = False  # the response in flight has ended
        self.reused = False  # it carried a response before this request
        self.received = False  # a byte of the response in flight has arrived
        self.error: ClientError | None = None
        self._parser: Any = None
        self._status = 0
        self._reason = ""
        self._headers: dict[str, str] = {}
        self._head: asyncio.Future[Response] | None = None  # until the response's head
        self.busy = False  # a request is in flight: sent, its response not yet finished with
        self._waiter: asyncio.Future[None] | None = None
        self._keep_alive = False
        self._paused = False
        self._drain: asyncio.TimerHandle | None = None  # released before its body ended
        self._drained = 0
        self.idle_since = 0.0

    # -- the caller's side ------------------------------------------------------------------

    def send(self, data: bytes) -> asyncio.Future[Response]:
        """Write one request; the future gets its response once the headers arrived."""
        assert self.transport is not None
        self.body.clear()
        self.complete = self.received = False
        self._headers, self._reason = {}, ""
        self._parser = httptools.HttpResponseParser(self)
        self._head = self.pool.loop.create_future()
        self.busy = True
        self.transport.write(data)
        return self._head

    def take(self) -> bytes:
        data = bytes(self.body)
        self.body.clear()
        self._resume()
        return data

    def _resume(self) -> None:
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()

    async def wait(self) -> None:
        if self.error is not None:
            raise self.error
        self._waiter = self.pool.loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self.error is not None and not self.body:
            raise self.error

    def finish(self, *, reuse: bool) -> None:
        """The caller is done with the response in flight: reuse the connection once the
        response has ended, or drop it now."""
        self._head, self.busy = None, False
        if not (reuse and self._keep_alive and self.error is None and self.transport is not None
                and not self.transport.is_closing()):
            self.drop()
        elif self.complete:
            self._reuse()
        else:  # the rest is unwanted: discard it as it arrives, within limits
            self.body.clear()
            self._drained = 0
            self._resume()
            self._drain = self.pool.loop.call_later(DRAIN_S, self.drop)

    def _reuse(self) -> None:
        self.reused = True
        self.body.clear()
        self.pool.put(self)

    def drop(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if self.transport is not None:
            self.transport.close()

    # -- the event loop's side --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        if self._parser is None:  # bytes while idle: the server is not speaking HTTP to us
            self._fail(Disconnected("data on an idle connection"))
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(Disconnected("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(Disconnected(f"malformed HTTP response ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool.forget(self)
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if self.busy and not self.complete:
            if self._status and self._until_close():
                self.on_message_complete()  # a body delimited by the connection's end
            else:
                self._fail(Disconnected("the connection closed" + (f" ({exc})" if exc else "")))
        self.transport = None

    def on_status(self, status: bytes) -> None:
        self._reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:  # 100 Continue and other interim responses: the real one follows
            self._headers, self._reason = {}, ""
            return
        coding = self._headers.get("content-encoding", "identity").strip().lower()
        if coding != "identity":
            self._fail(Disconnected(f"the upstream sent a {coding}-encoded body, not the "
                                    "identity encoding asked for"))
            return
        self._status = status
        self._keep_alive = self._parser.should_keep_alive()
        if self._head is not None and not self._head.done():
            self._head.set_result(Response(self, status, self._reason, self._headers))
        self._head = None  # the response is its reader's alone: dropped, it closes

    def on_body(self, body: bytes) -> None:
        if self._drain is not None:  # released: unwanted, but within limits
            self._drained += len(body)
            if self._drained > DRAIN_BYTES:
                self.drop()
            return
        self.body += body
        if len(self.body) > HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if not self._status:  # the end of an interim response
            return
        self.complete = True
        self._status = 0
        self._parser = None
        if self._drain is not None:  # released while it ended: it may now be reused
            self._drain.cancel()
            self._drain, self._drained = None, 0
            self._reuse()
            return
        self._wake()

    def _until_close(self) -> bool:
        return ("content-length" not in self._headers
                and "chunked" not in self._headers.get("transfer-encoding", ""))

    def _fail(self, error: ClientError) -> None:
        self.error = error
        if self._head is not None and not self._head.done():
            self._head.set_exception(error)
        self._wake()
        self.drop()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Pool:
    """Keep-alive connections to any number of origins, with headers sent on every request.
    Connections are taken last in, first out (the warmest first); there is no limit on how
    many are open, as each carries one request at a time; those idle for over :data:`IDLE_S`
    are closed as they are met."""

    def __init__(self, headers: Mapping[str, str] | None = None,
                 connect_timeout: float | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self.connect_timeout = connect_timeout
        self._ssl = ssl_context
        common = {k.lower(): v for k, v in (headers or {}).items()}
        common |= {"accept-encoding": "identity"}
        self._common = b"".join(_header(k, v) for k, v in common.items()
                                if k not in ("host", "content-length"))
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._heads: dict[tuple[Origin, str, str], bytes] = {}
        self.closed = False

    async def request(self, method: str, url: str, body: bytes = b"",
                      headers: Mapping[str, str] | None = None) -> Response:
        """Send a request; its response once the status and headers arrived."""
        origin, target = split(url)
        data = self._head(origin, method, target) + b"".join(
            _header(k, v) for k, v in (headers or {}).items()
        ) + b"content-length: %d\r\n\r\n" % len(body) + body
        while True:
            conn = await self._acquire(origin)
            try:
                return await conn.send(data)
            except Disconnected:
                if not (conn.reused and not conn.received):
                    raise
            except BaseException:  # cancelled (a deadline): the connection is mid-request
                conn.finish(reuse=False)
                raise
            # a kept-alive connection the server had closed: once more on a fresh one

    async def close(self) -> None:
        self.closed = True
        for conn in list(self._open):
            conn.drop()
        self._idle.clear()
        self._open.clear()

    def put(self, conn: _Connection) -> None:
        if self.closed:
            conn.drop()
            return
        conn.idle_since = now = self.loop.time()
        idle = self._idle.setdefault(conn.origin, deque())
        idle.append(conn)
        while idle[0].idle_since < now - IDLE_S:  # the oldest first: close the stale ones
            idle.popleft().drop()

    def forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        conns = self._idle.get(conn.origin)
        if conns is not None and conn in conns:
            conns.remove(conn)

    def _head(self, origin: Origin, method: str, target: str) -> bytes:
        key = (origin, method, target)
        head = self._heads.get(key)
        if head is None:
            default = 443 if origin.tls else 80
            host = origin.host if origin.port == default else f"{origin.host}:{origin.port}"
            head = (f"{method} {target} HTTP/1.1\r\n".encode("latin-1")
                    + _header("host", host) + self._common)
            if len(self._heads) < 1024:
                self._heads[key] = head
        return head

    async def _acquire(self, origin: Origin) -> _Connection:
        if self.closed:
            raise ConnectError("the pool is closed")
        idle = self._idle.get(origin)
        if idle:
            stale = self.loop.time() - IDLE_S
            while idle:
                conn = idle.pop()
                if conn.idle_since < stale:  # and all below it too
                    conn.drop()
                    while idle:
                        idle.popleft().drop()
                elif conn.transport is not None and not conn.transport.is_closing():
                    return conn
        return await self._connect(origin)

    async def _connect(self, origin: Origin) -> _Connection:
        context = None
        if origin.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await self.loop.create_connection(
                    lambda: _Connection(self, origin), origin.host, origin.port, ssl=context,
                    server_hostname=origin.host if context is not None else None)
        except TimeoutError:
            raise ConnectError(f"connecting to {origin.host}:{origin.port} timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise ConnectError(f"cannot connect to {origin.host}:{origin.port} ({exc})") from exc
        self._open.add(conn)
        return conn


def _header(name: str, value: str) -> bytes:
    if "\r" in value or "\n" in value or "\r" in name or "\n" in name:
        raise ValueError(f"header {name!r} holds a line break")
    return f"{name}: {value}\r\n".encode("latin-1")
