"""Canonical request and stream-event types.

The API layer parses a client's protocol (OpenAI today, Anthropic later) into a
:class:`GenerationRequest`; a provider turns it into a stream of :data:`StreamEvent`; the API
layer renders those events back into the client's protocol. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Role = Literal["system", "developer", "user", "assistant"]
Endpoint = Literal["chat.completions", "completions"]
FinishReason = Literal["stop", "length", "cancelled"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding controls, already validated and defaulted."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation, whatever protocol it arrived in.

    ``messages`` is set for chat requests, ``prompt`` for plain completions.
    """

    id: str
    endpoint: Endpoint
    model: str
    params: SamplingParams
    messages: tuple[Message, ...] = ()
    prompt: str | None = None
    stream: bool = False
    include_usage: bool = False
    created: int = 0


@dataclass(frozen=True, slots=True)
class Started:
    """The engine accepted the request; the prompt is ``prompt_tokens`` long."""

    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    engine_seconds: float = 0.0


StreamEvent = Started | TextDelta | Finished


class Meter(Protocol):
    """Where a provider reports the final usage of a stream that was closed early."""

    def finished(self, event: Finished) -> None: ...
