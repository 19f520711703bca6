"""Canonical results -> Anthropic Messages responses, stream frames and errors (as bytes).

Usage: Anthropic's ``input_tokens`` excludes cache reads and writes, so it is the canonical
``prompt_tokens - cached_tokens - cache_write_tokens``.

Error statuses, chosen for what the Anthropic SDKs do with them: each status keeps its meaning
except 503 (nothing can serve the request now), sent as Anthropic's own 529 ``overloaded_error``
so clients see the ``OverloadedError`` they already handle; 504 is ``timeout_error`` (the type
Anthropic's SDK names for it). Every 5xx is retried by the SDKs, except where
``x-should-retry: false`` says an upstream error will not go away.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from inferplane.errors import InferplaneError, RateLimited, UpstreamError
from inferplane.protocol.types import (
    Finished,
    FinishReason,
    GenerationRequest,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

REQUEST_ID_HEADER = "request-id"
ID_PREFIX = "msg_"
OVERLOADED = 529

_STOP_REASON: dict[FinishReason, str] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
    "content_filter": "refusal", "cancelled": "end_turn",
}
_STATUS: dict[int, int] = {503: OVERLOADED}
_ERROR_TYPE: dict[int, str] = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
    500: "api_error", 502: "api_error", 504: "timeout_error", OVERLOADED: "overloaded_error",
}


def message_id(request_id: str) -> str:
    """``request_id`` with Anthropic's ``msg_`` prefix.

    >>> message_id("msg_1"), message_id("abc")
    ('msg_1', 'msg_abc')
    """
    return request_id if request_id.startswith(ID_PREFIX) else ID_PREFIX + request_id


def usage(u: Usage) -> dict[str, Any]:
    """Canonical usage as Anthropic's ``usage`` object, cache tokens counted apart."""
    out: dict[str, Any] = {
        "input_tokens": max(0, u.prompt_tokens - u.cached_tokens - u.cache_write_tokens),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.completion_tokens,
    }
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return out


def stop_reason(finished: Finished) -> str:
    if finished.finish_reason == "stop" and finished.stop_sequence is not None:
        return "stop_sequence"
    return _STOP_REASON[finished.finish_reason]


def tool_input(arguments: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the ``input`` object; ``{}`` where they are not one.

    >>> tool_input('{"city": "Paris"}'), tool_input('{"city": '), tool_input("[1]")
    ({'city': 'Paris'}, {}, {})
    """
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def message(request: GenerationRequest, text: str, finished: Finished,
            calls: tuple[ToolCall, ...] = ()) -> dict[str, Any]:
    """The whole response of a non-streaming request. Empty text gets no block, as Anthropic
    rejects empty text blocks when a client sends the turn back."""
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
                for c in calls]
    return {
        "id": message_id(request.id), "type": "message", "role": "assistant",
        "model": request.model, "content": content, "stop_reason": stop_reason(finished),
        "stop_sequence": finished.stop_sequence, "usage": usage(finished.usage),
    }


class StreamWriter:
    """Renders the SSE frames of one streaming response, opening and closing content blocks.

    Call :meth:`first` once, then :meth:`text` and :meth:`tool_call` per event, then
    :meth:`finish` and :meth:`done` (or :meth:`error`). Text after a tool call opens a new text
    block; a new tool call index opens a new ``tool_use`` block, closing the one before. A late
    piece of an earlier tool call goes to that call's own block.
    """

    def __init__(self, request: GenerationRequest, prompt_tokens: int = 0) -> None:
        self.request = request
        self.prompt_tokens = prompt_tokens  # known at the start from a local engine only
        self._blocks = 0  # content blocks opened so far
        self._open: int | None = None  # the open block's index
        self._open_is_text = False
        self._tool_blocks: dict[int, int] = {}  # tool call index -> block index

    def first(self) -> bytes:
        """``message_start`` (with the prompt's tokens where known) and a ``ping``."""
        prompt = self.prompt_tokens
        head: dict[str, Any] = {
            "id": message_id(self.request.id), "type": "message", "role": "assistant",
            "model": self.request.model, "content": [], "stop_reason": None,
            "stop_sequence": None,
            # output_tokens 1, as Anthropic sends it; message_delta carries the final count.
            "usage": {**usage(Usage(prompt_tokens=prompt)), "output_tokens": 1},
        }
        return frame("message_start", {"type": "message_start", "message": head}) + self.ping()

    def ping(self) -> bytes:
        return frame("ping", {"type": "ping"})

    def text(self, delta: TextDelta) -> bytes:
        text = delta.text
        if not text:
            return b""
        out = b""
        if self._open is None or not self._open_is_text:
            out = self._close() + self._begin({"type": "text", "text": ""}, is_text=True)
        return out + self._delta(self._block(), {"type": "text_delta", "text": text})

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        out = b""
        if delta.index not in self._tool_blocks:
            block = {"type": "tool_use", "id": delta.id or f"toolu_{self.request.id}_{delta.index}",
                     "name": delta.name or "", "input": {}}
            out = self._close() + self._begin(block, is_text=False)
            self._tool_blocks[delta.index] = self._block()
        if delta.arguments:
            out += self._delta(self._tool_blocks[delta.index],
                               {"type": "input_json_delta", "partial_json": delta.arguments})
        return out

    def finish(self, finished: Finished) -> bytes:
        """Close the open block, then ``message_delta`` with the stop reason and final usage."""
        delta = {"stop_reason": stop_reason(finished), "stop_sequence": finished.stop_sequence}
        return self._close() + frame("message_delta", {"type": "message_delta", "delta": delta,
                                                       "usage": usage(finished.usage)})

    def done(self, _finished: Finished) -> bytes:
        """``message_stop``: the last frame, sent once the ledger has the record."""
        return frame("message_stop", {"type": "message_stop"})

    def error(self, exc: InferplaneError) -> bytes:
        return error_frame(exc)

    def _block(self) -> int:
        assert self._open is not None
        return self._open

    def _begin(self, block: dict[str, Any], *, is_text: bool) -> bytes:
        self._open, self._open_is_text = self._blocks, is_text
        self._blocks += 1
        return frame("content_block_start", {"type": "content_block_start",
                                             "index": self._open, "content_block": block})

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return frame("content_block_delta",
                     {"type": "content_block_delta", "index": index, "delta": delta})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open = self._open, None
        return frame("content_block_stop", {"type": "content_block_stop", "index": index})


def error_status(exc: InferplaneError) -> int:
    """The HTTP status an Anthropic client gets for ``exc``.

    >>> from inferplane.errors import ServiceUnavailable, InvalidRequest
    >>> error_status(ServiceUnavailable("busy")), error_status(InvalidRequest("bad"))
    (529, 400)
    """
    return _STATUS.get(exc.status, exc.status)


def error_type(status: int) -> str:
    """Anthropic's error type for a status it answers with.

    >>> error_type(404), error_type(529), error_type(422), error_type(501)
    ('not_found_error', 'overloaded_error', 'invalid_request_error', 'api_error')
    """
    return _ERROR_TYPE.get(status, "invalid_request_error" if status < 500 else "api_error")


def error_body(exc: InferplaneError, request_id: str | None = None) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}``, with the request id if given."""
    body: dict[str, Any] = {
        "type": "error", "error": {"type": error_type(error_status(exc)), "message": exc.message},
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def error_headers(exc: InferplaneError, request_id: str | None = None) -> dict[str, str]:
    """``request-id``; ``retry-after`` where a wait is known; ``x-should-retry: false`` for an
    upstream error that another attempt will not fix (the SDKs obey it)."""
    headers = {REQUEST_ID_HEADER: request_id} if request_id is not None else {}
    retry_after = exc.retry_after if isinstance(exc, RateLimited | UpstreamError) else None
    if retry_after is not None:
        headers["retry-after"] = str(max(0, math.ceil(retry_after)))
    if isinstance(exc, UpstreamError) and not exc.retryable:
        headers["x-should-retry"] = "false"
    return headers


def error_frame(exc: InferplaneError) -> bytes:
    """An error after the stream began: Anthropic sends an ``error`` event."""
    return frame("error", error_body(exc))


def frame(event: str, payload: dict[str, Any]) -> bytes:
    """One SSE frame: ``event: NAME``, ``data: JSON``, a blank line."""
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
