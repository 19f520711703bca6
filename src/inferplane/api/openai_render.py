"""Canonical results -> OpenAI response objects and stream chunks (as bytes)."""

from __future__ import annotations

from typing import Any

import orjson

from inferplane.protocol.types import Finished, GenerationRequest

DONE = b"data: [DONE]\n\n"


def usage(finished: Finished) -> dict[str, int]:
    return {
        "prompt_tokens": finished.prompt_tokens,
        "completion_tokens": finished.completion_tokens,
        "total_tokens": finished.prompt_tokens + finished.completion_tokens,
    }


def completion(request: GenerationRequest, text: str, finished: Finished) -> dict[str, Any]:
    """The whole response of a non-streaming request."""
    if request.endpoint == "chat.completions":
        choice: dict[str, Any] = {
            "index": 0, "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None, "finish_reason": finished.finish_reason,
        }
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None,
                  "finish_reason": finished.finish_reason}
        kind = "text_completion"
    return {
        "id": request.id, "object": kind, "created": request.created, "model": request.model,
        "choices": [choice], "usage": usage(finished), "system_fingerprint": None,
    }


class ChunkWriter:
    """Renders the SSE events of one streaming response."""

    def __init__(self, request: GenerationRequest) -> None:
        self.request = request
        self.chat = request.endpoint == "chat.completions"
        self._head = {
            "id": request.id,
            "object": "chat.completion.chunk" if self.chat else "text_completion",
            "created": request.created, "model": request.model, "system_fingerprint": None,
        }

    def first(self) -> bytes:
        """Chat streams open with the assistant role and empty content, as OpenAI's do."""
        return self._choice({"role": "assistant", "content": ""}, None) if self.chat else b""

    def text(self, text: str) -> bytes:
        return self._choice({"content": text} if self.chat else text, None)

    def finish(self, finished: Finished) -> bytes:
        return self._choice({} if self.chat else "", finished.finish_reason)

    def usage(self, finished: Finished) -> bytes:
        return _event({**self._head, "choices": [], "usage": usage(finished)})

    def _choice(self, delta: dict[str, Any] | str, finish_reason: str | None) -> bytes:
        if self.chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None,
                                      "finish_reason": finish_reason}
        else:
            choice = {"index": 0, "text": delta, "logprobs": None,
                      "finish_reason": finish_reason}
        event: dict[str, Any] = {**self._head, "choices": [choice]}
        if self.request.include_usage:
            event["usage"] = None
        return _event(event)


def error_event(body: dict[str, Any]) -> bytes:
    """An error after the stream began: OpenAI sends it as a data event."""
    return _event(body)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"
