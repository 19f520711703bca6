"""Anthropic's Messages API (``POST {base_url}/v1/messages``).

Translation choices:

- ``max_tokens`` is required by Anthropic: a request without one asks for
  :data:`DEFAULT_MAX_TOKENS`;
- temperature is clamped to Anthropic's 0..1 (both are softmax temperatures, so values up to 1
  mean the same; OpenAI's 1..2 has no equivalent); temperature and ``top_p`` are only sent
  when they differ from the default 1.0, as recent Claude models refuse both together;
- system and developer messages, wherever they stand, are joined into ``system``;
- tool results become ``tool_result`` blocks of a user turn, and consecutive turns of one role
  are merged, as Anthropic expects; empty turns are left out (Anthropic refuses them); tool
  call ids are reduced to the characters it accepts;
- ``parallel_tool_calls: false`` becomes ``disable_parallel_tool_use``; ``seed`` is dropped;
- ``response_format`` (JSON, or a JSON schema) becomes an answer tool the model is made to
  call, whose input comes back as the answer's text (``anthropic_answer.py``).

Usage is normalised to the canonical convention: ``prompt_tokens`` = input + cache reads +
cache writes.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any, ClassVar

import orjson

from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolChoice,
    Usage,
    UsageSink,
    Wire,
)
from inferplane.providers.anthropic_answer import AnswerAsText, answer_choice, answer_tool
from inferplane.providers.base import register
from inferplane.providers.hosted import HostedProvider
from inferplane.providers.upstream import get, malformed
from inferplane.routing.retry import is_retryable

ANTHROPIC_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MAX_TEMPERATURE = 1.0
JOIN = "\n\n"

def _is_stop(name: str, _data: bytes) -> bool:
    """A stream's last event."""
    return name == "message_stop"


_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "tool_use": "tool_calls", "refusal": "content_filter",
}
_CHOICE: dict[str, str] = {"auto": "auto", "none": "none", "required": "any", "function": "tool"}
# The HTTP status Anthropic answers each error type with, for errors sent inside a stream.
_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "request_too_large": 413,
    "rate_limit_error": 429, "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}
_TOOL_ID = re.compile(r"[^a-zA-Z0-9_-]")


@register
class AnthropicProvider(HostedProvider):
    name = "anthropic"
    endpoints = frozenset({"chat.completions"})
    extensions: ClassVar[Wire | None] = "anthropic"  # top_k, thinking, service_tier as sent
    features = frozenset({"response_format"})  # through the answer tool
    default_base_url = "https://api.anthropic.com"

    def auth_headers(self, key: str) -> dict[str, str]:
        """``x-api-key``; ``anthropic-version`` goes with each request (see :meth:`_headers`)."""
        return {"x-api-key": key}

    @property
    def url(self) -> str:
        """``{base_url}/v1/messages``; a base URL that already ends in ``/v1`` is accepted."""
        base = self.base_url.removesuffix("/v1")
        return f"{base}/v1/messages"

    def _headers(self) -> dict[str, str]:
        """``anthropic-version`` on every request, unless the deployment sets its own."""
        if any(k.lower() == "anthropic-version" for k in self.deployment.headers):
            return {}
        return {"anthropic-version": ANTHROPIC_VERSION}

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        deadline = self.http.deadline()
        tool = None if request.response_format is None else answer_tool(
            request.response_format, [t.name for t in request.tools])
        body = request_body(request, self.upstream_model, tool)
        answer = None if tool is None else AnswerAsText(tool["name"])
        response = await self.http.post(self.url, body, deadline, self._headers())
        if not request.stream:
            events = response_events(await self.http.read_json(response, deadline),
                                     self.deployment.name)
            yield Started()
            for event in events:
                if (out := event if answer is None else answer(event)) is not None:
                    yield out
            return
        reader = EventReader(self.deployment.name)
        started = False
        async with aclosing(self.http.events(response, deadline, last=_is_stop)) as stream:
            async for batch in stream:
                for name, data in batch:
                    events = reader.feed(name, data)  # an error event raises before Started
                    if not started:
                        started = True
                        yield Started(reader.usage().prompt_tokens)
                    for event in events:
                        if (out := event if answer is None else answer(event)) is not None:
                            yield out
                    if reader.done:
                        return
        raise UpstreamError(f"{self.deployment.name} ended its stream before message_stop",
                            retryable=True, code="upstream_disconnected")


def request_body(request: GenerationRequest, model: str,
                 answer: dict[str, Any] | None = None) -> dict[str, Any]:
    """The canonical chat request as a Messages API body; ``answer``: the answer tool that
    carries a response format (``anthropic_answer.py``)."""
    p = request.params
    system, turns = messages(request.messages)
    body: dict[str, Any] = {  # an Anthropic client's own fields first: the gateway's win
        **request.extensions,
        "model": model, "max_tokens": p.max_tokens or DEFAULT_MAX_TOKENS, "messages": turns,
    }
    if system:
        body["system"] = system
    if request.stream:
        body["stream"] = True
    if p.temperature != 1.0:
        body["temperature"] = min(p.temperature, MAX_TEMPERATURE)
    if p.top_p != 1.0:
        body["top_p"] = p.top_p
    if p.stop:
        body["stop_sequences"] = list(p.stop)
    if request.tools:
        body["tools"] = [_tool(t.name, t.description, dict(t.parameters)) for t in request.tools]
        choice = tool_choice(request.tool_choice, request.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    if answer is not None:
        body["tools"] = [*body.get("tools", ()), answer]
        body["tool_choice"] = answer_choice(answer["name"], body.get("tool_choice"),
                                            bool(request.tools))
    if request.user is not None:
        body["metadata"] = {"user_id": request.user}
    return body


def messages(canonical: tuple[Message, ...]) -> tuple[str, list[dict[str, Any]]]:
    """The ``system`` text and the alternating user/assistant turns."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for m in canonical:
        if m.role in ("system", "developer"):
            if m.content:
                system.append(m.content)
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if not blocks:  # Anthropic refuses empty turns; the turns around it merge instead
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:  # a lone text block is sent as a plain string
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return JOIN.join(system), turns


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": tool_id(m.tool_call_id)}
        if m.content:
            block["content"] = m.content
        return [block]
    blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] if m.content else []
    blocks += [{"type": "tool_use", "id": tool_id(c.id), "name": c.name,
                "input": _input(c.arguments)} for c in m.tool_calls]
    return blocks


def tool_id(call_id: str | None) -> str:
    """A tool call id in the characters Anthropic accepts.

    >>> tool_id("call_1"), tool_id("fc:1/2"), tool_id(None)
    ('call_1', 'fc_1_2', 'toolu_')
    """
    return _TOOL_ID.sub("_", call_id or "") or "toolu_"


def _input(arguments: str) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments) if arguments else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _tool(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """Anthropic requires ``input_schema.type``: a schema without one gets ``object``."""
    tool: dict[str, Any] = {"name": name, "input_schema": {"type": "object", **schema}}
    if description:
        tool["description"] = description
    return tool


def tool_choice(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """Anthropic's ``tool_choice``, or None to leave its default (auto, parallel calls)."""
    if choice is None and parallel is not False:
        return None
    mode = "auto" if choice is None else choice.mode
    out: dict[str, Any] = {"type": _CHOICE[mode]}
    if choice is not None and choice.mode == "function":
        out["name"] = choice.name
    if parallel is False and mode != "none":
        out["disable_parallel_tool_use"] = True
    return out


def usage(data: Any) -> Usage:
    """Anthropic's ``usage`` object in the canonical convention (cache tokens included)."""
    read = _count(data, "cache_read_input_tokens")
    write = _count(data, "cache_creation_input_tokens")
    return Usage(
        prompt_tokens=_count(data, "input_tokens") + read + write,
        completion_tokens=_count(data, "output_tokens"),
        cached_tokens=read, cache_write_tokens=write,
        reasoning_tokens=_count(data, "output_tokens_details", "thinking_tokens"),
    )


def finish_reason(value: Any) -> FinishReason:
    return _FINISH.get(value, "stop") if isinstance(value, str) else "stop"


def response_events(data: Any, name: str) -> list[StreamEvent]:
    """A whole (non-streamed) response as canonical events."""
    if get(data, "type") == "error":
        raise upstream_error(name, data)
    content = get(data, "content")
    if not isinstance(content, list):
        raise malformed(name, "a message without content")
    events: list[StreamEvent] = []
    tools = 0
    for block in content:
        kind = get(block, "type")
        if kind == "text" and get(block, "text"):
            events.append(TextDelta(block["text"]))
        elif kind == "tool_use":
            events.append(ToolCallDelta(tools, _arguments(get(block, "input")),
                                        get(block, "id") or f"toolu_{tools}", get(block, "name")))
            tools += 1
    events.append(Finished(finish_reason(get(data, "stop_reason")), usage(get(data, "usage")),
                           stop_sequence=get(data, "stop_sequence")))
    return events


def upstream_error(name: str, payload: Any) -> UpstreamError:
    """An ``error`` event or body as an :class:`UpstreamError` (overloaded: retryable)."""
    kind = get(payload, "error", "type")
    status = _ERROR_STATUS.get(kind, 500) if isinstance(kind, str) else 500
    message = get(payload, "error", "message") or kind or "error"
    return UpstreamError(f"{name}: {message}", upstream_status=status,
                         retryable=is_retryable(status, "http"))


class EventReader:
    """Stream events -> canonical events. Tool blocks are numbered among tool blocks only;
    usage from ``message_start`` is overwritten by the cumulative counts of ``message_delta``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.done = False
        self._counts: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # content block index -> tool ordinal
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        self._handlers: dict[str, Callable[[Any], list[StreamEvent]]] = {
            "message_start": self._message_start, "content_block_start": self._block_start,
            "content_block_delta": self._block_delta, "message_delta": self._message_delta,
            "message_stop": self._message_stop, "error": self._error,
        }

    def feed(self, name: str, data: bytes) -> list[StreamEvent]:
        """The canonical events of one SSE event; ping and unknown events give none."""
        try:
            payload = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed(self.name, "a stream event that is not JSON") from None
        kind = get(payload, "type") or name
        handler = self._handlers.get(kind)
        return handler(payload) if handler is not None else []

    def usage(self) -> Usage:
        return usage(self._counts)

    def _message_start(self, payload: Any) -> list[StreamEvent]:
        self._merge(get(payload, "message", "usage"))
        return []

    def _block_start(self, payload: Any) -> list[StreamEvent]:
        block = get(payload, "content_block")
        kind = get(block, "type")
        if kind == "text":
            text = get(block, "text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind != "tool_use":
            return []  # thinking and server-tool blocks are not forwarded
        ordinal = len(self._tools)
        self._tools[get(payload, "index") or 0] = ordinal
        return [ToolCallDelta(ordinal, _arguments(get(block, "input")),
                              get(block, "id") or f"toolu_{ordinal}", get(block, "name") or "")]

    def _block_delta(self, payload: Any) -> list[StreamEvent]:
        delta = get(payload, "delta")
        kind = get(delta, "type")
        if kind == "text_delta":
            text = get(delta, "text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        ordinal = self._tools.get(get(payload, "index") or 0)
        piece = get(delta, "partial_json")
        if kind == "input_json_delta" and ordinal is not None and isinstance(piece, str) and piece:
            return [ToolCallDelta(ordinal, piece)]
        return []

    def _message_delta(self, payload: Any) -> list[StreamEvent]:
        self._stop_reason = get(payload, "delta", "stop_reason")
        sequence = get(payload, "delta", "stop_sequence")
        self._stop_sequence = sequence if isinstance(sequence, str) else None
        self._merge(get(payload, "usage"))
        return []

    def _message_stop(self, payload: Any) -> list[StreamEvent]:
        self.done = True
        return [Finished(finish_reason(self._stop_reason), self.usage(),
                         stop_sequence=self._stop_sequence)]

    def _error(self, payload: Any) -> list[StreamEvent]:
        raise upstream_error(self.name, payload)

    def _merge(self, counts: Any) -> None:
        if isinstance(counts, dict):
            self._counts.update({k: v for k, v in counts.items() if v is not None})


def _arguments(value: Any) -> str:
    """A tool block's ``input`` as JSON text; an empty object (a stream's start) as ''."""
    return orjson.dumps(value).decode() if isinstance(value, dict) and value else ""


def _count(data: Any, *path: str) -> int:
    value = get(data, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
