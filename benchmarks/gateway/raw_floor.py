"""The floor of any Python proxy on uvloop and httptools, for reference only: asyncio protocols
on both sides, no ASGI server, no client library, no gateway logic.

It parses the request, replaces the model, forwards it on a kept-alive upstream connection and
relays the reply: a whole body parsed and re-serialised, or a stream's bytes as they arrive,
re-framed as chunks. No authentication, routing, metering, ledger, timeouts or error handling.
What it adds over direct is the extra loopback hop and the interpreter's least work per request.

    UPSTREAM_URL=http://127.0.0.1:PORT UPSTREAM_KEY=sk-... MODEL=gpt-4o-mini \\
        python benchmarks/gateway/raw_floor.py LISTEN_PORT
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any, cast

import httptools
import orjson
import uvloop

UPSTREAM_PORT = int(os.environ.get("UPSTREAM_URL", "http://127.0.0.1:1").rsplit(":", 1)[1])
KEY = os.environ.get("UPSTREAM_KEY", "").encode()
MODEL = os.environ.get("MODEL", "gpt-4o-mini")
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
               b"transfer-encoding: chunked\r\n\r\n")


class Upstream(asyncio.Protocol):
    """One kept-alive upstream connection, relaying the response to its current client."""

    idle: list[Upstream] = []

    def __init__(self) -> None:
        self.client: Client | None = None
        self.stream = False
        self.parts: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.parser: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def send(self, client: Client, request: bytes, stream: bool) -> None:
        assert self.transport is not None
        self.client, self.stream = client, stream
        self.parser = httptools.HttpResponseParser(self)
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_headers_complete(self) -> None:
        if self.stream and self.client is not None:
            self.client.write(STREAM_HEAD)

    def on_body(self, body: bytes) -> None:
        if self.stream and self.client is not None:
            self.client.write(b"%x\r\n%s\r\n" % (len(body), body))
        else:
            self.parts.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            if self.stream:
                client.write(b"0\r\n\r\n")
            else:
                body = orjson.dumps(orjson.loads(b"".join(self.parts)))
                client.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))
        self.parts = []
        Upstream.idle.append(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self in Upstream.idle:
            Upstream.idle.remove(self)


class Client(asyncio.Protocol):
    """One client connection: a POST is forwarded, anything else answered ``ok``."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.parts: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_body(self, body: bytes) -> None:
        self.parts.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_method() != b"POST":  # readiness
            self.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
            return
        request = orjson.loads(b"".join(self.parts))
        self.parts = []
        request["model"] = MODEL
        body = orjson.dumps(request)
        data = (b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                b"authorization: Bearer %s\r\ncontent-type: application/json\r\n"
                b"content-length: %d\r\n\r\n%s" % (KEY, len(body), body))
        stream = bool(request.get("stream"))
        if Upstream.idle:
            Upstream.idle.pop().send(self, data, stream)
        else:
            asyncio.get_running_loop().create_task(self._connect(data, stream))

    async def _connect(self, data: bytes, stream: bool) -> None:
        _, upstream = await asyncio.get_running_loop().create_connection(
            Upstream, "127.0.0.1", UPSTREAM_PORT)
        upstream.send(self, data, stream)


async def main(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Client, "127.0.0.1", port)
    await server.serve_forever()


if __name__ == "__main__":
    uvloop.run(main(int(sys.argv[1])))
