"""The upstream HTTP/1.1 client against real servers on loopback that write exact bytes:
body framings, keep-alive reuse and its races, interim responses, flow control, failures, TLS."""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from inferplane.providers import http_client
from inferplane.providers.http_client import (
    DRAIN_BYTES,
    HIGH_WATER,
    ConnectError,
    Disconnected,
    Pool,
    split,
)

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"


class Server:
    """A loopback server whose handler sees each connection; it counts connections and the
    request heads it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def request(self, reader: asyncio.StreamReader) -> bytes:
        """Read one request (head and a content-length body); its head."""
        head = await reader.readuntil(b"\r\n\r\n")
        self.heads.append(head)
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        return head


@asynccontextmanager
async def serve(handler: Callable[[Server, asyncio.StreamReader, asyncio.StreamWriter],
                                  Awaitable[None]],
                context: ssl.SSLContext | None = None) -> AsyncIterator[tuple[Server, str]]:
    server = Server(lambda r, w: handler(server, r, w))
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"{'https' if context else 'http'}://127.0.0.1:{port}/v1/x"
    finally:
        listener.close()


async def answer_each(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, reply: bytes = OK) -> None:
    while True:
        await server.request(reader)
        writer.write(reply)
        await writer.drain()


def test_split_a_url() -> None:
    assert split("http://h:81/a/b?c=d")[1] == "/a/b?c=d"
    assert split("https://h")[0].port == 443
    with pytest.raises(ConnectError):
        split("ftp://h/")


async def test_a_body_of_known_length_and_the_connection_kept_for_the_next() -> None:
    async with serve(answer_each) as (server, url):
        pool = Pool({"authorization": "Bearer k"})
        for _ in range(3):
            response = await pool.request("POST", url, b'{"a": 1}', {"x-extra": "1"})
            assert (response.status, await response.read()) == (200, b"hello")
            assert response.at_eof()
            response.release()
        await pool.close()
    assert server.connections == 1
    head = server.heads[0].decode()
    assert head.startswith("POST /v1/x HTTP/1.1\r\n")
    for line in (f"host: 127.0.0.1:{url.split(':')[2].split('/')[0]}",
                 "authorization: Bearer k", "x-extra: 1", "content-length: 8",
                 "accept-encoding: identity"):
        assert line in head.split("\r\n")


async def test_a_chunked_body_arrives_as_it_is_sent() -> None:
    step = asyncio.Event()

    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n"
                     b"content-type: text/event-stream\r\nRetry-After: 3\r\n\r\n"
                     b"6\r\ndata: \r\n")
        await step.wait()
        writer.write(b"2\r\nhi\r\n0\r\n\r\n")
        await server.request(reader)  # kept alive for the next request
        writer.write(OK)
        await asyncio.sleep(1)

    async with serve(handler) as (server, url):
        pool = Pool()
        response = await pool.request("POST", url)
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["retry-after"] == "3"  # names in lower case
        assert await response.readany() == b"data: "
        assert not response.at_eof()
        step.set()
        assert await response.read() == b"hi"
        response.release()
        again = await pool.request("GET", url)
        assert await again.read() == b"hello"
        await pool.close()
    assert server.connections == 1


async def test_a_body_delimited_by_the_close_of_the_connection() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nall of ")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"it")

    async with serve(handler) as (server, url):
        pool = Pool()
        response = await pool.request("POST", url)
        assert await response.read() == b"all of it"
        response.release()
        assert await (await pool.request("POST", url)).read() == b"all of it"
        await pool.close()
    assert server.connections == 2  # not reused: the server closed it


async def test_an_interim_response_is_skipped() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        await asyncio.sleep(1)

    async with serve(handler) as (_, url):
        pool = Pool()
        response = await pool.request("POST", url)
        assert (response.status, await response.read()) == (200, b"hello")
        await pool.close()


async def test_a_kept_alive_connection_the_server_closed_is_replaced_silently() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(OK)  # keep-alive by HTTP/1.1's default, then closed anyway
        await writer.drain()

    async with serve(handler) as (server, url):
        pool = Pool()
        for _ in range(3):
            response = await pool.request("POST", url)
            assert await response.read() == b"hello"
            response.release()
            await asyncio.sleep(0.05)  # the close reaches the idle connection
        # and when the close crosses the request on the wire, it is sent again once
        response = await pool.request("POST", url)
        response.release()
        assert await (await pool.request("POST", url)).read() == b"hello"
        await pool.close()
    assert server.connections == 5


async def test_a_fresh_connection_closed_before_any_answer_is_an_error() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)

    async with serve(handler) as (server, url):
        pool = Pool()
        with pytest.raises(Disconnected, match="closed"):
            await pool.request("POST", url)
        await pool.close()
    assert server.connections == 1  # never sent twice


async def test_a_response_released_unread_after_its_end_keeps_its_connection() -> None:
    async with serve(answer_each) as (server, url):
        pool = Pool()
        response = await pool.request("POST", url)
        response.release()  # unread, but whole: the connection is reused
        response = await pool.request("POST", url)
        assert await response.read() == b"hello"
        response.close()  # dropped
        response = await pool.request("POST", url)
        assert await response.read() == b"hello"
        await pool.close()
    assert server.connections == 2


def sse_then(rest: bytes, pause: float) -> Callable[
        [Server, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    """A handler: a chunked stream whose last event comes at once, then after ``pause``
    seconds ``rest`` (the end of the body), then the next request on the same connection."""

    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"e\r\ndata: [DONE]\n\n\r\n")
        await writer.drain()
        await asyncio.sleep(pause)
        writer.write(rest)
        await answer_each(server, reader, writer)

    return handler


async def test_a_stream_released_before_its_end_is_drained_then_reused() -> None:
    async with serve(sse_then(b"0\r\n\r\n", 0.05)) as (server, url):
        pool = Pool()
        response = await pool.request("POST", url)
        assert await response.readany() == b"data: [DONE]\n\n"
        response.release()  # the terminating chunk is still to come
        await asyncio.sleep(0.2)
        assert await (await pool.request("POST", url)).read() == b"hello"
        await pool.close()
    assert server.connections == 1


@pytest.mark.parametrize(("rest", "pause"), [
    (b"0\r\n\r\n", 0.5),  # too late
    (b"%x\r\n%s\r\n0\r\n\r\n" % (2 * DRAIN_BYTES, b"x" * 2 * DRAIN_BYTES), 0.05),  # too much
])
async def test_a_released_stream_that_does_not_end_soon_is_dropped(
        monkeypatch: pytest.MonkeyPatch, rest: bytes, pause: float) -> None:
    monkeypatch.setattr(http_client, "DRAIN_S", 0.2)

    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        first = server.connections == 1
        await (sse_then(rest, pause) if first else answer_each)(server, reader, writer)

    async with serve(handler) as (server, url):
        pool = Pool()
        response = await pool.request("POST", url)
        await response.readany()
        response.release()
        await asyncio.sleep(0.7)
        assert await (await pool.request("POST", url)).read() == b"hello"
        await pool.close()
    assert server.connections == 2


async def test_idle_connections_past_their_age_are_closed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_client, "IDLE_S", 0.1)
    async with serve(answer_each) as (server, url):
        pool = Pool()
        first, second = await asyncio.gather(pool.request("POST", url),
                                             pool.request("POST", url))
        first.release()
        second.release()  # two idle connections
        await asyncio.sleep(0.2)
        third = await pool.request("POST", url)  # neither is reused
        await asyncio.sleep(0.2)
        third.release()  # both closed as this one goes back
        assert await (await pool.request("POST", url)).read() == b"hello"
        await pool.close()
    assert server.connections == 3


async def test_a_large_body_is_read_with_backpressure() -> None:
    size = 64 * HIGH_WATER  # more than the kernel's socket buffers hold
    buffered: list[int] = []

    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size + b"x" * size)
        await asyncio.sleep(0.3)
        buffered.append(writer.transport.get_write_buffer_size())
        await writer.drain()
        await asyncio.sleep(1)

    async with serve(handler) as (_, url):
        pool = Pool()
        response = await pool.request("POST", url)
        await asyncio.sleep(0.5)  # not reading: the client stops reading the socket
        assert await response.read() == b"x" * size
        await pool.close()
    assert buffered[0] > 0  # the server could not write it all while the client waited


async def test_a_refused_connection_and_a_malformed_response() -> None:
    pool = Pool(connect_timeout=2)
    async with serve(answer_each) as (_, url):
        pass  # closed: nothing listens there now
    with pytest.raises(ConnectError, match="cannot connect"):
        await pool.request("POST", url)

    async def garbage(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await asyncio.sleep(1)

    async with serve(garbage) as (_, url):
        with pytest.raises(Disconnected, match="malformed"):
            await pool.request("POST", url)
    await pool.close()


async def test_a_compressed_body_is_refused() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\n\r\n"
                     b"\x1f\x8b")
        await asyncio.sleep(1)

    async with serve(handler) as (_, url):
        pool = Pool()
        with pytest.raises(Disconnected, match="gzip"):
            await pool.request("POST", url)
        await pool.close()


async def test_a_header_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="line break"):
        Pool({"authorization": "Bearer k\r\nx-injected: 1"})


async def test_a_response_dropped_unfinished_closes_its_connection() -> None:
    closed = asyncio.Event()

    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npart")
        assert await reader.read() == b""  # the client closed it
        closed.set()

    async with serve(handler) as (_, url):
        pool = Pool()
        response = await pool.request("POST", url)
        del response  # neither released nor closed: a generator closed before it got to it
        await asyncio.wait_for(closed.wait(), 2)
        await pool.close()


async def test_a_cancelled_request_drops_its_connection() -> None:
    async def handler(server: Server, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        await server.request(reader)
        await asyncio.sleep(0.3)
        writer.write(OK)
        await answer_each(server, reader, writer)

    async with serve(handler) as (server, url):
        pool = Pool()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.05):
                await pool.request("POST", url)
        response = await pool.request("POST", url)  # not the connection the late answer is on
        assert await response.read() == b"hello"
        await pool.close()
    assert server.connections == 2


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_tls_is_verified(tls_files: tuple[Path, Path]) -> None:
    cert, key = tls_files
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    async with serve(answer_each, server_context) as (server, url):
        trusted = Pool(ssl_context=ssl.create_default_context(cafile=str(cert)))
        for _ in range(2):
            response = await trusted.request("POST", url)
            assert await response.read() == b"hello"
            response.release()
        await trusted.close()
        untrusted = Pool(connect_timeout=5)  # the system's roots: the self-signed one fails
        with pytest.raises(ConnectError):
            await untrusted.request("POST", url)
        await untrusted.close()
    assert server.connections == 1  # reused; the refused handshake never reached the handler
