"""OpenAI request bodies -> canonical :class:`GenerationRequest`, with OpenAI-style errors.

Each check names the offending ``param`` so clients see exactly what to fix. Fields this
gateway does not act on (``user``, ``logit_bias``...) are accepted and ignored, as the SDKs
send some of them by default.
"""

from __future__ import annotations

from typing import Any, get_args

from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    Endpoint,
    GenerationRequest,
    Message,
    Role,
    SamplingParams,
)

_ROLES: tuple[str, ...] = get_args(Role)
MAX_STOP = 4


def parse(endpoint: Endpoint, body: dict[str, Any], request_id: str, created: int
          ) -> GenerationRequest:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _missing_or_type("model", "a non-empty string", model)
    stream = _optional(body, "stream", bool) or False
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise InvalidRequest("stream_options is only allowed when stream is true.",
                                 param="stream_options")
        if not isinstance(options, dict):
            raise _missing_or_type("stream_options", "an object", options)
        include_usage = _optional(options, "include_usage", bool, "stream_options.") or False
    n = _optional(body, "n", int)
    if n is not None and n != 1:
        raise InvalidRequest(f"n={n} is not supported; only n=1.", param="n")
    fields: dict[str, Any] = {}
    if endpoint == "chat.completions":
        fields["messages"] = _messages(body)
    else:
        fields["prompt"] = _prompt(body)
    return GenerationRequest(
        id=request_id, endpoint=endpoint, model=model, params=_sampling(endpoint, body),
        stream=stream, include_usage=include_usage, created=created, **fields,
    )


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
        messages.append(Message(role, _content(item.get("content"), f"{where}.content", role)))
    return tuple(messages)


def _content(content: Any, where: str, role: str) -> str:
    """A string, or an array of ``{"type": "text", "text": ...}`` parts joined together."""
    if isinstance(content, str):
        return content
    if content is None and role == "assistant":
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
    value = body.get(name)
    if value is None:
        return None
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        expected = {bool: "a boolean", int: "an integer", float: "a number"}[kind]
        raise _missing_or_type(prefix + name, expected, value)
    return float(value) if kind is float else value


def _in_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidRequest(
            f"Invalid '{name}': {value} is out of range; it must be between {low} and {high}.",
            param=name,
        )


def _missing_or_type(name: str, expected: str, value: Any) -> InvalidRequest:
    got = "null" if value is None else type(value).__name__
    return InvalidRequest(f"Invalid type for '{name}': expected {expected}, got {got}.",
                          param=name, code="invalid_type")
