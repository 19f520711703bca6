"""An ASGI response for Server-Sent Events that notices a client leaving at once, and writes
the frames that are ready together.

The body iterator is cancelled the moment the client disconnects (not at the next write), so
whatever it holds, an engine slot above all, is released immediately.

The first frame is written at once. After it, frames are written when the body would wait
for more (for the upstream, for the engine) or ends, not one by one: when an upstream delivers
many events in one read, they leave in one socket write instead of one each (at most 8 KiB at a
time, so a long burst still flows), and the last frames share their write with the end of the
response. Nothing waits to be batched: a frame that is ready goes out before the body next
waits.
"""

from __future__ import annotations

import asyncio
import types
from collections.abc import AsyncGenerator, Awaitable, Generator
from typing import Any

from starlette.types import Receive, Scope, Send

MAX_BATCH_BYTES = 8 * 1024  # write at least this often, however fast frames come

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class EventStreamResponse:
    def __init__(self, body: AsyncGenerator[bytes, None],
                 headers: dict[str, str] | None = None) -> None:
        self.body = body
        self.headers = _HEADERS + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        self._pumping = False  # the body is being sent: a disconnect cancels it
        self._left = False  # the client disconnected while it was

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        cancelling = task.cancelling()
        watch = asyncio.create_task(self._watch(receive, task))
        self._pumping = True
        try:
            await self._pump(send)
        except asyncio.CancelledError:
            if not self._left or task.uncancel() > cancelling:  # not (only) the client leaving
                raise
        except OSError:
            pass
        finally:
            self._pumping = False
            watch.cancel()
            await self.body.aclose()

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        """Cancel ``task`` (which pumps the body) the moment the client disconnects."""
        while (await receive())["type"] != "http.disconnect":
            pass
        if self._pumping:
            self._left = True
            task.cancel()

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.headers})
        frames: list[bytes] = []
        size = 0
        limit = 1  # the first frame leaves at once: the client sees the stream start
        next_frame = self.body.__anext__
        while True:
            step = next_frame()
            try:
                waiting = _start(step)  # runs the body until it has a frame or must wait
            except StopIteration as ready:  # a frame, and no wait
                frame = ready.value
            except StopAsyncIteration:
                break
            else:  # the body waits: what is ready goes out meanwhile
                try:
                    if frames:
                        await _write(send, frames, more=True)
                        size, limit = 0, MAX_BATCH_BYTES
                except BaseException as exc:  # cancelled (the client left): the body too
                    await _resume(step, waiting, exc)
                    raise
                try:
                    frame = await _resume(step, waiting)
                except StopAsyncIteration:
                    break
            if frame:
                frames.append(frame)
                size += len(frame)
                if size >= limit:
                    await _write(send, frames, more=True)
                    size, limit = 0, MAX_BATCH_BYTES
        await _write(send, frames, more=False)


async def _write(send: Send, frames: list[bytes], *, more: bool) -> None:
    body = frames[0] if len(frames) == 1 else b"".join(frames)
    frames.clear()
    await send({"type": "http.response.body", "body": body, "more_body": more})


def _start(step: Awaitable[bytes]) -> Any:
    """Run ``step`` (the body's next frame) until it first suspends; return what it waits on.
    Raises :class:`StopIteration` holding the frame when it did not need to wait at all."""
    return step.__await__().send(None)


@types.coroutine
def _resume(step: Awaitable[bytes], waiting: Any, error: BaseException | None = None
            ) -> Generator[Any, Any, bytes]:
    """Drive ``step``, suspended on ``waiting`` by :func:`_start`, to its end, as ``await``
    would: what it waits on goes to the event loop, what the loop sends or throws (a
    cancellation) goes into it. ``error``: throw that into it first."""
    coro: Generator[Any, Any, bytes] = step.__await__()
    while True:
        try:
            if error is not None:
                thrown, error = error, None
                waiting = coro.throw(thrown)
                continue
            try:
                sent = yield waiting
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # thrown in by the task: for the body
                error = exc
                continue
            waiting = coro.send(sent)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
