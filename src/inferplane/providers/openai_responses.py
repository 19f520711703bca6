"""An ``openai`` deployment with ``api: responses``: its upstream is spoken to in OpenAI's
Responses API (``POST {base_url}/responses``), for OpenAI's models that are served only there
and servers that implement it.

Any client protocol reaches it (a Responses client, a chat completions client, an Anthropic
client): the canonical request becomes a Responses body (the conversation as input items,
function tools, ``text.format``) and its typed event stream becomes canonical events, with
the usage of ``response.completed``. The upstream keeps no state for the gateway
(``store: false``): the conversation a ``previous_response_id`` stands for is rebuilt by the
gateway, from its own store, whichever deployment served the earlier turns.

The upstream is always asked to stream, so the usage and the answer arrive the same way for
plain and streamed requests. Stop sequences and seeds have no field in the Responses API: a
request with them is a 400 naming the field, never an answer that ignores them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from inferplane.errors import InvalidRequest, UpstreamError
from inferplane.protocol.types import (
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from inferplane.providers.upstream import HttpUpstream, get, malformed

_INCOMPLETE: dict[str, FinishReason] = {"max_output_tokens": "length",
                                        "content_filter": "content_filter"}
_LAST = frozenset({b"response.completed", b"response.incomplete", b"response.failed"})


async def stream_responses(http: HttpUpstream, base_url: str, model: str,
                           request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
    """The canonical events of ``request`` answered by the Responses API at ``base_url``."""
    deadline = http.deadline()
    response = await http.post(f"{base_url}/responses", request_body(request, model), deadline)
    reader = EventReader(http.name)
    started = False
    async with aclosing(http.events(response, deadline, last=_is_last)) as stream:
        async for batch in stream:
            for name, data in batch:
                if not started:
                    started = True
                    yield Started()
                for event in reader.feed(name, data):
                    yield event
                if reader.finished is not None:
                    yield reader.finished
                    return
    raise UpstreamError(f"{http.name} ended its stream before the response completed",
                        retryable=True, code="upstream_disconnected")


def _is_last(name: str, data: bytes) -> bool:
    return name.encode() in _LAST


def request_body(request: GenerationRequest, model: str) -> dict[str, Any]:
    """The canonical request as a Responses body: a leading system turn as ``instructions``,
    the rest as input items."""
    p = request.params
    if p.stop:
        raise InvalidRequest("Stop sequences are not supported by a deployment that speaks "
                             "the Responses API.", param="stop", code="unsupported_parameter")
    if p.seed is not None:
        raise InvalidRequest("seed is not supported by a deployment that speaks the Responses "
                             "API.", param="seed", code="unsupported_parameter")
    messages = list(request.messages)
    # a Responses client's fields the gateway does not act on (``reasoning``...) first:
    # nothing the gateway sets can be overridden by one
    sent = request.extensions if request.extensions_wire == "responses" else {}
    body: dict[str, Any] = {**sent, "model": model, "stream": True, "store": False,
                            "temperature": p.temperature, "top_p": p.top_p}
    if messages and messages[0].role == "system":
        body["instructions"] = messages.pop(0).content
    body["input"] = [item for m in messages for item in input_items(m)]
    if p.max_tokens is not None:
        body["max_output_tokens"] = p.max_tokens
    if request.tools:
        body["tools"] = [{"type": "function", "name": t.name, "description": t.description,
                          "parameters": dict(t.parameters), "strict": False}
                         for t in request.tools]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = choice.mode if choice.mode != "function" else {
            "type": "function", "name": choice.name}
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.user is not None:
        body["user"] = request.user
    if request.response_format is not None:
        body["text"] = {"format": text_format(request.response_format)}
    return body


def input_items(m: Message) -> list[dict[str, Any]]:
    """One canonical turn as Responses input items.

    >>> from inferplane.protocol.types import ToolCall
    >>> input_items(Message("assistant", "", (ToolCall("c1", "f", "{}"),)))
    [{'type': 'function_call', 'call_id': 'c1', 'name': 'f', 'arguments': '{}'}]
    >>> input_items(Message("tool", "ok", tool_call_id="c1"))
    [{'type': 'function_call_output', 'call_id': 'c1', 'output': 'ok'}]
    """
    if m.role == "tool":
        return [{"type": "function_call_output", "call_id": m.tool_call_id or "",
                 "output": m.content}]
    items: list[dict[str, Any]] = []
    if m.role == "assistant":
        if m.content:
            items.append({"type": "message", "role": "assistant", "content": [
                {"type": "output_text", "text": m.content, "annotations": []}]})
    else:
        items.append({"type": "message", "role": m.role,
                      "content": [{"type": "input_text", "text": m.content}]})
    return items + [{"type": "function_call", "call_id": c.id, "name": c.name,
                     "arguments": c.arguments} for c in m.tool_calls]


def text_format(response_format: Any) -> dict[str, Any]:
    """Chat's ``response_format`` as the Responses API's ``text.format`` (flat).

    >>> text_format({"type": "json_schema", "json_schema": {"name": "A", "schema": {}}})
    {'type': 'json_schema', 'name': 'A', 'schema': {}}
    """
    if response_format.get("type") != "json_schema":
        return dict(response_format)
    return {"type": "json_schema", **response_format["json_schema"]}


def usage(data: Any) -> Usage:
    """The Responses API's ``usage``, with its cached and reasoning token details."""
    return Usage(
        prompt_tokens=get(data, "input_tokens") or 0,
        completion_tokens=get(data, "output_tokens") or 0,
        cached_tokens=get(data, "input_tokens_details", "cached_tokens") or 0,
        reasoning_tokens=get(data, "output_tokens_details", "reasoning_tokens") or 0,
    )


class EventReader:
    """Responses stream events -> canonical events. ``finished``: the :class:`Finished` of
    ``response.completed`` (or ``response.incomplete``) once it arrived."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.finished: Finished | None = None
        self._calls: dict[int, int] = {}  # output_index -> the canonical call index

    def feed(self, name: str, data: bytes) -> list[StreamEvent]:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise malformed(self.name, "a stream event that is not JSON") from None
        if not isinstance(event, dict):
            raise malformed(self.name, "a stream event that is not a JSON object")
        kind = event.get("type") or name
        if kind == "response.output_text.delta":
            delta = event.get("delta")
            return [TextDelta(delta)] if isinstance(delta, str) and delta else []
        if kind == "response.output_item.added" and get(event, "item", "type") == "function_call":
            added = self._calls[event.get("output_index", -1)] = len(self._calls)
            return [ToolCallDelta(added, get(event, "item", "arguments") or "",
                                  get(event, "item", "call_id") or f"call_{added}",
                                  get(event, "item", "name"))]
        if kind == "response.function_call_arguments.delta":
            index = self._calls.get(event.get("output_index", -1))
            delta = event.get("delta")
            if index is None or not isinstance(delta, str):
                raise malformed(self.name, "arguments for a function call never added")
            return [ToolCallDelta(index, delta)] if delta else []
        if kind in ("response.completed", "response.incomplete"):
            response = event.get("response")
            reason = get(response, "incomplete_details", "reason")
            finish = _INCOMPLETE.get(reason, "stop") if isinstance(reason, str) else (
                "tool_calls" if self._calls else "stop")
            self.finished = Finished(finish, usage(get(response, "usage")))
            return []
        if kind in ("response.failed", "error") or event.get("error") is not None:
            message = (get(event, "response", "error", "message") or get(event, "message")
                       or get(event, "error", "message") or "the response failed")
            raise UpstreamError(f"{self.name}: {message}", retryable=True)
        return []
