"""Types shared by the protocol modules: the parsed request, the rendered output, wire errors."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from .settings import Settings

JSON = b"application/json"
SSE = b"text/event-stream; charset=utf-8"

_PREFIX = os.urandom(4).hex()
_SEQ = itertools.count(1)


def new_id(prefix: str) -> str:
    """A unique id in the provider's style, e.g. ``new_id("chatcmpl-")``."""
    return f"{prefix}{_PREFIX}{next(_SEQ):012x}"


def now() -> int:
    return int(time.time())


class WireError(Exception):
    """A request the provider would refuse: rendered in the route's own error format."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


@dataclass(slots=True)
class Request:
    """One HTTP request, headers lower-cased, body parsed as JSON (None for GET)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Body:
    """A complete response body; ``tokens`` paces it when the server simulates decode time."""

    payload: bytes
    status: int = 200
    headers: tuple[tuple[bytes, bytes], ...] = ()
    content_type: bytes = JSON
    tokens: int = 0


@dataclass(frozen=True, slots=True)
class Stream:
    """A streamed response: chunks written one by one (SSE events, or JSON array parts)."""

    chunks: list[bytes]
    content_type: bytes = SSE
    headers: tuple[tuple[bytes, bytes], ...] = ()


Output = Body | Stream
Handler = Callable[[Request, Settings], Output]


def json_body(obj: Any, status: int = 200, headers: tuple[tuple[bytes, bytes], ...] = (),
              tokens: int = 0) -> Body:
    return Body(orjson.dumps(obj), status, headers, JSON, tokens)


def sse(data: Any, event: str | None = None, end: bytes = b"\n\n") -> bytes:
    """One server-sent event carrying ``data`` as JSON.

    >>> sse({"a": 1}, "ping")
    b'event: ping\\ndata: {"a":1}\\n\\n'
    """
    line = b"data: " + orjson.dumps(data) + end
    return b"event: " + event.encode() + b"\n" + line if event else line


def require(body: Any, key: str, message: str) -> Any:
    """``body[key]``, or a 400 naming ``key`` when it is absent."""
    value = body.get(key) if isinstance(body, dict) else None
    if value is None:
        raise WireError(400, message, param=key)
    return value


def check_model(model: Any, settings: Settings, error: Callable[[str], WireError]) -> str:
    """``model`` as a string when this server serves it, else the provider's not-found error."""
    if not isinstance(model, str) or (settings.models and model not in settings.models):
        raise error(str(model))
    return model


def int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise WireError(400, f"Invalid '{name}': expected a non-negative integer.", param=name)
    return value


def stops(value: Any) -> tuple[str, ...]:
    """Stop sequences given as a string or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise WireError(400, "Invalid stop sequences: expected a string or a list of strings.",
                    param="stop")


def prompt_texts(raw: Any) -> list[str] | None:
    """An OpenAI ``prompt`` or ``input`` as strings, or None when it is none of: a string,
    strings, token ids, token-id arrays (ids are joined by spaces).

    >>> prompt_texts([[1, 2], "a"]), prompt_texts([7, 8]), prompt_texts([])
    (['1 2', 'a'], ['7 8'], None)
    """
    if isinstance(raw, str):
        return [raw]
    if not isinstance(raw, list) or not raw:
        return None
    if all(isinstance(t, int) for t in raw):
        return [" ".join(map(str, raw))]
    return [p if isinstance(p, str) else " ".join(map(str, p)) for p in raw]


class Dialect(Protocol):
    """How one provider authenticates and reports errors; one per protocol module."""

    @property
    def name(self) -> str: ...

    @property
    def request_id_header(self) -> bytes: ...

    @property
    def overloaded(self) -> int:
        """The status of an "overloaded" answer, used by in-stream errors by default."""

    @property
    def bad_json(self) -> str: ...

    @property
    def headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """Static headers added to every response (rate-limit and version headers)."""

    def auth_error(self, req: Request, settings: Settings) -> WireError | None: ...

    def error(self, err: WireError) -> Body: ...

    def stream_error(self, status: int) -> bytes: ...
