"""Reading an upstream's server-sent events: the decoder on arbitrary chunkings, and
``HttpUpstream.events`` against a real local server (deadlines, over-long lines)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from inferplane.config import TimeoutsConfig
from inferplane.errors import UpstreamError, UpstreamTimeout
from inferplane.providers.sse_decoder import SseDecoder
from inferplane.providers.upstream import HttpUpstream, Watchdog

STREAM = (
    b": a comment first\r\n"
    b"data: {\"n\": 1}\r\n\r\n"
    b"event: delta\ndata: two\ndata: lines\n\n"
    b"id: 7\nretry: 10\ndata:no-space\n\n"
    b"event: ping\n\n"  # no data: not dispatched, and the name does not leak into the next
    b"data: \xc3\xa9t\xc3\xa9\n\n"
    b"data: [DONE]\n\n"
)
EVENTS = [("message", b'{"n": 1}'), ("delta", b"two\nlines"), ("message", b"no-space"),
          ("message", "été".encode()), ("message", b"[DONE]")]


def decode(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    decoder = SseDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    return events + decoder.close()


def test_whole_stream_in_one_chunk() -> None:
    assert decode([STREAM]) == EVENTS


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 16])
def test_any_chunking_gives_the_same_events(size: int) -> None:
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert decode(chunks) == EVENTS


def test_every_split_point_of_a_crlf_event() -> None:
    raw = b"event: a\r\ndata: x\r\n\r\n"
    for cut in range(len(raw) + 1):
        assert decode([raw[:cut], raw[cut:]]) == [("a", b"x")], cut


def test_a_stream_ending_without_its_blank_line_still_gives_its_last_event() -> None:
    assert decode([b"data: a\n\ndata: b"]) == [("message", b"a"), ("message", b"b")]
    assert decode([b"data: a\n\ndata: b\n"]) == [("message", b"a"), ("message", b"b")]
    assert decode([b"data: a\n\n"]) == [("message", b"a")]


def test_an_over_long_line_is_refused_whole_or_in_pieces() -> None:
    with pytest.raises(ValueError, match="longer than the limit"):
        SseDecoder(max_line=10).feed(b"data: 0123456789\n\n")
    decoder = SseDecoder(max_line=10)
    assert decoder.feed(b"data: 0123") == []
    with pytest.raises(ValueError, match="longer than the limit"):
        decoder.feed(b"456789")  # still no newline: the unfinished line is over the limit
    assert SseDecoder(max_line=10).feed(b"data: 012\n\n" * 5) == [("message", b"012")] * 5


# -- HttpUpstream.events against a real server ---------------------------------------------

Writer = Callable[[web.StreamResponse], Awaitable[None]]


@asynccontextmanager
async def serve(write: Writer) -> AsyncIterator[str]:
    """A local server whose one route answers a POST with what ``write`` writes."""
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await write(response)
        return response

    app = web.Application()
    app.router.add_post("/stream", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/stream"
    finally:
        await runner.cleanup()


async def read_events(write: Writer, **timeouts: float) -> list[tuple[str, bytes]]:
    http = HttpUpstream("up", TimeoutsConfig(**timeouts))
    await http.start({})
    try:
        async with serve(write) as url:
            deadline = http.deadline()
            response = await http.post(url, {}, deadline)
            return [event async for batch in http.events(response, deadline) for event in batch]
    finally:
        await http.stop()


async def timed_failure(write: Writer, **timeouts: float) -> tuple[UpstreamError, float]:
    """The error reading the stream ends with, and the seconds from the request to it (the
    server's handler may go on for longer)."""
    http = HttpUpstream("up", TimeoutsConfig(**timeouts))
    await http.start({})
    try:
        async with serve(write) as url:
            deadline = http.deadline()
            response = await http.post(url, {}, deadline)
            with pytest.raises(UpstreamError) as info:
                async for _ in http.events(response, deadline):
                    pass
            return info.value, time.monotonic() - deadline.start
    finally:
        await http.stop()


async def test_events_spread_over_many_writes() -> None:
    async def write(response: web.StreamResponse) -> None:
        for i in range(0, len(STREAM), 9):
            await response.write(STREAM[i : i + 9])
            await asyncio.sleep(0.001)

    assert await read_events(write) == EVENTS


async def test_gaps_under_the_idle_limit_add_up_past_it_without_a_timeout() -> None:
    async def write(response: web.StreamResponse) -> None:
        for i in range(6):
            await response.write(b"data: %d\n\n" % i)
            await asyncio.sleep(0.1)

    began = time.monotonic()
    events = await read_events(write, idle_s=0.3)
    assert [data for _, data in events] == [b"%d" % i for i in range(6)]
    assert time.monotonic() - began > 0.5


async def test_a_stall_after_the_first_event_times_out_at_the_idle_limit() -> None:
    async def write(response: web.StreamResponse) -> None:
        await response.write(b"data: 1\n\n")
        await asyncio.sleep(1.0)  # longer than the idle limit: only a timeout ends it early

    error, seconds = await timed_failure(write, idle_s=0.3)
    assert isinstance(error, UpstreamTimeout) and "continue its stream" in str(error)
    assert 0.25 < seconds < 2


async def test_comments_do_not_count_as_the_first_event() -> None:
    async def write(response: web.StreamResponse) -> None:
        for _ in range(20):
            await response.write(b": still thinking\n")
            await asyncio.sleep(0.05)

    error, seconds = await timed_failure(write, first_token_s=0.4, idle_s=10)
    assert isinstance(error, UpstreamTimeout) and "start its stream" in str(error)
    assert 0.35 < seconds < 2


async def test_keep_alive_comments_hold_an_idle_stream_open() -> None:
    async def write(response: web.StreamResponse) -> None:
        await response.write(b"data: 1\n\n")
        for _ in range(6):
            await asyncio.sleep(0.1)
            await response.write(b": keep-alive\n")
        await response.write(b"data: 2\n\n")

    assert await read_events(write, idle_s=0.3) == [("message", b"1"), ("message", b"2")]


async def test_an_over_long_line_is_a_malformed_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("inferplane.providers.upstream.MAX_LINE_BYTES", 64)

    async def write(response: web.StreamResponse) -> None:
        await response.write(b"data: 1\n\ndata: " + b"x" * 100)

    error, _ = await timed_failure(write)
    assert error.code == "upstream_malformed"


# -- the watchdog behind the stream's deadlines ---------------------------------------------


async def test_watchdog_times_out_a_block_that_outlives_its_limit() -> None:
    watchdog = Watchdog()
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        async with watchdog.limit(0.05):
            await asyncio.sleep(1)
    assert 0.04 < time.monotonic() - began < 0.5
    await asyncio.sleep(0.01)  # no cancellation left pending on the task
    async with watchdog.limit(1):
        await asyncio.sleep(0.01)
    watchdog.close()


async def test_watchdog_keeps_one_timer_for_many_short_blocks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    armed: list[float] = []
    call_at = loop.call_at

    def counting_call_at(when: float, callback: Callable[..., object], *args: object,
                         **kwargs: Any) -> asyncio.TimerHandle:
        if getattr(callback, "__self__", None) is watchdog:
            armed.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting_call_at)
    watchdog = Watchdog()
    for _ in range(20):  # 20 waits of 10 ms under a 60 ms limit: 200 ms in all, no timeout
        async with watchdog.limit(0.06):
            await asyncio.sleep(0.01)
    watchdog.close()
    assert 1 <= len(armed) <= 6  # re-armed only when it fired early, not per block


async def test_watchdog_arms_earlier_for_a_shorter_limit() -> None:
    watchdog = Watchdog()
    async with watchdog.limit(10):
        await asyncio.sleep(0)
    began = time.monotonic()
    with pytest.raises(TimeoutError):
        async with watchdog.limit(0.05):  # the timer set for 10 s must not be the one used
            await asyncio.sleep(1)
    assert time.monotonic() - began < 0.5
    watchdog.close()


async def test_watchdog_lets_a_cancellation_from_elsewhere_through() -> None:
    watchdog = Watchdog()

    async def wait() -> None:
        async with watchdog.limit(10):
            await asyncio.sleep(10)

    task = asyncio.create_task(wait())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    watchdog.close()
