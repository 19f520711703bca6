"""Canonical results -> OpenAI response objects and stream chunks (as bytes)."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import orjson

from inferplane.api.error_responses import error_body
from inferplane.errors import InferplaneError
from inferplane.protocol.types import (
    EmbeddingRequest,
    Embeddings,
    Finished,
    GenerationRequest,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
    Usage,
)

DONE = b"data: [DONE]\n\n"


def usage(u: Usage) -> dict[str, Any]:
    out: dict[str, Any] = {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }
    if u.cached_tokens:
        out["prompt_tokens_details"] = {"cached_tokens": u.cached_tokens}
    if u.reasoning_tokens:
        out["completion_tokens_details"] = {"reasoning_tokens": u.reasoning_tokens}
    return out


def tool_calls(calls: tuple[ToolCall, ...]) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def logprobs(request: GenerationRequest, tokens: Sequence[TokenLogprob], offset: int = 0
             ) -> dict[str, Any] | None:
    """A choice's ``logprobs`` (None unless the request asked for them): chat's ``content``
    list, or completions' parallel lists, whose ``text_offset`` counts from ``offset``
    characters into the completion."""
    if request.logprobs is None:
        return None
    if request.endpoint == "chat.completions":
        return {"content": [{**_token(t), "top_logprobs": [_token(a) for a in t.top]}
                            for t in tokens], "refusal": None}
    offsets = []
    for t in tokens:
        offsets.append(offset)
        offset += len(t.token)
    return {"tokens": [t.token for t in tokens], "token_logprobs": [t.logprob for t in tokens],
            "top_logprobs": [{a.token: a.logprob for a in t.top} for t in tokens],
            "text_offset": offsets}


def _token(t: TokenLogprob) -> dict[str, Any]:
    return {"token": t.token, "logprob": t.logprob, "bytes": list(t.bytes)}


def completion(request: GenerationRequest, text: str, finished: Finished,
               calls: tuple[ToolCall, ...] = (), tokens: Sequence[TokenLogprob] = ()
               ) -> dict[str, Any]:
    """The whole response of a non-streaming request (``tokens``: its log probabilities)."""
    if request.endpoint == "chat.completions":
        message: dict[str, Any] = {
            "role": "assistant", "content": text or (None if calls else ""), "refusal": None,
        }
        if calls:
            message["tool_calls"] = tool_calls(calls)
        choice: dict[str, Any] = {
            "index": 0, "message": message, "logprobs": logprobs(request, tokens),
            "finish_reason": finished.finish_reason,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": logprobs(request, tokens),
                  "finish_reason": finished.finish_reason}
        kind = "text_completion"
    return {
        "id": request.id, "object": kind, "created": request.created, "model": request.model,
        "choices": [choice], "usage": usage(finished.usage), "system_fingerprint": None,
    }


def embeddings(request: EmbeddingRequest, result: Embeddings) -> dict[str, Any]:
    """The vectors as float lists, or as base64 of little-endian float32 (what the openai SDK
    asks for by default)."""
    encode = _base64_floats if request.encoding_format == "base64" else list
    return {
        "object": "list", "model": request.model,
        "data": [{"object": "embedding", "index": i, "embedding": encode(v)}
                 for i, v in enumerate(result.vectors)],
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    }


class ChunkWriter:
    """Renders the SSE events of one streaming response. With ``continuous_usage`` every
    chunk carries the usage so far: ``prompt_tokens`` (as the upstream reported it when the
    stream started) and the completion tokens of the text sent."""

    def __init__(self, request: GenerationRequest, prompt_tokens: int = 0) -> None:
        self.request = request
        self.chat = request.endpoint == "chat.completions"
        self._usage = Usage(prompt_tokens)
        self._chars = 0  # of the completion so far: where the next token's text_offset is
        self._head = {
            "id": request.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": request.created, "model": request.model, "system_fingerprint": None,
        }

    def first(self) -> bytes:
        """Chat streams open with the assistant role and empty content, as OpenAI's do."""
        return self._choice({"role": "assistant", "content": ""}, None) if self.chat else b""

    def text(self, delta: TextDelta) -> bytes:
        self._usage = replace(self._usage,
                              completion_tokens=self._usage.completion_tokens + delta.tokens)
        probs = logprobs(self.request, delta.logprobs, self._chars)
        self._chars += len(delta.text)
        return self._choice({"content": delta.text} if self.chat else delta.text, None, probs)

    def tool_call(self, delta: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": delta.index, "function": {"arguments": delta.arguments}}
        if delta.id is not None:
            call.update(id=delta.id, type="function")
        if delta.name is not None:
            call["function"]["name"] = delta.name
        return self._choice({"tool_calls": [call]}, None)

    def finish(self, finished: Finished) -> bytes:
        return self._choice({} if self.chat else "", finished.finish_reason)

    def done(self, finished: Finished) -> bytes:
        """The usage chunk (when asked for), then ``[DONE]``."""
        if not self.request.include_usage:
            return DONE
        return _event({**self._head, "choices": [], "usage": usage(finished.usage)}) + DONE

    def error(self, exc: InferplaneError) -> bytes:
        """An error after the stream began: OpenAI sends it as a data event."""
        return _event(error_body(exc.message, exc.type, param=exc.param, code=exc.code))

    def _choice(self, delta: dict[str, Any] | str, finish_reason: str | None,
                probs: dict[str, Any] | None = None) -> bytes:
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": probs,
                                      "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": delta, "logprobs": probs,
                      "finish_reason": finish_reason}
        event: dict[str, Any] = {**self._head, "choices": [choice]}
        if self.request.continuous_usage:
            event["usage"] = usage(self._usage)
        elif self.request.include_usage:
            event["usage"] = None
        return _event(event)


def _base64_floats(vector: Sequence[float]) -> str:
    """>>> _base64_floats([1.0])
    'AACAPw=='
    """
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
