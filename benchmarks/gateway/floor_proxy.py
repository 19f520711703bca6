"""The floor of a Python gateway on Inferplane's own stack: the least a proxy on uvicorn
(uvloop + httptools) and aiohttp can do, for reference only.

It reads the body, replaces the model, forwards it with one pooled aiohttp session and relays
the reply: a whole body parsed and re-serialised, or a stream's bytes as they arrive, with no
authentication, routing, metering, ledger or translation. What it adds over direct is what the
server, the client library and the extra loopback hop cost before any gateway logic runs.

    UPSTREAM_URL=http://127.0.0.1:PORT UPSTREAM_KEY=sk-... MODEL=gpt-4o-mini \\
        uvicorn --app-dir benchmarks/gateway floor_proxy:app --loop uvloop --http httptools
"""

from __future__ import annotations

import os
from typing import Any

import aiohttp
import orjson

UPSTREAM = os.environ.get("UPSTREAM_URL", "") + "/v1/chat/completions"
HEADERS = {"authorization": f"Bearer {os.environ.get('UPSTREAM_KEY', '')}",
           "content-type": "application/json"}
MODEL = os.environ.get("MODEL", "gpt-4o-mini")

_session: aiohttp.ClientSession | None = None  # one pool, opened at startup


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _session
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        _session = aiohttp.ClientSession()
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await _session.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] != "POST":  # readiness
        await _reply(send, 200, b"text/plain", b"ok")
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    request = orjson.loads(body)
    request["model"] = MODEL
    assert _session is not None
    async with _session.post(UPSTREAM, data=orjson.dumps(request), headers=HEADERS) as up:
        if not request.get("stream"):
            await _reply(send, up.status, b"application/json",
                         orjson.dumps(orjson.loads(await up.read())))
            return
        await send({"type": "http.response.start", "status": up.status,
                    "headers": [(b"content-type", b"text/event-stream")]})
        async for chunk in up.content.iter_any():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _reply(send: Any, status: int, content_type: bytes, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type)]})
    await send({"type": "http.response.body", "body": body})
