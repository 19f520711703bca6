"""Anthropic Messages request bodies -> canonical :class:`GenerationRequest`.

Errors name the offending field the way Anthropic's own do (``messages.0.content.1: ...``), in
the message and in ``param``. Choices this translation makes:

- the text blocks of one turn, or of ``system``, are joined with a blank line;
- a user turn's ``tool_result`` blocks become one ``tool`` message each, in order, followed by
  the turn's text (if any) as a user message; each tool message is named after the
  ``tool_use`` it answers, where an earlier assistant turn has it;
- ``is_error: true`` on a tool result prefixes its content with ``Error:``, since the canonical
  message has no error flag and every upstream understands the text;
- ``thinking`` and ``redacted_thinking`` blocks in assistant turns are dropped (they belong to
  extended thinking, which this gateway does not forward);
- ``top_k``, ``thinking`` (unless disabled) and ``service_tier`` (unless ``auto``) are Anthropic
  vendor fields with no canonical equivalent: they go to Anthropic upstreams as sent, and the
  router refuses them elsewhere with a 400 naming the field (docs/api.md);
- ``cache_control`` marks on blocks are accepted and not forwarded.
"""

from __future__ import annotations

from typing import Any

import orjson

from inferplane.api.fields import got, optional
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    GenerationRequest,
    Message,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)

JOIN = "\n\n"
_TOOL_CHOICE: dict[str, ToolChoice] = {
    "auto": ToolChoice("auto"), "any": ToolChoice("required"), "none": ToolChoice("none"),
}
_BLOCKS_BY_ROLE = {"user": ("text", "tool_result"), "assistant": ("text", "tool_use")}
_DROPPED = frozenset({"thinking", "redacted_thinking"})
# Anthropic's own fields with no canonical equivalent, and the value of each that asks nothing
_EXTENSIONS: dict[str, Any] = {"top_k": None, "thinking": {"type": "disabled"},
                               "service_tier": "auto"}


def parse(body: dict[str, Any], request_id: str, created: int) -> GenerationRequest:
    """A Messages API body as a canonical chat request (``endpoint="chat.completions"``).

    ``request_id`` becomes the response's id: pass one that starts with ``msg_``.
    """
    model = _optional(body, "model", str)
    if not model:
        raise _invalid("model", "a non-empty model name is required")
    tools = _tools(body.get("tools"))
    choice, parallel = _tool_choice(body.get("tool_choice"), tools)
    params = _sampling(body)  # checks top_k before it is taken as an extension
    extensions = _extensions(body)
    return GenerationRequest(
        id=request_id, endpoint="chat.completions", model=model, params=params,
        messages=_system(body.get("system")) + _messages(body.get("messages")),
        stream=_optional(body, "stream", bool) or False, include_usage=True, created=created,
        tools=tools, tool_choice=choice, parallel_tool_calls=parallel, user=_user(body),
        wire="anthropic", extensions=extensions,
        extensions_wire="anthropic" if extensions else None,
    )


def _extensions(body: dict[str, Any]) -> dict[str, Any]:
    """The Anthropic fields the request sets to something that asks for it (checked first).

    >>> _extensions({"top_k": 5, "thinking": {"type": "disabled"}, "service_tier": "auto"})
    {'top_k': 5}
    """
    return {name: body[name] for name, nothing in _EXTENSIONS.items()
            if body.get(name) is not None and body[name] != nothing}


def _sampling(body: dict[str, Any]) -> SamplingParams:
    max_tokens = _optional(body, "max_tokens", int)
    if max_tokens is None:
        raise _invalid("max_tokens", "field required (the most tokens to generate, >= 1)")
    if max_tokens < 1:
        raise _invalid("max_tokens", f"must be at least 1, got {max_tokens}")
    temperature = _in_range(body, "temperature", 0.0, 1.0)
    top_p = _in_range(body, "top_p", 0.0, 1.0)
    top_k = _optional(body, "top_k", int)  # checked; an extension (``_extensions``)
    if top_k is not None and top_k < 0:
        raise _invalid("top_k", f"must be at least 0, got {top_k}")
    return SamplingParams(
        max_tokens=max_tokens,
        temperature=1.0 if temperature is None else temperature,
        top_p=1.0 if top_p is None else top_p,
        stop=_stop_sequences(body.get("stop_sequences")),
    )


def _system(raw: Any) -> tuple[Message, ...]:
    if raw is None:
        return ()
    text = raw if isinstance(raw, str) else JOIN.join(_texts(raw, "system"))
    return (Message("system", text),) if text else ()


def _messages(raw: Any) -> tuple[Message, ...]:
    if raw is None:
        raise _invalid("messages", "field required (an array of user and assistant turns)")
    if not isinstance(raw, list):
        raise _type_error("messages", "an array of messages", raw)
    if not raw:
        raise _invalid("messages", "at least one message is required")
    out: list[Message] = []
    tool_names: dict[str, str] = {}
    for i, turn in enumerate(raw):
        where = f"messages.{i}"
        if not isinstance(turn, dict):
            raise _type_error(where, "a message object", turn)
        role = turn.get("role")
        if role not in _BLOCKS_BY_ROLE:
            raise _invalid(f"{where}.role", f"must be 'user' or 'assistant', got {role!r}")
        content = turn.get("content")
        if isinstance(content, str):
            out.append(Message(role, content))
        elif isinstance(content, list):
            out.extend(_turn(role, content, f"{where}.content", tool_names))
        else:
            raise _type_error(f"{where}.content", "a string or an array of content blocks",
                              content)
    return tuple(out)


def _turn(role: str, blocks: list[Any], where: str, tool_names: dict[str, str]
          ) -> list[Message]:
    """One turn's blocks as canonical messages; records the names of the tools it calls."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(blocks):
        at = f"{where}.{j}"
        kind = _block_type(block, at)
        if role == "assistant" and kind in _DROPPED:
            continue
        if kind not in _BLOCKS_BY_ROLE[role]:
            raise _unsupported_block(kind, role, at)
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            calls.append(_tool_use(block, at))
            tool_names[calls[-1].id] = calls[-1].name
        else:
            results.append(_tool_result(block, at, tool_names))
    text = JOIN.join(texts)
    if role == "assistant":
        return [Message("assistant", text, tuple(calls))]
    return [*results, Message("user", text)] if texts or not results else results


def _tool_use(block: dict[str, Any], at: str) -> ToolCall:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not call_id:
        raise _type_error(f"{at}.id", "a non-empty string", call_id)
    if not isinstance(name, str) or not name:
        raise _type_error(f"{at}.name", "a non-empty string", name)
    if not isinstance(arguments, dict):
        raise _type_error(f"{at}.input", "an object", arguments)
    return ToolCall(call_id, name, orjson.dumps(arguments).decode())


def _tool_result(block: dict[str, Any], at: str, tool_names: dict[str, str]) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise _type_error(f"{at}.tool_use_id", "a non-empty string", call_id)
    raw = block.get("content")
    if raw is None:
        content = ""
    elif isinstance(raw, str):
        content = raw
    else:
        content = JOIN.join(_texts(raw, f"{at}.content"))
    if _optional(block, "is_error", bool, f"{at}."):
        content = f"Error: {content}" if content else "Error"
    return Message("tool", content, tool_call_id=call_id, name=tool_names.get(call_id))


def _texts(raw: Any, where: str) -> list[str]:
    """The texts of an array of text blocks (``system``, a tool result's content)."""
    if not isinstance(raw, list):
        raise _type_error(where, "a string or an array of text blocks", raw)
    texts = []
    for j, block in enumerate(raw):
        at = f"{where}.{j}"
        kind = _block_type(block, at)
        if kind != "text":
            raise _unsupported_block(kind, None, at)
        texts.append(_text(block, at))
    return texts


def _block_type(block: Any, at: str) -> str:
    if not isinstance(block, dict):
        raise _type_error(at, "a content block object", block)
    kind = block.get("type")
    if not isinstance(kind, str):
        raise _type_error(f"{at}.type", "a string", kind)
    return kind


def _text(block: dict[str, Any], at: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _type_error(f"{at}.text", "a string", text)
    return text


def _unsupported_block(kind: str, role: str | None, at: str) -> InvalidRequest:
    allowed = ", ".join(_BLOCKS_BY_ROLE[role]) if role else "text"
    where = f" in {role} turns" if role else " here"
    if kind in ("image", "document"):
        return _invalid(at, f"{kind} blocks are not supported by this gateway; only text and "
                            f"tool blocks are (allowed{where}: {allowed})")
    return _invalid(f"{at}.type", f"unsupported block type {kind!r}{where}; allowed: {allowed}")


def _tools(raw: Any) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise _type_error("tools", "an array of tools", raw)
    tools = []
    for i, item in enumerate(raw):
        at = f"tools.{i}"
        if not isinstance(item, dict):
            raise _type_error(at, "a tool object", item)
        if item.get("type", "custom") not in ("custom", None):
            raise _invalid(f"{at}.type", f"server tool {item.get('type')!r} is not supported; "
                                         "only client tools (name, description, input_schema)")
        name, description = item.get("name"), item.get("description") or ""
        schema = item.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _type_error(f"{at}.name", "a non-empty string", name)
        if not isinstance(description, str):
            raise _type_error(f"{at}.description", "a string", description)
        if not isinstance(schema, dict):
            raise _type_error(f"{at}.input_schema", "a JSON Schema object", schema)
        tools.append(Tool(name, description, schema))
    return tuple(tools)


def _tool_choice(raw: Any, tools: tuple[Tool, ...]) -> tuple[ToolChoice | None, bool | None]:
    """The tool choice and ``parallel_tool_calls`` (from ``disable_parallel_tool_use``)."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise _type_error("tool_choice", "an object such as {\"type\": \"auto\"}", raw)
    kind = raw.get("type")
    disable = _optional(raw, "disable_parallel_tool_use", bool, "tool_choice.")
    parallel = None if disable is None else not disable
    if kind in _TOOL_CHOICE:
        return _TOOL_CHOICE[kind], parallel
    if kind != "tool":
        raise _invalid("tool_choice.type", f"must be auto, any, tool or none, got {kind!r}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise _type_error("tool_choice.name", "a non-empty string", name)
    if name not in {t.name for t in tools}:
        raise _invalid("tool_choice.name", f"names {name!r}, which is not in 'tools'")
    return ToolChoice("function", name), parallel


def _stop_sequences(raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s for s in raw):
        raise _type_error("stop_sequences", "an array of non-empty strings", raw)
    return tuple(raw)


def _user(body: dict[str, Any]) -> str | None:
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise _type_error("metadata", "an object", metadata)
    user: str | None = _optional(metadata, "user_id", str, "metadata.")
    return user


def _in_range(body: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value: float | None = _optional(body, name, float)
    if value is not None and not low <= value <= high:
        raise _invalid(name, f"must be between {low} and {high}, got {value}")
    return value


def _optional(body: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    """``body[name]`` if present and not null, checked against ``kind`` (bool is no number)."""
    return optional(body, name, kind, _type_error, prefix)


def _invalid(param: str, problem: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {problem}", param=param)


def _type_error(param: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"{param}: expected {expected}, got {got(value)}", param=param,
                          code="invalid_type")
