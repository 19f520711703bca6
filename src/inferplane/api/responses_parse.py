"""A Responses request body -> :class:`ResponsesCall`, checked, with OpenAI-style errors that
name the offending ``param``.

The input is kept as items in the stored form (each with an id and a status, text parts
only): messages, ``function_call`` and ``function_call_output``. How they become the
canonical conversation is ``api/responses_items.py``'s. Fields the gateway does not act on are
refused by name (``api/responses_fields.py``).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from inferplane.api.fields import got, optional
from inferplane.api.json_schema import check_schema
from inferplane.api.responses_fields import extensions
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import SamplingParams, Tool, ToolChoice

#: Tool types OpenAI runs on its own servers: the gateway runs none of them.
HOSTED_TOOLS = frozenset({
    "web_search", "web_search_preview", "web_search_2025_08_26",
    "web_search_preview_2025_03_11", "file_search", "code_interpreter", "computer",
    "computer_use", "computer_use_preview", "image_generation", "mcp", "local_shell", "shell",
    "apply_patch", "custom", "tool_search", "namespace",
})
INPUT_ROLES = ("user", "system", "developer", "assistant")
TEXT_FORMATS = ("text", "json_object", "json_schema")
MAX_METADATA = 16  # OpenAI's limits on metadata
MAX_METADATA_KEY = 64
MAX_METADATA_VALUE = 512
_TEXT_PARTS = {"input_text", "output_text", "text"}
TEXT_DEFAULT: dict[str, Any] = {"format": {"type": "text"}}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style: ``resp_``, ``msg_``, ``fc_``... and 48 hex digits."""
    return prefix + secrets.token_hex(24)


@dataclass(frozen=True, slots=True)
class ResponsesCall:
    """A checked Responses request. ``items``: its own input, in the stored form;
    ``tools_json``, ``tool_choice_json`` and ``text``: as the response object echoes them;
    ``response_format``: ``text.format`` in chat's form, for the canonical request;
    ``extensions``: fields only a deployment that speaks Responses takes, as sent."""

    model: str
    items: tuple[dict[str, Any], ...]
    params: SamplingParams
    instructions: str | None = None
    tools: tuple[Tool, ...] = ()
    tools_json: tuple[dict[str, Any], ...] = ()
    tool_choice: ToolChoice | None = None
    tool_choice_json: Any = "auto"
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] = field(default_factory=lambda: dict(TEXT_DEFAULT))
    response_format: dict[str, Any] | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    store: bool = True
    user: str | None = None
    previous_response_id: str | None = None
    stream: bool = False
    extensions: dict[str, Any] = field(default_factory=dict)  # for a Responses upstream


def parse(body: dict[str, Any]) -> ResponsesCall:
    vendor = extensions(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _type_error("model", "a non-empty string", model)
    instructions = _optional(body, "instructions", str)
    tools, tools_json = _tools(body.get("tools"))
    tool_choice, choice_json = _tool_choice(body.get("tool_choice"), tools)
    text, response_format = _text(body.get("text"))
    previous = _optional(body, "previous_response_id", str)
    items = _input(body.get("input"))
    if not items and previous is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    return ResponsesCall(
        model=model, items=items, params=_sampling(body), instructions=instructions,
        tools=tools, tools_json=tools_json, tool_choice=tool_choice,
        tool_choice_json=choice_json,
        parallel_tool_calls=_optional(body, "parallel_tool_calls", bool), text=text,
        response_format=response_format, metadata=_metadata(body.get("metadata")),
        store=_optional(body, "store", bool) is not False,
        user=_optional(body, "user", str), previous_response_id=previous,
        stream=_optional(body, "stream", bool) or False, extensions=vendor,
    )


def _sampling(body: dict[str, Any]) -> SamplingParams:
    max_tokens = _optional(body, "max_output_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise InvalidRequest(f"max_output_tokens must be at least 1, got {max_tokens}.",
                             param="max_output_tokens")
    temperature = _optional(body, "temperature", float)
    top_p = _optional(body, "top_p", float)
    _in_range("temperature", temperature, 0.0, 2.0)
    _in_range("top_p", top_p, 0.0, 1.0)
    return SamplingParams(max_tokens=max_tokens,
                          temperature=1.0 if temperature is None else temperature,
                          top_p=1.0 if top_p is None else top_p)


def _input(raw: Any) -> tuple[dict[str, Any], ...]:
    """The input as stored items: a string is one user message."""
    if raw is None:
        return ()
    if isinstance(raw, str):
        return (_message("user", [_part("input_text", raw)]),)
    if not isinstance(raw, list):
        raise _type_error("input", "a string or an array of input items", raw)
    return tuple(_item(item, f"input[{i}]") for i, item in enumerate(raw))


def _item(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _type_error(where, "an input item object", item)
    kind = item.get("type", "message")
    if kind == "message":
        role = item.get("role")
        if role not in INPUT_ROLES:
            raise InvalidRequest(f"Invalid value for '{where}.role': {role!r}. Supported: "
                                 f"{', '.join(INPUT_ROLES)}.", param=f"{where}.role")
        part = "output_text" if role == "assistant" else "input_text"
        text = _content(item.get("content"), f"{where}.content")
        return _message(role, [_part(part, text)], item.get("id"))
    if kind == "function_call":
        call_id, name = item.get("call_id"), item.get("name")
        arguments = item.get("arguments")
        for key, value in (("call_id", call_id), ("name", name), ("arguments", arguments)):
            if not isinstance(value, str):
                raise _type_error(f"{where}.{key}", "a string", value)
        return {"type": "function_call", "id": _id(item, "fc_"), "call_id": call_id,
                "name": name, "arguments": arguments, "status": "completed"}
    if kind == "function_call_output":
        call_id = item.get("call_id")
        if not isinstance(call_id, str):
            raise _type_error(f"{where}.call_id", "a string", call_id)
        output = _content(item.get("output"), f"{where}.output")
        return {"type": "function_call_output", "id": _id(item, "fco_"), "call_id": call_id,
                "output": output, "status": "completed"}
    raise InvalidRequest(
        f"Unsupported input item type '{kind}' at '{where}': only messages, function_call "
        "and function_call_output items are supported.", param=f"{where}.type",
        code="unsupported_parameter")


def _message(role: str, content: list[dict[str, Any]], item_id: Any = None
             ) -> dict[str, Any]:
    return {"type": "message", "id": item_id if isinstance(item_id, str) and item_id
            else new_id("msg_"), "role": role, "content": content, "status": "completed"}


def _part(kind: str, text: str) -> dict[str, Any]:
    return {"type": kind, "text": text, "annotations": []} if kind == "output_text" \
        else {"type": kind, "text": text}


def _id(item: dict[str, Any], prefix: str) -> str:
    given = item.get("id")
    return given if isinstance(given, str) and given else new_id(prefix)


def _content(content: Any, where: str) -> str:
    """A string, or text parts (``input_text``, ``output_text``) joined; other parts (images,
    files, audio) are refused by name."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _type_error(where, "a string or an array of text parts", content)
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in _TEXT_PARTS:
            raise InvalidRequest(f"Unsupported content part '{where}[{i}]' of type {kind!r}: "
                                 "only text parts are supported.", param=f"{where}[{i}]",
                                 code="unsupported_parameter")
        assert isinstance(part, dict)
        text = part.get("text")
        if not isinstance(text, str):
            raise _type_error(f"{where}[{i}].text", "a string", text)
        texts.append(text)
    return "".join(texts)


def _tools(raw: Any) -> tuple[tuple[Tool, ...], tuple[dict[str, Any], ...]]:
    """Function tools (``{"type": "function", "name", "description", "parameters",
    "strict"}``); a hosted tool is refused by name."""
    if raw is None:
        return (), ()
    if not isinstance(raw, list):
        raise _type_error("tools", "an array of tools", raw)
    tools, echoed = [], []
    for i, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind != "function":
            hosted = kind in HOSTED_TOOLS or (isinstance(kind, str) and "search" in kind)
            why = (f"'{kind}' is a tool OpenAI runs on its servers; the gateway runs no hosted "
                   "tools, only function tools" if hosted
                   else "expected a function tool ({\"type\": \"function\", \"name\": ...})")
            raise InvalidRequest(f"Unsupported tool 'tools[{i}]': {why}.",
                                 param=f"tools[{i}].type", code="unsupported_parameter")
        assert isinstance(item, dict)
        name, description = item.get("name"), item.get("description") or ""
        parameters = item.get("parameters") or {}
        if not isinstance(name, str) or not name:
            raise _type_error(f"tools[{i}].name", "a non-empty string", name)
        if not isinstance(description, str):
            raise _type_error(f"tools[{i}].description", "a string", description)
        if not isinstance(parameters, dict):
            raise _type_error(f"tools[{i}].parameters", "a JSON Schema object", parameters)
        strict = optional(item, "strict", bool, _type_error, f"tools[{i}].")
        tools.append(Tool(name, description, parameters))
        echoed.append({"type": "function", "name": name, "description": description or None,
                       "parameters": parameters, "strict": True if strict is None else strict})
    return tuple(tools), tuple(echoed)


def _tool_choice(raw: Any, tools: tuple[Tool, ...]) -> tuple[ToolChoice | None, Any]:
    if raw is None:
        return None, "auto"
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw), raw
    kind = raw.get("type") if isinstance(raw, dict) else None
    name = raw.get("name") if isinstance(raw, dict) else None
    if kind != "function" or not isinstance(name, str):
        raise InvalidRequest(
            "Unsupported 'tool_choice': expected 'auto', 'none', 'required' or "
            '{"type": "function", "name": ...}; hosted tools and allowed_tools are not '
            "supported.", param="tool_choice", code="unsupported_parameter")
    if name not in {t.name for t in tools}:
        raise InvalidRequest(f"tool_choice names '{name}', which is not in 'tools'.",
                             param="tool_choice")
    return ToolChoice("function", name), {"type": "function", "name": name}


def _text(raw: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """``text`` as echoed, and its format as chat's ``response_format`` (None: plain text)."""
    if raw is None:
        return dict(TEXT_DEFAULT), None
    if not isinstance(raw, dict):
        raise _type_error("text", "an object", raw)
    for name, value in raw.items():
        if name != "format" and value is not None:
            raise InvalidRequest(f"Unsupported parameter: 'text.{name}'.", param=f"text.{name}",
                                 code="unsupported_parameter")
    fmt = raw.get("format")
    if fmt is None:
        return dict(TEXT_DEFAULT), None
    if not isinstance(fmt, dict) or fmt.get("type") not in TEXT_FORMATS:
        raise InvalidRequest("Invalid 'text.format': expected an object whose type is one of "
                             f"{', '.join(TEXT_FORMATS)}.", param="text.format")
    if fmt["type"] == "text":
        return {"format": {"type": "text"}}, None
    if fmt["type"] == "json_object":
        return {"format": {"type": "json_object"}}, {"type": "json_object"}
    name, schema = fmt.get("name"), fmt.get("schema")
    if not isinstance(name, str) or not name:
        raise _type_error("text.format.name", "a non-empty string", name)
    if not isinstance(schema, dict):
        raise _type_error("text.format.schema", "a JSON Schema object", schema)
    check_schema(schema, "text.format.schema")
    strict = optional(fmt, "strict", bool, _type_error, "text.format.")
    description = _optional(fmt, "description", str, "text.format.")
    spec: dict[str, Any] = {"name": name, "schema": schema}
    if strict is not None:
        spec["strict"] = strict
    if description is not None:
        spec["description"] = description
    echoed = {"type": "json_schema", "name": name, "schema": schema,
              "strict": strict, "description": description}
    return {"format": echoed}, {"type": "json_schema", "json_schema": spec}


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                            for k, v in raw.items()):
        raise _type_error("metadata", "an object of string values", raw)
    if len(raw) > MAX_METADATA or any(len(k) > MAX_METADATA_KEY or len(v) > MAX_METADATA_VALUE
                                      for k, v in raw.items()):
        raise InvalidRequest(f"Invalid 'metadata': at most {MAX_METADATA} keys of up to "
                             f"{MAX_METADATA_KEY} characters, values of up to "
                             f"{MAX_METADATA_VALUE}.", param="metadata")
    return dict(raw)


def _optional(body: dict[str, Any], name: str, kind: type, prefix: str = "") -> Any:
    return optional(body, name, kind, _type_error, prefix)


def _in_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is not None and not low <= value <= high:
        raise InvalidRequest(
            f"Invalid '{name}': {value} is out of range; it must be between {low} and {high}.",
            param=name)


def _type_error(name: str, expected: str, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{name}': expected {expected}, got {got(value)}.",
                          param=name, code="invalid_type")
