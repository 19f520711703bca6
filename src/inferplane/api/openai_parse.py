"""OpenAI request bodies -> canonical :class:`GenerationRequest`, with OpenAI-style errors.

Each check names the offending ``param`` so clients see exactly what to fix. Fields this
gateway does not act on are vendor extensions, passed on or refused by the router
(``api/openai_fields.py``); none is ignored.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from inferplane.api.fields import got, optional
from inferplane.api.json_schema import check_schema
from inferplane.api.openai_fields import extensions
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    EmbeddingRequest,
    Endpoint,
    GenerationRequest,
    Message,
    Role,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)

_ROLES: tuple[str, ...] = get_args(Role)
MAX_STOP = 4
MAX_TOP_LOGPROBS = 20  # OpenAI's limits
MAX_COMPLETION_LOGPROBS = 5
STREAM_OPTIONS = ("include_usage", "continuous_usage_stats")
_RESPONSE_FORMATS = ("text", "json_object", "json_schema")
_ENCODINGS: dict[Any, Literal["float", "base64"]] = {"float": "float", "base64": "base64"}


def parse(endpoint: Endpoint, body: dict[str, Any], request_id: str, created: int
          ) -> GenerationRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing_or_type("model", "a non-empty string", model)
    stream = _optional(body, "stream", bool) or False
    include_usage, continuous_usage = _stream_options(body.get("stream_options"), stream)
    n = _optional(body, "n", int)
    if n is not None and n != 1:
        raise InvalidRequest(f"n={n} is not supported; only n=1.", param="n")
    fields: dict[str, Any] = {}
    if endpoint == "chat.completions":
        fields["messages"] = _messages(body)
        fields["tools"] = _tools(body.get("tools"))
        fields["tool_choice"] = _tool_choice(body.get("tool_choice"), fields["tools"])
        fields["parallel_tool_calls"] = _optional(body, "parallel_tool_calls", bool)
        fields["response_format"] = _response_format(body.get("response_format"))
    else:
        fields["prompt"] = _prompt(body)
    user = body.get("user")
    params, logprobs = _sampling(endpoint, body), _logprobs(endpoint, body)
    vendor = extensions(endpoint, body)  # checked in this order: the same error comes first
    return GenerationRequest(
        id=request_id, endpoint=endpoint, model=model, params=params,
        stream=stream, include_usage=include_usage, created=created,
        user=user if isinstance(user, str) else None, wire="openai",
        logprobs=logprobs, continuous_usage=continuous_usage,
        extensions=vendor, extensions_wire="openai" if vendor else None, **fields,
    )


def _stream_options(options: Any, stream: bool) -> tuple[bool, bool]:
    """``include_usage`` and ``continuous_usage_stats`` (the usage on every chunk, as vLLM
    sends it); any other option is refused by name."""
    if options is None:
        return False, False
    if not stream:
        raise InvalidRequest("stream_options is only allowed when stream is true.",
                             param="stream_options")
    if not isinstance(options, dict):
        raise _missing_or_type("stream_options", "an object", options)
    for name in options:
        if name not in STREAM_OPTIONS:
            raise InvalidRequest(
                f"Unsupported option 'stream_options.{name}'; supported: "
                f"{', '.join(STREAM_OPTIONS)}.", param=f"stream_options.{name}",
                code="unsupported_parameter")
    prefix = "stream_options."
    return (_optional(options, "include_usage", bool, prefix) or False,
            _optional(options, "continuous_usage_stats", bool, prefix) or False)


def _logprobs(endpoint: Endpoint, body: dict[str, Any]) -> int | None:
    """How many alternatives to report per token (0: the sampled token's log probability
    only); None when the request asks for no log probabilities. Chat asks with ``logprobs:
    true`` and ``top_logprobs`` (0 to 20); completions with ``logprobs`` (0 to 5)."""
    if endpoint == "completions":
        n: int | None = _optional(body, "logprobs", int)
        _in_range("logprobs", n, 0, MAX_COMPLETION_LOGPROBS)
        return n
    wanted = _optional(body, "logprobs", bool) or False
    top = _optional(body, "top_logprobs", int)
    _in_range("top_logprobs", top, 0, MAX_TOP_LOGPROBS)
    if top is not None and not wanted:
        raise InvalidRequest("top_logprobs needs logprobs: true.", param="top_logprobs")
    return (top or 0) if wanted else None


def parse_embeddings(body: dict[str, Any], request_id: str) -> EmbeddingRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing_or_type("model", "a non-empty string", model)
    raw = body.get("input")
    if raw is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    inputs = [raw] if isinstance(raw, str) else raw
    if not isinstance(inputs, list) or not inputs or not all(
        isinstance(x, str) and x for x in inputs
    ):
        raise _missing_or_type("input", "a non-empty string or array of non-empty strings", raw)
    encoding = _ENCODINGS.get(body.get("encoding_format") or "float")
    if encoding is None:
        raise InvalidRequest("encoding_format must be 'float' or 'base64'.",
                             param="encoding_format")
    dimensions = _optional(body, "dimensions", int)
    if dimensions is not None and dimensions < 1:
        raise InvalidRequest(f"dimensions must be at least 1, got {dimensions}.",
                             param="dimensions")
    user = body.get("user")
    return EmbeddingRequest(request_id, model, tuple(inputs), dimensions,
                            user if isinstance(user, str) else None, encoding)


def _sampling(endpoint: Endpoint, body: dict[str, Any]) -> SamplingParams:
    name = "max_tokens"
    max_tokens = _optional(body, name, int)
    if endpoint == "chat.completions" and body.get("max_completion_tokens") is not None:
        name = "max_completion_tokens"
        max_tokens = _optional(body, name, int)
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequest(f"{name} must be at least 1, got {max_tokens}.", param=name)
    temperature = _optional(body, "temperature", float)
    top_p = _optional(body, "top_p", float)
    _in_range("temperature", temperature, 0.0, 2.0)
    _in_range("top_p", top_p, 0.0, 1.0)
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        stop=_stop(body.get("stop")),
        seed=_optional(body, "seed", int),
        ignore_eos=_optional(body, "ignore_eos", bool) or False,
    )


def _messages(body: dict[str, Any]) -> tuple[Message, ...]:
    raw = body.get("messages")
    if raw is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", param="messages")
    if not isinstance(raw, list):
        raise _missing_or_type("messages", "an array of message objects", raw)
    if not raw:
        raise InvalidRequest("'messages' must contain at least one message.", param="messages")
    messages = []
    for i, item in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(item, dict):
            raise _missing_or_type(where, "a message object", item)
        role = item.get("role")
        if role not in _ROLES:
            raise InvalidRequest(
                f"Invalid value for '{where}.role': {role!r}. Supported: {', '.join(_ROLES)}.",
                param=f"{where}.role",
            )
        content = _content(item.get("content"), f"{where}.content", role)
        calls = _tool_calls(item.get("tool_calls"), f"{where}.tool_calls")
        call_id = item.get("tool_call_id")
        if role == "tool" and not isinstance(call_id, str):
            raise _missing_or_type(f"{where}.tool_call_id", "a string", call_id)
        name = item.get("name")
        messages.append(Message(role, content, calls, call_id if role == "tool" else None,
                                name if isinstance(name, str) else None))
    return tuple(messages)


def _tool_calls(raw: Any, where: str) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _missing_or_type(where, "an array of tool calls", raw)
    calls = []
    for i, call in enumerate(raw):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(fn, dict):
            raise _missing_or_type(f"{where}[{i}]", "a tool call with a 'function' object", call)
        call_id, name, arguments = call.get("id"), fn.get("name"), fn.get("arguments", "")
        if not isinstance(call_id, str) or not isinstance(name, str) or not isinstance(
            arguments, str
        ):
            raise InvalidRequest(
                f"Invalid '{where}[{i}]': id, function.name and function.arguments must be "
                "strings.", param=f"{where}[{i}]",
            )
        calls.append(ToolCall(call_id, name, arguments))
    return tuple(calls)


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _missing_or_type("tools", "an array of tools", raw)
    tools = []
    for i, item in enumerate(raw):
        fn = item.get("function") if isinstance(item, dict) else None
        if not isinstance(item, dict) or item.get("type") != "function" or not isinstance(
            fn, dict
        ):
            raise InvalidRequest(
                f"Invalid 'tools[{i}]': expected a function tool "
                '({"type": "function", "function": {...}}).',
                param=f"tools[{i}]",
            )
        name, description = fn.get("name"), fn.get("description") or ""
        parameters = fn.get("parameters") or {}
        if not isinstance(name, str) or not name:
            raise _missing_or_type(f"tools[{i}].function.name", "a non-empty string", name)
        if not isinstance(description, str) or not isinstance(parameters, dict):
            raise InvalidRequest(
                f"Invalid 'tools[{i}].function': description must be a string and parameters "
                "a JSON Schema object.", param=f"tools[{i}].function",
            )
        tools.append(Tool(name, description, parameters))
    return tuple(tools)


def _response_format(raw: Any) -> dict[str, Any] | None:
    """``{"type": "text" | "json_object" | "json_schema", ...}``, or None when absent (or plain
    text, which asks for nothing). A JSON schema must be one: ``{"type": "json_schema",
    "json_schema": {"name": ..., "schema": {...}, "strict": ...}}``."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("type") not in _RESPONSE_FORMATS:
        raise InvalidRequest(
            "Invalid 'response_format': expected an object whose type is one of "
            f"{', '.join(_RESPONSE_FORMATS)}.", param="response_format")
    if raw["type"] == "text":
        return None
    if raw["type"] == "json_schema":
        spec = raw.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) \
                or not isinstance(spec.get("schema"), dict):
            raise InvalidRequest(
                "Invalid 'response_format.json_schema': expected an object with a 'name' "
                "(string) and a 'schema' (a JSON Schema object).",
                param="response_format.json_schema")
        check_schema(spec["schema"], "response_format.json_schema.schema")
    return raw


def _tool_choice(raw: Any, tools: tuple[Tool, ...]) -> ToolChoice | None:
    if raw is None:
        return None
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    name = raw.get("function", {}).get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str):
        raise InvalidRequest(
            "Invalid 'tool_choice': expected 'auto', 'none', 'required' or "
            '{"type": "function", "function": {"name": ...}}.', param="tool_choice",
        )
    if name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice names '{name}', which is not in 'tools'.",
                             param="tool_choice")
    return ToolChoice("function", name)


def _content(content: Any, where: str, role: str) -> str:
    """A string, or an array of ``{"type": "text", "text": ...}`` parts joined together."""
    if isinstance(content, str):
        return content
    if content is None and role == "assistant":  # a turn of tool calls only
        return ""
    if isinstance(content, list):
        texts = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise InvalidRequest(
                    f"Invalid content part '{where}[{i}]': only text parts are supported.",
                    param=f"{where}[{i}]",
                )
            text = part.get("text")
            if not isinstance(text, str):
                raise _missing_or_type(f"{where}[{i}].text", "a string", text)
            texts.append(text)
        return "".join(texts)
    raise _missing_or_type(where, "a string or an array of text parts", content)


def _prompt(body: dict[str, Any]) -> str:
    prompt = body.get("prompt")
    if prompt is None:
        raise InvalidRequest("Missing required parameter: 'prompt'.", param="prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if not isinstance(prompt, str):
        raise _missing_or_type("prompt", "a string (or an array of exactly one string)", prompt)
    return prompt


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    if isinstance(stop, str):
        return (stop,)
    if (isinstance(stop, list) and len(stop) <= MAX_STOP
            and all(isinstance(s, str) for s in stop)):
        return tuple(stop)
    raise InvalidRequest(
        f"Invalid 'stop': expected a string or an array of up to {MAX_STOP} strings.",
        param="stop",
    )


def _optional(body: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    """``body[name]`` if present and not null, checked against ``kind``."""
    return optional(body, name, kind, _missing_or_type, prefix)


def _in_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidRequest(
            f"Invalid '{name}': {value} is out of range; it must be between {low} and {high}.",
            param=name,
        )


def _missing_or_type(name: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{name}': expected {expected}, got {got(value)}.",
                          param=name, code="invalid_type")
