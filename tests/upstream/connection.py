"""The ASGI side of one exchange: read the body, write a response, wait, or break the connection.

Breaking a connection on purpose needs the socket, which ASGI does not expose; ``Protocol``
is uvicorn's httptools protocol that also puts its transport in the scope under
``TRANSPORT_KEY``. Without it (another server), an abort raises so the server drops the
connection in its own way.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TRANSPORT_KEY = "upstream.transport"
FLUSH_S = 0.02  # let written chunks leave before a reset discards unsent data


class Protocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, exposing the connection's transport to the app, and
    counting the connections clients opened (``opened``, per process)."""

    opened = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Protocol.opened += 1
        super().connection_made(transport)  # type: ignore[arg-type]

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.scope[TRANSPORT_KEY] = self.transport  # type: ignore[literal-required]


class ConnectionAborted(Exception):
    """Raised to make the server drop a connection when its transport is not reachable."""


class Connection:
    """Write helpers over ASGI ``send``/``receive`` for one request."""

    __slots__ = ("receive", "scope", "send")

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send

    async def read_body(self) -> bytes:
        first = await self.receive()
        body = first.get("body", b"")
        if not first.get("more_body"):
            return bytes(body)
        parts = [body]
        while True:
            message = await self.receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(parts)

    async def start(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def write(self, data: bytes, more: bool = True) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": more})

    async def respond(self, status: int, headers: list[tuple[bytes, bytes]],
                      body: bytes) -> None:
        await self.start(status, headers)
        await self.write(body, more=False)

    async def wait_disconnect(self) -> None:
        """Return once the client has gone away."""
        while (await self.receive())["type"] != "http.disconnect":
            pass

    async def abort(self, mode: str) -> None:
        """Break the connection: ``"rst"`` sends a TCP reset, ``"close"`` a bare FIN."""
        transport = self.scope.get(TRANSPORT_KEY)
        if transport is None:
            raise ConnectionAborted(mode)
        await asyncio.sleep(FLUSH_S)
        if mode == "rst":
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
        else:
            transport.close()
        await self.wait_disconnect()
