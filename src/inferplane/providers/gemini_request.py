"""Canonical requests -> Gemini bodies: ``generateContent`` (the conversation, sampling, tools)
and ``batchEmbedContents``. The choices this translation makes are listed in ``gemini.py``.
Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    EmbeddingRequest,
    GenerationRequest,
    Message,
    SamplingParams,
    Tool,
    ToolChoice,
)

#: The value Google documents for a function call whose thought signature is unknown.
SKIP_SIGNATURE = "skip_thought_signature_validator"

_SYSTEM_ROLES = frozenset({"system", "developer"})
_TOOL_MODES: dict[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}
#: The JSON Schema keywords Gemini's ``Schema`` (an OpenAPI 3.0 subset) accepts.
_SCHEMA_KEYS = frozenset({
    "type", "format", "title", "description", "nullable", "enum", "items", "minItems",
    "maxItems", "properties", "required", "minProperties", "maxProperties", "minLength",
    "maxLength", "pattern", "minimum", "maximum", "anyOf", "propertyOrdering", "default",
    "example",
})
#: The ``format`` values Gemini accepts, by type; others are dropped.
_FORMATS: dict[str, frozenset[str]] = {
    "string": frozenset({"enum", "date-time"}),
    "number": frozenset({"float", "double"}),
    "integer": frozenset({"int32", "int64"}),
}


def request_body(request: GenerationRequest,
                 signatures: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The canonical request as a ``generateContent`` body; ``signatures`` are the known
    thought signatures of earlier tool calls, by call id."""
    messages = request.messages or (Message("user", request.prompt or ""),)
    body: dict[str, Any] = {
        "contents": contents(messages, signatures or {}),
        "generationConfig": {**generation_config(request.params),
                             **response_config(request.response_format)},
    }
    system = [{"text": m.content} for m in messages if m.role in _SYSTEM_ROLES and m.content]
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        body["tools"] = [{"functionDeclarations": [declaration(t) for t in request.tools]}]
        if request.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": calling_config(request.tool_choice)}
    return body


def generation_config(p: SamplingParams) -> dict[str, Any]:
    config: dict[str, Any] = {"candidateCount": 1, "temperature": p.temperature, "topP": p.top_p}
    if p.max_tokens is not None:
        config["maxOutputTokens"] = p.max_tokens
    if p.stop:
        config["stopSequences"] = list(p.stop)
    if p.seed is not None:
        config["seed"] = p.seed
    return config


def response_config(response_format: Mapping[str, Any] | None) -> dict[str, Any]:
    """OpenAI's ``response_format`` as Gemini's JSON mode: ``json_object`` -> JSON out,
    ``json_schema`` -> JSON that fits the schema (``responseJsonSchema`` takes JSON Schema as
    it is, ``$ref``, ``anyOf`` and all, unlike the OpenAPI subset of ``responseSchema``).

    >>> response_config({"type": "json_schema", "json_schema": {"name": "n", "schema": {}}})
    {'responseMimeType': 'application/json', 'responseJsonSchema': {}}
    >>> response_config({"type": "text"}), response_config(None)
    ({}, {})
    """
    kind = None if response_format is None else response_format.get("type")
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema" and response_format is not None:
        return {"responseMimeType": "application/json",
                "responseJsonSchema": response_format["json_schema"]["schema"]}
    return {}


def contents(messages: Iterable[Message], signatures: Mapping[str, str]) -> list[dict[str, Any]]:
    """The conversation as Gemini ``contents``, system turns left out, consecutive tool results
    merged into one ``user`` turn, and turns without any part dropped."""
    messages = tuple(messages)
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    out: list[dict[str, Any]] = []
    previous_tool = False
    for m in messages:
        if m.role in _SYSTEM_ROLES:
            continue
        if m.role == "tool":
            part = {"functionResponse": {"name": tool_name(m, names),
                                         "response": tool_response(m.content)}}
            if previous_tool:
                out[-1]["parts"].append(part)
            else:
                out.append({"role": "user", "parts": [part]})
            previous_tool = True
            continue
        previous_tool = False
        if m.role == "assistant":
            parts = model_parts(m, signatures)
        else:
            parts = [{"text": m.content}] if m.content else []
        if parts:
            out.append({"role": "model" if m.role == "assistant" else "user", "parts": parts})
    return out


def model_parts(m: Message, signatures: Mapping[str, str]) -> list[dict[str, Any]]:
    """An assistant turn's text and function calls; the first call always carries a thought
    signature (the known one, else :data:`SKIP_SIGNATURE`), later ones where known."""
    parts: list[dict[str, Any]] = [{"text": m.content}] if m.content else []
    for i, call in enumerate(m.tool_calls):
        part: dict[str, Any] = {"functionCall": {"name": call.name,
                                                 "args": call_args(call.arguments, call.id)}}
        signature = signatures.get(call.id) or (SKIP_SIGNATURE if i == 0 else None)
        if signature is not None:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def call_args(arguments: str, call_id: str) -> dict[str, Any]:
    """A tool call's JSON arguments as the object Gemini's ``args`` must be.

    >>> call_args('{"city": "Oslo"}', "c1"), call_args("", "c2")
    ({'city': 'Oslo'}, {})
    """
    if not arguments.strip():
        return {}
    try:
        args = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        raise InvalidRequest(f"the arguments of tool call {call_id!r} are not a JSON object",
                             param="messages")
    return args


def tool_name(m: Message, names: Mapping[str, str]) -> str:
    """The function a tool message answers: Gemini needs its name, not only the call id."""
    name = names.get(m.tool_call_id or "") or m.name
    if not name:
        raise InvalidRequest(f"tool message {m.tool_call_id!r} answers no earlier tool call "
                             "and names no function", param="messages")
    return name


def tool_response(content: str) -> dict[str, Any]:
    """A tool result as the object ``functionResponse.response`` must be.

    >>> tool_response('{"temp": 21}'), tool_response("21 degrees")
    ({'temp': 21}, {'output': '21 degrees'})
    """
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        value = None
    return value if isinstance(value, dict) else {"output": content}


def declaration(tool: Tool) -> dict[str, Any]:
    """A function declaration; a function without parameters has no ``parameters`` at all,
    since Gemini rejects an object schema with no properties."""
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    parameters = clean_schema(tool.parameters)
    if parameters.get("properties"):
        out["parameters"] = parameters
    return out


def clean_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """``schema`` cut to what Gemini accepts, at every depth: unknown keywords (``$schema``,
    ``additionalProperties``, ``$ref``, ...) and unsupported formats dropped, ``const`` as a
    one-value ``enum``, a type list with ``"null"`` as ``nullable``, ``required`` limited to
    the listed properties, empty ``properties`` removed.

    >>> clean_schema({"type": ["string", "null"], "format": "uri", "additionalProperties": 1})
    {'type': 'string', 'nullable': True}
    """
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_KEYS:
            out[key] = _clean_value(key, value)
    if "const" in schema and "enum" not in out:
        out["enum"] = [schema["const"]]
    kinds = out.get("type")
    if isinstance(kinds, list):
        out.update(_type_list(kinds))
    if out.get("format") not in _FORMATS.get(str(out.get("type")), ()):
        out.pop("format", None)
    if not out.get("properties"):
        out.pop("properties", None)
    if "required" in out:
        out["required"] = [n for n in out["required"] if n in out.get("properties", {})]
        if not out["required"]:
            del out["required"]
    return out


def _clean_value(key: str, value: Any) -> Any:
    if key == "properties" and isinstance(value, Mapping):
        return {name: clean_schema(sub) for name, sub in value.items() if isinstance(sub, Mapping)}
    if key == "items" and isinstance(value, Mapping):
        return clean_schema(value)
    if key == "anyOf" and isinstance(value, list):
        return [clean_schema(sub) for sub in value if isinstance(sub, Mapping)]
    if key == "required" and isinstance(value, list):
        return [n for n in value if isinstance(n, str)]
    return value


def _type_list(kinds: list[Any]) -> dict[str, Any]:
    """A JSON Schema type list as Gemini's single ``type`` (plus ``nullable``)."""
    named = [k for k in kinds if k != "null"]
    out: dict[str, Any] = {"nullable": True} if len(named) < len(kinds) else {}
    out["type"] = named[0] if named else "string"
    return out


def calling_config(choice: ToolChoice) -> dict[str, Any]:
    """``tool_choice`` as ``functionCallingConfig``.

    >>> calling_config(ToolChoice("function", "lookup"))
    {'mode': 'ANY', 'allowedFunctionNames': ['lookup']}
    """
    config: dict[str, Any] = {"mode": _TOOL_MODES[choice.mode]}
    if choice.mode == "function" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return config


def embed_body(request: EmbeddingRequest, model: str) -> dict[str, Any]:
    """A ``batchEmbedContents`` body: one request per input."""
    extra = {} if request.dimensions is None else {"outputDimensionality": request.dimensions}
    return {"requests": [{"model": model, "content": {"parts": [{"text": text}]}, **extra}
                         for text in request.inputs]}
