"""Google's Gemini API (``generativelanguage.googleapis.com/v1beta``): chat and embeddings.

Choices this adapter makes, where the canonical types and Gemini's differ:

- Chat only: plain completions are not served (the router sends them elsewhere), since a chat
  model's answer to a prompt is not its continuation. Sent here anyway, a prompt becomes one
  user turn.
- Every system and developer message, wherever it stands, goes to ``systemInstruction``.
- Tool results go back as ``functionResponse`` parts in a ``user`` turn, consecutive results
  merged into one turn; the function's name comes from the assistant call with the same id,
  else from the tool message's ``name``. A result that is a JSON object is sent as it is, any
  other as ``{"output": <text>}``. Call ids are not sent back: Gemini pairs calls and
  responses by order.
- Tool schemas are cut to the OpenAPI subset Gemini accepts (:func:`clean_schema`).
- ``parallel_tool_calls`` and ``user`` have no Gemini equivalent and are dropped.
- Tool call ids are Gemini's own where it gives one, else derived from the response id (or the
  request id) and the call's index: stable, and short enough for any other provider.
- Gemini 3 rejects a function-call turn sent back without the ``thoughtSignature`` it came
  with. The provider remembers the signatures of recent calls by id; a call it does not know
  (another process answered it, or another provider) carries Google's documented
  ``skip_thought_signature_validator`` value instead.
- Thought parts are not shown; their tokens are counted as reasoning tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Iterable, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import orjson

from inferplane.errors import InvalidRequest, UpstreamError
from inferplane.protocol.types import (
    EmbeddingRequest,
    Embeddings,
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    Meter,
    SamplingParams,
    Started,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from inferplane.providers.base import register
from inferplane.providers.hosted import HostedProvider
from inferplane.providers.http import get, malformed
from inferplane.routing.retry import is_retryable

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig

#: The value Google documents for a function call whose thought signature is unknown.
SKIP_SIGNATURE = "skip_thought_signature_validator"
#: How many tool calls' thought signatures a provider remembers.
MAX_SIGNATURES = 4096

_SYSTEM_ROLES = frozenset({"system", "developer"})
_FINISH: dict[str, FinishReason] = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
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


@register
class GeminiProvider(HostedProvider):
    name = "gemini"
    endpoints = frozenset({"chat.completions", "embeddings"})
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        self.signatures: dict[str, str] = {}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def url(self, method: str) -> str:
        """``{base}/models/{model}:{method}``; a tuned model's full name is kept."""
        return f"{self.base_url}/{model_name(self.upstream_model)}:{method}"

    async def stream(
        self, request: GenerationRequest, meter: Meter
    ) -> AsyncGenerator[StreamEvent, None]:
        deadline = self.http.deadline()
        body = request_body(request, self.signatures)
        reader = ResponseReader(self.deployment.name, request.id)
        if not request.stream:
            response = await self.http.post(self.url("generateContent"), body, deadline)
            events = reader.feed(await self.http.read_json(response, deadline))
            remember(self.signatures, reader.signatures)
            yield Started()
            for event in events:
                yield event
            yield reader.finished()
            return
        url = self.url("streamGenerateContent") + "?alt=sse"
        response = await self.http.post(url, body, deadline)
        started = False
        try:
            async with aclosing(self.http.events(response, deadline)) as stream:
                async for batch in stream:  # to the body's end: Gemini has no last event
                    for _, data in batch:
                        events = reader.feed(parse_chunk(data, self.deployment.name))
                        if not started:
                            started = True
                            yield Started()
                        for event in events:
                            yield event
        except GeneratorExit:  # the client left: report the running usage Gemini sent
            if reader.usage != Usage():
                meter.finished(Finished("cancelled", reader.usage))
            raise
        finally:
            remember(self.signatures, reader.signatures)
        if reader.finish is None:
            raise UpstreamError(f"{self.deployment.name} ended its stream without a finishReason",
                                retryable=True, code="upstream_disconnected")
        yield reader.finished()

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        deadline = self.http.deadline()
        body = embed_body(request, model_name(self.upstream_model))
        response = await self.http.post(self.url("batchEmbedContents"), body, deadline)
        data = await self.http.read_json(response, deadline)
        vectors = [get(item, "values") for item in get(data, "embeddings") or []]
        if len(vectors) != len(request.inputs) or not all(isinstance(v, list) for v in vectors):
            raise malformed(self.deployment.name, "an embeddings response without its vectors")
        return Embeddings(vectors, 0)  # Gemini reports no token count for embeddings


def model_name(model: str) -> str:
    """The resource name of ``model``.

    >>> model_name("gemini-2.5-flash"), model_name("tunedModels/mine")
    ('models/gemini-2.5-flash', 'tunedModels/mine')
    """
    return model if "/" in model else f"models/{model}"


# ---- request ----------------------------------------------------------------------------------

def request_body(request: GenerationRequest,
                 signatures: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The canonical request as a ``generateContent`` body; ``signatures`` are the known
    thought signatures of earlier tool calls, by call id."""
    messages = request.messages or (Message("user", request.prompt or ""),)
    body: dict[str, Any] = {
        "contents": contents(messages, signatures or {}),
        "generationConfig": generation_config(request.params),
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


def remember(known: dict[str, str], new: Mapping[str, str], limit: int = MAX_SIGNATURES) -> None:
    """Add ``new`` to ``known``, dropping the oldest entries beyond ``limit``."""
    for key, value in new.items():
        known.pop(key, None)
        known[key] = value
    for key in list(known)[:max(0, len(known) - limit)]:
        del known[key]


# ---- response ---------------------------------------------------------------------------------

def usage(meta: Any) -> Usage:
    """``usageMetadata`` in canonical terms: thoughts count as completion (reasoning) tokens,
    tool-use prompt tokens as prompt tokens."""
    thoughts = get(meta, "thoughtsTokenCount") or 0
    return Usage(
        prompt_tokens=(get(meta, "promptTokenCount") or 0)
        + (get(meta, "toolUsePromptTokenCount") or 0),
        completion_tokens=(get(meta, "candidatesTokenCount") or 0) + thoughts,
        cached_tokens=get(meta, "cachedContentTokenCount") or 0,
        reasoning_tokens=thoughts,
    )


def finish_reason(value: Any, called: bool) -> FinishReason:
    """A ``finishReason`` in canonical terms; a turn that stopped after calling functions
    ended with ``tool_calls``.

    >>> finish_reason("STOP", True), finish_reason("SPII", False), finish_reason("OTHER", False)
    ('tool_calls', 'content_filter', 'stop')
    """
    reason = _FINISH.get(value, "stop") if isinstance(value, str) else "stop"
    return "tool_calls" if reason == "stop" and called else reason


def call_id(key: str, index: int) -> str:
    """A stable id for the ``index``-th call of the response ``key``.

    >>> call_id("resp-1", 0) == call_id("resp-1", 0) != call_id("resp-1", 1)
    True
    """
    return "call_" + hashlib.sha256(f"{key}/{index}".encode()).hexdigest()[:24]


def blocked(name: str, feedback: Any) -> UpstreamError:
    """A prompt Gemini refused to answer: the same prompt is refused anywhere, so no retry."""
    reason = get(feedback, "blockReason") or "unknown reason"
    detail = get(feedback, "blockReasonMessage")
    message = f"{name} blocked the prompt ({reason})" + (f": {detail}" if detail else "")
    return UpstreamError(message, upstream_status=400, retryable=False, code="content_filter")


def parse_chunk(data: bytes, name: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed(name, "a stream chunk that is not JSON") from None


class ResponseReader:
    """``GenerateContentResponse`` objects (a whole response, or each stream chunk) -> canonical
    events. Usage and the finish reason are kept for :meth:`finished`; ``signatures`` collects
    the thought signatures of the calls read, by call id."""

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.calls = 0
        self.finish: str | None = None
        self.usage = Usage()
        self.signatures: dict[str, str] = {}

    def feed(self, data: Any) -> list[StreamEvent]:
        if not isinstance(data, dict):
            raise malformed(self.name, "a response that is not a JSON object")
        if (error := data.get("error")) is not None:
            status = get(error, "code")
            status = status if isinstance(status, int) else None
            retryable = status is None or is_retryable(status, "status")
            raise UpstreamError(f"{self.name}: {get(error, 'message') or 'error'}",
                                upstream_status=status, retryable=retryable)
        if isinstance(data.get("responseId"), str):
            self.key = data["responseId"]
        if "usageMetadata" in data:
            self.usage = usage(data["usageMetadata"])
        candidate = get(data, "candidates", 0)
        if not isinstance(candidate, dict):
            if get(data, "promptFeedback", "blockReason"):
                raise blocked(self.name, data["promptFeedback"])
            return []
        events = [e for part in get(candidate, "content", "parts") or []
                  if (e := self._event(part)) is not None]
        if isinstance(candidate.get("finishReason"), str):
            self.finish = candidate["finishReason"]
        return events

    def _event(self, part: Any) -> StreamEvent | None:
        if not isinstance(part, dict) or part.get("thought"):
            return None
        text = part.get("text")
        if isinstance(text, str):
            return TextDelta(text) if text else None
        call = part.get("functionCall")
        if not isinstance(call, dict):
            return None  # code execution, inline data: nothing canonical to say
        index, self.calls = self.calls, self.calls + 1
        ident = call.get("id") or call_id(self.key, index)
        if isinstance(part.get("thoughtSignature"), str):
            self.signatures[ident] = part["thoughtSignature"]
        args = orjson.dumps(call.get("args") or {}).decode()
        return ToolCallDelta(index, args, ident, call.get("name") or "")

    def finished(self) -> Finished:
        return Finished(finish_reason(self.finish, self.calls > 0), self.usage)
