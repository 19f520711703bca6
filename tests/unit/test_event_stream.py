"""EventStreamResponse: frames that are ready share a write, nothing ready waits, and a client
leaving cancels the body wherever it is (at a wait of its own, or behind a blocked write)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, MutableMapping
from typing import Any

import pytest

from inferplane.api import event_stream as sse
from inferplane.api.event_stream import EventStreamResponse


class Client:
    """The ASGI side: records what is sent; ``leave()`` makes receive() report a disconnect;
    with ``stall_from = n``, the n-th body write (1-based) and those after it never return."""

    def __init__(self) -> None:
        self.sent: list[MutableMapping[str, Any]] = []
        self.left = asyncio.Event()
        self.stall_from: int | None = None
        self.wrote = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.left.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)
        self.wrote.set()
        if self.stall_from is not None and len(self.bodies) >= self.stall_from:
            await asyncio.Event().wait()  # a client that reads nothing more

    def leave(self) -> None:
        self.left.set()

    @property
    def bodies(self) -> list[tuple[bytes, bool]]:
        return [(m["body"], m["more_body"]) for m in self.sent
                if m["type"] == "http.response.body"]


async def serve(body: AsyncGenerator[bytes, None], client: Client) -> None:
    await EventStreamResponse(body)({"type": "http"}, client.receive, client.send)


async def test_the_first_frame_at_once_then_those_ready_together_with_the_end() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        for i in range(5):
            yield b"data: %d\n\n" % i

    client = Client()
    await serve(body(), client)
    assert client.sent[0]["type"] == "http.response.start"
    assert client.bodies == [(b"data: 0\n\n", True),
                             (b"".join(b"data: %d\n\n" % i for i in range(1, 5)), False)]


async def test_a_ready_frame_goes_out_before_the_body_waits() -> None:
    upstream = asyncio.Event()

    async def body() -> AsyncGenerator[bytes, None]:
        yield b"first\n\n"
        yield b"second\n\n"
        yield b"third\n\n"
        await upstream.wait()  # the next token is slow
        yield b"fourth\n\n"

    client = Client()
    task = asyncio.create_task(serve(body(), client))
    await asyncio.wait_for(client.wrote.wait(), 1)
    await asyncio.sleep(0.01)
    ready = [(b"first\n\n", True), (b"second\n\nthird\n\n", True)]
    assert client.bodies == ready  # not held back for the fourth
    upstream.set()
    await asyncio.wait_for(task, 1)
    assert client.bodies == [*ready, (b"fourth\n\n", False)]


async def test_empty_frames_are_skipped_and_an_empty_body_still_ends() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b""
        await asyncio.sleep(0)
        yield b""

    client = Client()
    await serve(body(), client)
    assert client.bodies == [(b"", False)]


async def test_a_burst_is_cut_into_writes_of_bounded_size(monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    monkeypatch.setattr(sse, "MAX_BATCH_BYTES", 100)

    async def body() -> AsyncGenerator[bytes, None]:
        for _ in range(10):
            yield b"x" * 40

    client = Client()
    await serve(body(), client)
    sizes = [len(b) for b, _ in client.bodies]
    assert sizes[0] == 40  # the first frame alone
    assert sum(sizes) == 400 and max(sizes) <= 120 and len(sizes) >= 4


async def test_leaving_while_the_body_waits_cancels_it_and_runs_its_cleanup() -> None:
    cleaned = asyncio.Event()

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"first\n\n"
            await asyncio.Event().wait()  # an upstream that never sends again
            yield b"never\n\n"
        finally:
            await asyncio.sleep(0)  # cleanup that itself awaits (closing the upstream)
            cleaned.set()

    client = Client()
    task = asyncio.create_task(serve(body(), client))
    await asyncio.wait_for(client.wrote.wait(), 1)
    client.leave()
    await asyncio.wait_for(task, 1)
    assert cleaned.is_set()
    assert client.bodies == [(b"first\n\n", True)]


async def test_leaving_while_a_write_is_blocked_unwinds_the_waiting_body() -> None:
    """The body is suspended at its own wait while the ready frames are being written; the
    client leaves during that write: the cancellation reaches the body, whose cleanup runs,
    and closing the body afterwards does not fail."""
    cleaned = asyncio.Event()

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"first\n\n"
            yield b"second\n\n"
            await asyncio.sleep(10)  # suspended here while "second" is written
            yield b"never\n\n"
        finally:
            await asyncio.sleep(0)
            cleaned.set()

    client = Client()
    client.stall_from = 2
    task = asyncio.create_task(serve(body(), client))
    await asyncio.sleep(0.05)
    assert client.bodies == [(b"first\n\n", True), (b"second\n\n", True)]  # stuck there
    client.leave()
    await asyncio.wait_for(task, 1)
    assert cleaned.is_set()


async def test_an_error_in_the_body_propagates() -> None:
    async def body() -> AsyncGenerator[bytes, None]:
        yield b"first\n\n"
        await asyncio.sleep(0)
        raise RuntimeError("broken")

    client = Client()
    with pytest.raises(RuntimeError, match="broken"):
        await serve(body(), client)
    assert client.bodies == [(b"first\n\n", True)]


async def test_a_cancellation_from_elsewhere_is_not_swallowed() -> None:
    """The server cancelling the request (shutdown) is not a client leaving: it propagates,
    and the body is cleaned up all the same."""
    cleaned = asyncio.Event()

    async def body() -> AsyncGenerator[bytes, None]:
        try:
            yield b"first\n\n"
            await asyncio.Event().wait()
            yield b"never\n\n"
        finally:
            cleaned.set()

    client = Client()
    task = asyncio.create_task(serve(body(), client))
    await asyncio.wait_for(client.wrote.wait(), 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()
