"""Anthropic Messages wire format: ``POST /v1/messages``, token counting, the model list.

Kept as the real API does it: ``x-api-key`` plus a required ``anthropic-version`` header;
``max_tokens`` required; ``tool_result`` blocks must answer the ``tool_use`` blocks of the turn
before; usage with ``input_tokens`` excluding cache reads; SSE events ``message_start``,
``content_block_start``, ``ping``, ``content_block_delta`` (``text_delta`` /
``input_json_delta``), ``content_block_stop``, ``message_delta``, ``message_stop``; in-stream
failures as ``event: error``. Reasoning tokens are billed in ``output_tokens`` and shown in
``output_tokens_details.thinking_tokens``; no thinking blocks are emitted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from .echo import Prompt, Reply, answer, count_words
from .settings import Settings
from .wire import (
    Body,
    Output,
    Request,
    Stream,
    WireError,
    check_model,
    json_body,
    new_id,
    require,
    sse,
    stops,
)

STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "stop_sequence": "stop_sequence",
               "tool": "tool_use"}

#: status -> (error type, default message)
ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified "
                              "resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit. Please try "
                              "again later."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
DEFAULT_ERROR = ("api_error", "Internal server error")


def error_object(status: int, message: str | None = None) -> dict[str, Any]:
    kind, default = ERRORS.get(status, DEFAULT_ERROR)
    return {"type": "error", "error": {"type": kind, "message": message or default},
            "request_id": new_id("req_011")}


def not_found(model: str) -> WireError:
    return WireError(404, f"model: {model}")


class AnthropicDialect:
    """``x-api-key`` + ``anthropic-version`` auth and ``{"type": "error"}`` bodies."""

    name = "anthropic"
    request_id_header = b"request-id"
    overloaded = 529
    bad_json = "There was an issue with the formatting or content of your request: invalid JSON."
    headers = ((b"anthropic-ratelimit-requests-limit", b"4000"),
               (b"anthropic-ratelimit-requests-remaining", b"3999"),
               (b"anthropic-ratelimit-requests-reset", b"2030-01-01T00:00:00Z"))

    def auth_error(self, req: Request, settings: Settings) -> WireError | None:
        if settings.api_key is not None:
            key = req.headers.get("x-api-key") or req.headers.get("authorization", "")[7:]
            if not key:
                return WireError(401, "x-api-key header is required")
            if key != settings.api_key:
                return WireError(401, "invalid x-api-key")
        if "anthropic-version" not in req.headers and req.method == "POST":
            return WireError(400, "anthropic-version: header is required")
        return None

    def error(self, err: WireError) -> Body:
        return json_body(error_object(err.status, err.message), err.status)

    def stream_error(self, status: int) -> bytes:
        return sse(error_object(status), "error")


@dataclass(slots=True)
class MessagesCall:
    prompt: Prompt
    model: str
    stream: bool


def block_text(block: Any) -> str:
    """The text a content block carries (tool inputs as JSON, tool results' text)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "tool_use":
        return orjson.dumps(block.get("input", {})).decode()
    if kind == "tool_result":
        return content_text(block.get("content", ""))
    if kind == "thinking":
        return str(block.get("thinking", ""))
    return ""


def content_text(content: Any) -> str:
    """A string, or the text of a list of blocks joined by spaces."""
    if isinstance(content, list):
        return " ".join(t for b in content if (t := block_text(b)))
    return content if isinstance(content, str) else ""


def _blocks(content: Any, kind: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [b for b in content if isinstance(b, dict) and b.get("type") == kind]


def _check_turns(messages: list[Any]) -> None:
    """Roles are user/assistant; each ``tool_use`` is answered by a ``tool_result`` next turn."""
    asked: set[str] = set()
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("user", "assistant"):
            raise WireError(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        answered = {b.get("tool_use_id") for b in _blocks(m.get("content"), "tool_result")}
        extra = answered - asked
        if extra:
            raise WireError(400, f"messages.{i}.content.0: unexpected `tool_use_id` found in "
                            f"`tool_result` blocks: {', '.join(map(str, extra))}. Each "
                            "`tool_result` block must have a corresponding `tool_use` block "
                            "in the previous message.")
        if asked - answered:
            raise WireError(400, f"messages.{i - 1}: `tool_use` ids were found without "
                            f"`tool_result` blocks immediately after: "
                            f"{', '.join(sorted(asked - answered))}. Each `tool_use` block must "
                            "have a corresponding `tool_result` block in the next message.")
        asked = {str(b.get("id")) for b in _blocks(m.get("content"), "tool_use")}


def _chosen_tool(tools: list[Any], choice: Any) -> str | None:
    kind = choice.get("type", "auto") if isinstance(choice, dict) else "auto"
    if not tools or kind == "none":
        return None
    if kind == "tool":
        return str(choice.get("name"))
    return str(tools[0].get("name"))


def parse(body: Any, settings: Settings, *, need_max_tokens: bool = True) -> MessagesCall:
    model = check_model(require(body, "model", "model: Field required"), settings, not_found)
    max_tokens = body.get("max_tokens")
    if need_max_tokens and max_tokens is None:
        raise WireError(400, "max_tokens: Field required")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise WireError(400, "max_tokens: Input should be greater than or equal to 1")
    messages = require(body, "messages", "messages: Field required")
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "messages: at least one message is required")
    _check_turns(messages)
    tools = body.get("tools") or []
    texts = [content_text(body.get("system")), *(content_text(m.get("content")) for m in messages)]
    users = [m for m in messages if m["role"] == "user"]
    last_user = next((t for m in reversed(users)
                      if (t := content_text(_blocks(m["content"], "text")
                                            if isinstance(m["content"], list)
                                            else m["content"]))), "")
    results = _blocks(messages[-1].get("content"), "tool_result")
    prompt = Prompt(
        prompt_tokens=count_words(texts) + len(tools),
        last_user=last_user,
        tool_result=content_text(results) if results else None,
        tool=_chosen_tool(tools, body.get("tool_choice")),
        max_tokens=max_tokens,
        stop=stops(body.get("stop_sequences")),
    )
    return MessagesCall(prompt, model, bool(body.get("stream")))


def usage(reply: Reply, settings: Settings) -> dict[str, Any]:
    cached = min(settings.cached_tokens, reply.prompt_tokens)
    out: dict[str, Any] = {
        "input_tokens": reply.prompt_tokens - cached,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": reply.completion_tokens + settings.reasoning_tokens,
        "service_tier": "standard",
    }
    if settings.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": settings.reasoning_tokens}
    return out


def content(reply: Reply, tool_id: str) -> list[dict[str, Any]]:
    if reply.tool_call is None:
        return [{"type": "text", "text": reply.text}]
    return [{"type": "tool_use", "id": tool_id, "name": reply.tool_call.name,
             "input": orjson.loads(reply.tool_call.arguments)}]


def response(call: MessagesCall, reply: Reply, settings: Settings) -> Body:
    return json_body({
        "id": new_id("msg_01"),
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content(reply, new_id("toolu_01")),
        "stop_reason": STOP_REASON[reply.finish],
        "stop_sequence": reply.stop_sequence,
        "usage": usage(reply, settings),
    }, tokens=reply.completion_tokens)


def stream(call: MessagesCall, reply: Reply, settings: Settings) -> Stream:
    final = usage(reply, settings)
    start_usage = {**final, "output_tokens": 1}
    start_usage.pop("output_tokens_details", None)
    message: dict[str, Any] = {"id": new_id("msg_01"), "type": "message", "role": "assistant",
                               "model": call.model, "content": [], "stop_reason": None,
                               "stop_sequence": None, "usage": start_usage}
    tc = reply.tool_call
    if tc is None:
        block: dict[str, Any] = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in reply.pieces]
    else:
        block = {"type": "tool_use", "id": new_id("toolu_01"), "name": tc.name, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": f}
                  for f in ["", *tc.fragments]]
    out_usage = {"output_tokens": final["output_tokens"]}
    if "output_tokens_details" in final:
        out_usage["output_tokens_details"] = final["output_tokens_details"]
    events = [
        sse({"type": "message_start", "message": message}, "message_start"),
        sse({"type": "content_block_start", "index": 0, "content_block": block},
            "content_block_start"),
        sse({"type": "ping"}, "ping"),
        *(sse({"type": "content_block_delta", "index": 0, "delta": d}, "content_block_delta")
          for d in deltas),
        sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
        sse({"type": "message_delta", "delta": {"stop_reason": STOP_REASON[reply.finish],
                                                "stop_sequence": reply.stop_sequence},
             "usage": out_usage}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop"),
    ]
    return Stream(events)


def messages(req: Request, settings: Settings) -> Output:
    """``POST /v1/messages``."""
    call = parse(req.body, settings)
    reply = answer(call.prompt, settings.name, settings.reply)
    return (stream if call.stream else response)(call, reply, settings)


def count_tokens(req: Request, settings: Settings) -> Output:
    """``POST /v1/messages/count_tokens``."""
    call = parse(req.body, settings, need_max_tokens=False)
    return json_body({"input_tokens": call.prompt.prompt_tokens})


def models(req: Request, settings: Settings) -> Output:
    """``GET /v1/models`` as Anthropic lists them (chosen when ``anthropic-version`` is sent)."""
    names = settings.listed_models
    return json_body({
        "data": [{"type": "model", "id": m, "display_name": m,
                  "created_at": "2025-01-01T00:00:00Z"} for m in names],
        "has_more": False, "first_id": names[0], "last_id": names[-1]})
