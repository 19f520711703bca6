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
- Tool schemas are cut to the OpenAPI subset Gemini accepts (``gemini_request.clean_schema``).
- ``response_format`` is Gemini's JSON mode: ``responseMimeType: application/json``, with the
  JSON Schema as it is in ``responseJsonSchema`` (Gemini enforces it while decoding).
- ``parallel_tool_calls`` and ``user`` have no Gemini equivalent and are dropped.
- Tool call ids are Gemini's own where it gives one, else derived from the response id (or the
  request id) and the call's index: stable, and short enough for any other provider.
- Gemini 3 rejects a function-call turn sent back without the ``thoughtSignature`` it came
  with. The provider remembers the signatures of recent calls by id; a call it does not know
  (another process answered it, or another provider) carries Google's documented
  ``skip_thought_signature_validator`` value instead.
- Thought parts are not shown; their tokens are counted as reasoning tokens.

The request translation is in ``gemini_request.py``; the provider and the response reading here.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import orjson

from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    EmbeddingRequest,
    Embeddings,
    Finished,
    FinishReason,
    GenerationRequest,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageSink,
)
from inferplane.providers.base import register
from inferplane.providers.gemini_request import embed_body, request_body
from inferplane.providers.hosted import HostedProvider
from inferplane.providers.upstream import get, malformed
from inferplane.routing.retry import is_retryable

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig

#: How many tool calls' thought signatures a provider remembers.
MAX_SIGNATURES = 4096

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter",
    "RECITATION": "content_filter", "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


@register
class GeminiProvider(HostedProvider):
    name = "gemini"
    endpoints = frozenset({"chat.completions", "embeddings"})
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"
    features = frozenset({"response_format"})  # JSON mode, the schema enforced upstream

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        self.signatures: dict[str, str] = {}

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"x-goog-api-key": key}

    def url(self, method: str) -> str:
        """``{base}/models/{model}:{method}``; a tuned model's full name is kept."""
        return f"{self.base_url}/{model_name(self.upstream_model)}:{method}"

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
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
