"""Responses items <-> the canonical conversation, and the response object: pure functions.

Items are in their stored form (``api/responses_parse.py``): messages with text parts,
``function_call`` and ``function_call_output``. A run of function calls (after the assistant's
text, if any) is one assistant turn with tool calls; each output answers its call as a
``tool`` turn. ``instructions`` lead as a system turn.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from inferplane.api.responses_parse import ResponsesCall, new_id
from inferplane.errors import InferplaneError, InvalidRequest
from inferplane.protocol.types import (
    FinishReason,
    GenerationRequest,
    Message,
    Role,
    ToolCall,
    Usage,
)

Status = Literal["completed", "incomplete", "in_progress", "failed"]
#: Why an answer ended short, as ``incomplete_details.reason`` says it.
INCOMPLETE: dict[FinishReason, str] = {"length": "max_output_tokens",
                                       "content_filter": "content_filter"}


def text_of(item: dict[str, Any]) -> str:
    """A message item's text: its text parts joined."""
    return "".join(part.get("text", "") for part in item.get("content", ()))


def conversation(instructions: str | None, items: Iterable[dict[str, Any]]
                 ) -> tuple[Message, ...]:
    """The canonical turns of ``items`` (a chain's and the request's own, oldest first); a
    function call's output without the call before it is a 400.

    >>> turns = conversation("Be brief.", [
    ...     {"type": "message", "role": "user", "content": [{"text": "Weather?"}]},
    ...     {"type": "function_call", "call_id": "c1", "name": "weather", "arguments": "{}"},
    ...     {"type": "function_call_output", "call_id": "c1", "output": "sunny"}])
    >>> for t in turns:
    ...     print(t.role, repr(t.content), [c.name for c in t.tool_calls], t.name)
    system 'Be brief.' [] None
    user 'Weather?' [] None
    assistant '' ['weather'] None
    tool 'sunny' [] weather
    """
    turns: list[Message] = [Message("system", instructions)] if instructions else []
    names: dict[str, str] = {}  # call id -> the function's name, for the tool turn
    for item in items:
        kind = item["type"]
        if kind == "function_call":
            call = ToolCall(item["call_id"], item["name"], item["arguments"])
            names[call.id] = call.name
            last = turns[-1] if turns else None
            if last is not None and last.role == "assistant":
                turns[-1] = Message("assistant", last.content, (*last.tool_calls, call))
            else:
                turns.append(Message("assistant", "", (call,)))
        elif kind == "function_call_output":
            if item["call_id"] not in names:  # every upstream refuses an unasked answer
                raise InvalidRequest(f"No function_call with call_id '{item['call_id']}' comes "
                                     "before its function_call_output in the conversation.",
                                     param="input")
            turns.append(Message("tool", item["output"], tool_call_id=item["call_id"],
                                 name=names.get(item["call_id"])))
        else:
            role: Role = item["role"]
            turns.append(Message(role, text_of(item)))
    return tuple(turns)


def generation_request(call: ResponsesCall, history: Sequence[dict[str, Any]],
                       request_id: str, created: int) -> GenerationRequest:
    """The canonical request: the chain's items (``history``), then the call's own.
    Translated for every upstream (``wire`` None), shaped as a chat request."""
    return GenerationRequest(
        id=request_id, endpoint="chat.completions", model=call.model, params=call.params,
        messages=conversation(call.instructions, [*history, *call.items]),
        stream=call.stream, created=created, tools=call.tools, tool_choice=call.tool_choice,
        parallel_tool_calls=call.parallel_tool_calls, user=call.user,
        response_format=call.response_format, extensions=call.extensions,
        extensions_wire="responses" if call.extensions else None)


def status_of(finish_reason: FinishReason) -> tuple[Status, dict[str, str] | None]:
    """A finished answer's status and ``incomplete_details``."""
    reason = INCOMPLETE.get(finish_reason)
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def message_item(item_id: str, text: str, status: Status) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status,
            "content": [text_part(text)]}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(item_id: str, call: ToolCall, status: Status) -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "status": status, "call_id": call.id,
            "name": call.name, "arguments": call.arguments}


def output_items(text: str, calls: Sequence[ToolCall], finish_reason: FinishReason
                 ) -> list[dict[str, Any]]:
    """A whole answer's output: its text as one message (unless it only called tools), then
    one ``function_call`` item per call."""
    status, _ = status_of(finish_reason)
    items = [message_item(new_id("msg_"), text, status)] if text or not calls else []
    return items + [function_call_item(new_id("fc_"), c, "completed") for c in calls]


def usage(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.prompt_tokens,
            "input_tokens_details": {"cached_tokens": u.cached_tokens,
                                     "cache_write_tokens": u.cache_write_tokens},
            "output_tokens": u.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.total_tokens}


def error_of(exc: InferplaneError) -> dict[str, str]:
    """A failed response's ``error``: OpenAI's codes are few (rate limit, or the server)."""
    code = "rate_limit_exceeded" if exc.status == 429 else "server_error"
    return {"code": code, "message": exc.message}


def response_object(response_id: str, created_at: int, call: ResponsesCall, status: Status,
                    output: list[dict[str, Any]], *, usage: dict[str, Any] | None = None,
                    incomplete: dict[str, str] | None = None,
                    error: dict[str, str] | None = None,
                    completed_at: int | None = None) -> dict[str, Any]:
    """The response object, as returned, streamed in lifecycle events and stored."""
    return {
        "id": response_id, "object": "response", "created_at": created_at, "status": status,
        "completed_at": completed_at, "error": error, "incomplete_details": incomplete,
        "instructions": call.instructions, "max_output_tokens": call.params.max_tokens,
        "model": call.model, "output": output,
        "parallel_tool_calls": call.parallel_tool_calls is not False,
        "previous_response_id": call.previous_response_id,
        "temperature": call.params.temperature, "top_p": call.params.top_p,
        "tool_choice": call.tool_choice_json, "tools": list(call.tools_json),
        "text": call.text, "truncation": "disabled", "usage": usage, "user": call.user,
        "metadata": call.metadata, "store": call.store, "background": False,
        "service_tier": "default",
    }
