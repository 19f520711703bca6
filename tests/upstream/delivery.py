"""Writing a rendered response to the client, paced and broken as its ``Plan`` says.

Pacing: a whole successful body waits ``think_ms + token_delay_ms * tokens``; a stream sends
its headers at once, waits ``think_ms`` before the first chunk and ``token_delay_ms`` before each
later one. With no delay and no fault a stream is written in one go (each chunk still its own
event). Error bodies are not paced.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .connection import Connection
from .faults import Plan
from .settings import Settings
from .wire import Body, Stream

Headers = list[tuple[bytes, bytes]]
DRIP_PARTS = 4


def corrupt(chunks: list[bytes]) -> list[bytes]:
    """The chunks with the second one (the first, if alone) cut in the middle of its JSON.

    >>> corrupt([b'data: {"a":1}\\n\\n'])
    [b'data: {"a\\n\\n']
    """
    i = 1 if len(chunks) > 1 else 0
    chunk = chunks[i]
    end = len(chunk.rstrip(b"\r\n"))
    at = chunk.find(b"data: ")
    start = at + 6 if at >= 0 else 0
    broken = chunk[: start + (end - start) // 2] + chunk[end:]
    return [*chunks[:i], broken, *chunks[i + 1 :]]


async def sleep_ms(ms: float) -> None:
    if ms > 0:
        await asyncio.sleep(ms / 1000)


async def deliver_body(conn: Connection, body: Body, plan: Plan, settings: Settings,
                       headers: Headers) -> None:
    pacing = settings.think_ms + settings.token_delay_ms * body.tokens if body.status == 200 else 0
    await sleep_ms(pacing + plan.first_delay * 1000)
    payload = body.payload[: len(body.payload) // 2] if plan.malformed else body.payload
    headers = [(b"content-type", body.content_type),
               (b"content-length", str(len(payload)).encode()), *body.headers, *headers]
    await conn.start(body.status, headers)
    if plan.cut_after is not None:
        await conn.write(payload[: len(payload) // 2])
        await _cut(conn, plan, b"")
        return
    if not plan.chunk_delay:
        await conn.write(payload, more=False)
        return
    step = -(-len(payload) // DRIP_PARTS)
    for i in range(0, len(payload), step):
        await sleep_ms(plan.chunk_delay * 1000)
        await conn.write(payload[i : i + step])
    await conn.write(b"", more=False)


async def deliver_stream(conn: Connection, stream: Stream, plan: Plan, settings: Settings,
                         headers: Headers, error_event: Callable[[int | None], bytes]) -> None:
    await conn.start(200, [(b"content-type", stream.content_type),
                           (b"cache-control", b"no-cache"), *stream.headers, *headers])
    chunks = corrupt(stream.chunks) if plan.malformed else stream.chunks
    first = settings.think_ms + (plan.first_delay + plan.chunk_delay) * 1000
    gap = settings.token_delay_ms + plan.chunk_delay * 1000
    if not first and not gap and plan.cut_after is None:
        await conn.write(b"".join(chunks), more=False)
        return
    for i, chunk in enumerate(chunks):
        if i == plan.cut_after:
            await _cut(conn, plan, error_event(plan.error_status))
            return
        await sleep_ms(first if i == 0 else gap)
        await conn.write(chunk)
    if plan.cut_after is not None:
        await _cut(conn, plan, error_event(plan.error_status))
        return
    await conn.write(b"", more=False)


async def _cut(conn: Connection, plan: Plan, error: bytes) -> None:
    """End the response as the fault says: reset, bare close, hang, or an in-stream error."""
    if plan.cut == "hang":
        await conn.wait_disconnect()
    elif plan.cut == "error":
        await conn.write(error, more=False)
    else:
        await conn.abort(plan.cut)
