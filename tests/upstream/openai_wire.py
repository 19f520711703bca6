"""OpenAI wire format: Chat Completions, the model list, error bodies, Bearer auth.

Legacy Completions live in ``completions``. Faithful details kept on purpose because adapters
trip on them: ``usage: null`` on every chunk
when ``stream_options.include_usage`` is set, then a last chunk with ``choices: []`` and the
usage; the ``obfuscation`` padding field on chunks; tool calls streamed as an id+name delta then
argument fragments; ``finish_reason`` ``"stop"`` (not ``"tool_calls"``) when ``tool_choice``
names the function; ``tool`` messages must answer the ``tool_calls`` of the assistant turn
before them; ``stream_options`` refused without ``stream``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .echo import Prompt, Reply, answer, count_words
from .settings import Settings
from .wire import (
    Body,
    Output,
    Request,
    Stream,
    WireError,
    check_model,
    int_or_none,
    json_body,
    new_id,
    now,
    require,
    sse,
    stops,
)

FINGERPRINT = "fp_upstream"
DONE = b"data: [DONE]\n\n"
PAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FINISH = {"stop": "stop", "length": "length", "stop_sequence": "stop", "tool": "tool_calls"}

#: status -> (type, code, message) of the errors OpenAI returns for it.
ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The requested resource does not exist."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests per min (RPM). Please try again in 1s."),
    500: ("server_error", None,
          "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
}
DEFAULT_ERROR = ("server_error", None, "The server had an error processing your request.")


# ---- errors and auth --------------------------------------------------------------------------

def error_object(status: int, message: str | None = None, param: str | None = None,
                 code: str | None = None) -> dict[str, Any]:
    """``{"error": {message, type, param, code}}`` for ``status``."""
    kind, default_code, default_message = ERRORS.get(status, DEFAULT_ERROR)
    return {"error": {"message": message or default_message, "type": kind, "param": param,
                      "code": code or default_code}}


def model_not_found(model: str) -> WireError:
    return WireError(404, f"The model `{model}` does not exist or you do not have access to it.",
                     code="model_not_found")


class OpenAIDialect:
    """Bearer-key auth and error bodies of api.openai.com (and OpenAI-compatible servers)."""

    name = "openai"
    request_id_header = b"x-request-id"
    overloaded = 503
    bad_json = ("We could not parse the JSON body of your request. (HINT: This likely means you "
                "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
                "but what was sent was not valid JSON.")
    headers = ((b"openai-version", b"2020-10-01"),
               (b"x-ratelimit-limit-requests", b"10000"),
               (b"x-ratelimit-remaining-requests", b"9999"),
               (b"x-ratelimit-reset-requests", b"6ms"))

    def auth_error(self, req: Request, settings: Settings) -> WireError | None:
        if settings.api_key is None:
            return None
        auth = req.headers.get("authorization", "")
        if not auth:
            return WireError(401, "You didn't provide an API key. You need to provide your API "
                             "key in an Authorization header using Bearer auth (i.e. "
                             "Authorization: Bearer YOUR_KEY).")
        if auth != "Bearer " + settings.api_key:
            shown = auth.removeprefix("Bearer ")[:8]
            return WireError(401, f"Incorrect API key provided: {shown}****. You can find your "
                             "API key at https://platform.openai.com/account/api-keys.",
                             code="invalid_api_key")
        return None

    def error(self, err: WireError) -> Body:
        return json_body(error_object(err.status, err.message, err.param, err.code), err.status)

    def stream_error(self, status: int) -> bytes:
        return sse(error_object(status))


# ---- chat completions -------------------------------------------------------------------------

@dataclass(slots=True)
class ChatCall:
    """A parsed chat request: the neutral prompt plus what shapes the response."""

    prompt: Prompt
    model: str
    n: int = 1
    stream: bool = False
    include_usage: bool = False
    obfuscation: bool = True
    named_tool: bool = False
    extras: dict[str, Any] = field(default_factory=dict)


def parse_chat(body: Any, settings: Settings) -> ChatCall:
    model = check_model(require(body, "model", "you must provide a model parameter"),
                        settings, model_not_found)
    messages = require(body, "messages", "Missing required parameter: 'messages'.")
    if not isinstance(messages, list) or not messages:
        raise WireError(400, "[] is too short - 'messages'", param="messages",
                        code="empty_array")
    texts: list[str] = []
    last_user = ""
    pending: set[str] = set()
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ROLES:
            raise WireError(400, f"Invalid value: '{role}'. Supported values are: 'system', "
                            "'assistant', 'user', 'function', 'tool', and 'developer'.",
                            param=f"messages[{i}].role", code="invalid_value")
        text = content_text(m.get("content"))
        texts.append(text)
        _check_tool_order(m, role, i, pending)
        for call in m.get("tool_calls") or ():
            texts.append(str(call.get("function", {}).get("arguments", "")))
        if role == "user":
            last_user = text
    if pending:
        raise _unanswered(pending)
    tools = body.get("tools") or []
    tool, named = _chosen_tool(tools, body.get("tool_choice"))
    last = messages[-1]
    options = body.get("stream_options") or {}
    if options and not body.get("stream"):
        raise WireError(400, "The 'stream_options' parameter is only allowed when 'stream' is "
                        "enabled.", param="stream_options", code="invalid_value")
    prompt = Prompt(
        prompt_tokens=count_words(texts) + len(tools),
        last_user=last_user,
        tool_result=content_text(last.get("content"))
        if last.get("role") in ("tool", "function") else None,
        tool=tool,
        max_tokens=int_or_none(body.get("max_completion_tokens", body.get("max_tokens")),
                               "max_tokens"),
        stop=stops(body.get("stop")),
    )
    return ChatCall(prompt, model, n=int_or_none(body.get("n"), "n") or 1,
                    stream=bool(body.get("stream")),
                    include_usage=bool(options.get("include_usage")),
                    obfuscation=options.get("include_obfuscation", True) is not False,
                    named_tool=named)


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p["text"] for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _check_tool_order(m: dict[str, Any], role: str, i: int, pending: set[str]) -> None:
    """Tool messages answer the preceding assistant ``tool_calls``; all of them, in a row."""
    if role == "tool":
        call_id = m.get("tool_call_id")
        if call_id not in pending:
            raise WireError(400, "Invalid parameter: messages with role 'tool' must be a "
                            "response to a preceeding message with 'tool_calls'.",
                            param=f"messages.[{i}].role")
        pending.discard(call_id)
        return
    if pending:
        raise _unanswered(pending)
    pending.update(str(c.get("id")) for c in m.get("tool_calls") or () if isinstance(c, dict))


def _unanswered(pending: set[str]) -> WireError:
    return WireError(400, "An assistant message with 'tool_calls' must be followed by tool "
                     "messages responding to each 'tool_call_id'. The following tool_call_ids "
                     f"did not have response messages: {', '.join(sorted(pending))}",
                     param="messages")


def _chosen_tool(tools: list[Any], choice: Any) -> tuple[str | None, bool]:
    """The function the reply calls, and whether ``tool_choice`` named it."""
    if not tools or choice == "none":
        return None, False
    if isinstance(choice, dict) and choice.get("type") == "function":
        return str((choice.get("function") or {}).get("name")), True
    first = tools[0]
    return str(first.get("function", first).get("name")), False


def chat_usage(reply: Reply, settings: Settings, n: int = 1) -> dict[str, Any]:
    """Chat usage; reasoning tokens are part of ``completion_tokens``, as OpenAI counts them."""
    prompt = reply.prompt_tokens
    completion = reply.completion_tokens * n + settings.reasoning_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(settings.cached_tokens, prompt),
                                  "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": settings.reasoning_tokens,
                                      "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0},
    }


def chat_message(reply: Reply, call_id: str) -> dict[str, Any]:
    if reply.tool_call is None:
        return {"role": "assistant", "content": reply.text, "refusal": None, "annotations": []}
    return {"role": "assistant", "content": None, "refusal": None, "annotations": [],
            "tool_calls": [{"id": call_id, "type": "function",
                            "function": {"name": reply.tool_call.name,
                                         "arguments": reply.tool_call.arguments}}]}


def finish_reason(reply: Reply, named_tool: bool) -> str:
    return "stop" if named_tool else FINISH[reply.finish]


def chat_response(call: ChatCall, reply: Reply, settings: Settings) -> Body:
    message = chat_message(reply, new_id("call_"))
    choice_extra = call.extras.get("choice", {})
    out: dict[str, Any] = {
        "id": new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": now(),
        "model": call.model,
        "choices": [{"index": i, "message": message, "logprobs": None,
                     "finish_reason": finish_reason(reply, call.named_tool), **choice_extra}
                    for i in range(call.n)],
        "usage": chat_usage(reply, settings, call.n),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
        **call.extras.get("response", {}),
    }
    if settings.omit_usage:
        del out["usage"]
    return json_body(out, tokens=reply.completion_tokens)


def chat_deltas(reply: Reply, named_tool: bool) -> list[tuple[dict[str, Any], str | None]]:
    """The (delta, finish_reason) steps of one streamed choice."""
    tc = reply.tool_call
    steps: list[tuple[dict[str, Any], str | None]]
    if tc is None:
        first: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        steps = [({"content": p}, None) for p in reply.pieces]
    else:
        first = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [
            {"index": 0, "id": new_id("call_"), "type": "function",
             "function": {"name": tc.name, "arguments": ""}}]}
        steps = [({"tool_calls": [{"index": 0, "function": {"arguments": f}}]}, None)
                 for f in tc.fragments]
    return [(first, None), *steps, ({}, finish_reason(reply, named_tool))]


def chat_stream(call: ChatCall, reply: Reply, settings: Settings) -> Stream:
    base: dict[str, Any] = {"id": new_id("chatcmpl-"), "object": "chat.completion.chunk",
                            "created": now(), "model": call.model, "service_tier": "default",
                            "system_fingerprint": FINGERPRINT}
    include_usage = call.include_usage and not settings.omit_usage
    if include_usage:
        base["usage"] = None
    choice_extra = call.extras.get("choice", {})
    chunks = list(call.extras.get("prelude", ()))
    for delta, finish in chat_deltas(reply, call.named_tool):
        pad = {"obfuscation": PAD[: 1 + len(str(delta)) % 16]} if call.obfuscation else {}
        chunks += [sse({**base, "choices": [{"index": i, "delta": delta, "logprobs": None,
                                             "finish_reason": finish, **choice_extra}], **pad})
                   for i in range(call.n)]
    if include_usage:
        chunks.append(sse({**base, "choices": [], "usage": chat_usage(reply, settings, call.n)}))
    chunks.append(DONE)
    return Stream(chunks)


def chat(call: ChatCall, settings: Settings) -> Output:
    """The reply to ``call``, whole or streamed as it asks."""
    reply = answer(call.prompt, settings.name, settings.reply)
    return (chat_stream if call.stream else chat_response)(call, reply, settings)


def chat_completions(req: Request, settings: Settings) -> Output:
    """``POST /v1/chat/completions``."""
    return chat(parse_chat(req.body, settings), settings)


# ---- model list -------------------------------------------------------------------------------

def models(req: Request, settings: Settings) -> Output:
    """``GET /v1/models``."""
    return json_body({"object": "list", "data": [
        {"id": m, "object": "model", "created": 1700000000, "owned_by": settings.name}
        for m in settings.listed_models]})
