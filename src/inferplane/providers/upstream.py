"""HTTP upstreams: a pooled client per deployment, its deadlines, SSE reading, error mapping.

Adapters build URLs, bodies and headers and translate payloads; this module owns the transport,
so every adapter times out, reports broken connections and maps error statuses the same way:
each failure becomes an :class:`~inferplane.errors.UpstreamError` saying whether a retry may
help and what ``Retry-After`` asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from inferplane.errors import UpstreamError, UpstreamTimeout
from inferplane.observe.trace_context import with_trace
from inferplane.providers.http_client import ClientError, ConnectError, Pool, Response
from inferplane.providers.sse_decoder import MAX_LINE_BYTES, SseDecoder
from inferplane.routing.retry import is_retryable, parse_retry_after

if TYPE_CHECKING:
    from inferplane.config import TimeoutsConfig

_AUTH_STATUSES = frozenset({401, 403})


@dataclass(slots=True)
class Deadline:
    """The time limits of one upstream request, measured from its start."""

    timeouts: TimeoutsConfig
    start: float = field(default_factory=time.monotonic)

    def remaining(self) -> float:
        return max(0.0, self.start + self.timeouts.total_s - time.monotonic())

    def first_token(self) -> float:
        """Until the first event must have arrived (capped by the total)."""
        left = self.start + self.timeouts.first_token_s - time.monotonic()
        return max(0.0, min(left, self.remaining()))

    def idle(self) -> float:
        """Until the next event must arrive."""
        return min(self.timeouts.idle_s, self.remaining())


class Watchdog:
    """``asyncio.timeout`` for the many short waits of one stream, at the cost of one timer.

    ``async with watchdog.limit(seconds):`` raises :class:`TimeoutError` when the block outlives
    ``seconds``, as ``asyncio.timeout`` does; but instead of a timer per block, one timer stays
    armed and each block only moves the deadline the timer checks when it fires (a stream
    waits for every chunk: a timer each cost a tenth of its CPU). Between blocks nothing is
    watched. Not reentrant; :meth:`close` when done.
    """

    __slots__ = ("_cancelling", "_deadline", "_expired", "_handle", "_loop", "_seconds",
                 "_task")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._seconds = 0.0
        self._deadline: float | None = None  # None: no block running
        self._cancelling = 0
        self._expired = False

    def limit(self, seconds: float) -> Watchdog:
        self._seconds = seconds
        return self

    async def __aenter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._task, self._cancelling, self._expired = task, task.cancelling(), False
        self._deadline = deadline = self._loop.time() + self._seconds
        if self._handle is None or self._handle.when() > deadline:
            if self._handle is not None:
                self._handle.cancel()
            self._handle = self._loop.call_at(deadline, self._fire)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._deadline = None
        if (exc_type is asyncio.CancelledError and self._expired and self._task is not None
                and self._task.uncancel() <= self._cancelling):  # cancelled by us alone
            raise TimeoutError

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if self._deadline is None or self._task is None:
            return  # between blocks: the next one arms it again
        if self._loop.time() < self._deadline:  # moved on since: wake up then instead
            self._handle = self._loop.call_at(self._deadline, self._fire)
            return
        self._expired = True
        self._task.cancel()


class HttpUpstream:
    """One deployment's connection pool. Create in :meth:`start`, release in :meth:`stop`."""

    def __init__(self, name: str, timeouts: TimeoutsConfig) -> None:
        self.name = name
        self.timeouts = timeouts
        self._pool: Pool | None = None

    @property
    def started(self) -> bool:
        return self._pool is not None

    async def start(self, headers: Mapping[str, str]) -> None:
        """Open the pool; ``headers`` (the key among them) go with every request."""
        self._pool = Pool({"content-type": "application/json", **headers},
                          connect_timeout=self.timeouts.connect_s)

    async def stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    def deadline(self) -> Deadline:
        return Deadline(self.timeouts)

    async def post(self, url: str, body: Any, deadline: Deadline,
                   headers: Mapping[str, str] | None = None) -> Response:
        """Send ``body`` as JSON, with the attempt's trace context where tracing is on; the
        response once its headers arrived with a 2xx status."""
        if self._pool is None:
            raise UpstreamError(f"deployment {self.name!r} is not started", retryable=True)
        try:
            async with asyncio.timeout(deadline.first_token()):
                response = await self._pool.request("POST", url, orjson.dumps(body),
                                                    with_trace(headers))
        except TimeoutError:
            raise UpstreamTimeout(f"{self.name} did not answer in time") from None
        except ClientError as exc:
            raise transport_error(self.name, exc) from exc
        if response.status >= 400:
            raise await self._status_error(response, deadline)
        return response

    async def get_json(self, url: str, seconds: float) -> Any:
        """A GET's JSON body within ``seconds`` (a side route: a status, a load report)."""
        if self._pool is None:
            raise UpstreamError(f"deployment {self.name!r} is not started", retryable=True)
        try:
            async with asyncio.timeout(seconds):
                response = await self._pool.request("GET", url)
                raw = await read_all(response, seconds)
        except TimeoutError:
            raise UpstreamTimeout(f"{self.name} did not answer in time") from None
        except ClientError as exc:
            raise transport_error(self.name, exc) from exc
        if response.status >= 400:
            raise UpstreamError(f"{self.name} answered {url} with {response.status}",
                                retryable=True, upstream_status=response.status)
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise malformed(self.name, "a response body that is not JSON") from None

    async def read_json(self, response: Response, deadline: Deadline) -> Any:
        """The whole body, parsed."""
        try:
            raw = await read_all(response, deadline.remaining())
        except TimeoutError:
            raise UpstreamTimeout(f"{self.name} did not finish its response in time") from None
        except ClientError as exc:
            raise transport_error(self.name, exc) from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise malformed(self.name, "a response body that is not JSON") from None

    async def events(self, response: Response, deadline: Deadline,
                     last: Callable[[str, bytes], bool] | None = None
                     ) -> AsyncGenerator[list[tuple[str, bytes]], None]:
        """Server-sent events as ``(event name, data)``, in batches: each batch holds the
        events one read completed, so a burst (a fast upstream writes a whole reply at once)
        costs one read, one timer and one step of the consumer, not one per event. The first
        must arrive within the first-token limit; after it, the stream may fall silent for at
        most the idle limit (any bytes, a keep-alive comment too, count as activity).

        ``last(name, data)`` tells the protocol's final event (OpenAI's ``[DONE]``): closing
        the iterator after the batch holding it, or once the whole body has arrived, keeps
        the connection for the next request; closing it before (the client left midway)
        drops the connection, which tells the upstream to stop generating."""
        decoder = SseDecoder(MAX_LINE_BYTES)
        watchdog = Watchdog()
        first, done = True, False
        try:
            while True:
                chunk = response.read_nowait()  # what has arrived already: no timer needed
                if not chunk and not response.at_eof():
                    wait = deadline.first_token() if first else deadline.idle()
                    try:
                        async with watchdog.limit(wait):
                            chunk = await response.readany()
                    except TimeoutError:
                        what = "start its stream" if first else "continue its stream"
                        raise UpstreamTimeout(f"{self.name} did not {what} in time") from None
                if not chunk:
                    break
                if batch := decoder.feed(chunk):
                    first = False
                    if last is not None and any(last(*event) for event in batch):
                        done = True
                    yield batch
            if batch := decoder.close():
                yield batch
            done = True
        except ClientError as exc:
            done = False
            raise UpstreamError(f"{self.name}: the connection broke mid-stream",
                                retryable=True, code="upstream_disconnected") from exc
        except ValueError as exc:  # a line over MAX_LINE_BYTES
            done = False
            raise malformed(self.name, "an over-long stream line") from exc
        finally:
            watchdog.close()
            if done or response.at_eof():  # nothing of it left unread, or only its end
                response.release()
            else:
                response.close()

    async def _status_error(self, response: Response, deadline: Deadline
                            ) -> UpstreamError:
        status = response.status
        try:
            raw = await read_all(response, min(deadline.remaining(), 5.0))
        except (TimeoutError, ClientError):
            raw = b""
        # Its message may quote part of the key. Gemini answers a wrong key with 400.
        if status in _AUTH_STATUSES or (status == 400 and b"API_KEY_INVALID" in raw):
            message = f"the upstream refused this gateway's credentials ({status})"
            status = 401
        else:
            message = error_message(raw) or response.reason or "error"
        retry_after = parse_retry_after(response.headers.get("retry-after"), time.time())
        return UpstreamError(
            f"{self.name}: {message}", upstream_status=status,
            retryable=is_retryable(status, "status"),
            retry_after=retry_after if retry_after is not None else retry_delay(raw),
        )


async def read_all(response: Response, seconds: float) -> bytes:
    """The whole body, within ``seconds``; the connection is kept when it was read whole and
    dropped when not."""
    complete = False
    try:
        async with asyncio.timeout(seconds):
            raw = await response.read()
        complete = True
        return raw
    finally:
        if complete:
            response.release()
        else:
            response.close()


def transport_error(name: str, exc: ClientError) -> UpstreamError:
    if isinstance(exc, ConnectError):
        return UpstreamError(f"{name} is unreachable", retryable=True,
                             code="upstream_unreachable")
    return UpstreamError(f"{name}: the connection failed ({type(exc).__name__})",
                         retryable=True, code="upstream_disconnected")


def malformed(name: str, what: str) -> UpstreamError:
    return UpstreamError(f"{name} sent {what}", retryable=True, code="upstream_malformed")


def error_message(raw: bytes) -> str:
    """The message in an error body, whichever provider's shape it has.

    >>> error_message(b'{"error": {"message": "bad model", "type": "x"}}')
    'bad model'
    >>> error_message(b'{"type": "error", "error": {"type": "x", "message": "slow down"}}')
    'slow down'
    >>> error_message(b'[{"error": {"code": 400, "message": "no"}}]')
    'no'
    >>> error_message(b'<html>gateway timeout</html>')
    '<html>gateway timeout</html>'
    """
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace").strip()
    if isinstance(body, list) and body:
        body = body[0]
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    if isinstance(error, dict):
        error = error.get("message")
    message = error if isinstance(error, str) else body.get("message") or body.get("detail")
    return message if isinstance(message, str) else ""


def retry_delay(raw: bytes) -> float | None:
    """The wait a Google API error asks for in its body (``RetryInfo.retryDelay``), seconds.

    >>> retry_delay(b'{"error": {"details": [{"@type": "type.googleapis.com/google.rpc.'
    ...             b'RetryInfo", "retryDelay": "3.5s"}]}}')
    3.5
    """
    if b"retryDelay" not in raw:
        return None
    try:
        details = get(orjson.loads(raw), "error", "details")
    except orjson.JSONDecodeError:
        return None
    for detail in details if isinstance(details, list) else []:
        delay = get(detail, "retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def get(data: Any, *path: str | int) -> Any:
    """``data[path[0]][path[1]]...``, or None where a step is missing or of the wrong kind.

    >>> get({"a": [{"b": 1}]}, "a", 0, "b"), get({"a": []}, "a", 0, "b")
    (1, None)
    """
    for step in path:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and -len(data) <= step < len(data) else None
        else:
            data = data.get(step) if isinstance(data, dict) else None
        if data is None:
            return None
    return data
