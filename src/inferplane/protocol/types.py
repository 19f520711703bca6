"""Canonical request and stream-event types.

The API layer parses a client's protocol (OpenAI or Anthropic) into a :class:`GenerationRequest`;
a provider translates it to its upstream's protocol and turns the reply into a stream of
:data:`StreamEvent`; the API layer renders those events back into the client's protocol. Any
inbound protocol can therefore reach any upstream. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Role = Literal["system", "developer", "user", "assistant", "tool"]
Wire = Literal["openai", "anthropic", "responses"]  # the client protocols the gateway serves
Priority = Literal["interactive", "batch"]
Endpoint = Literal["chat.completions", "completions", "messages", "embeddings", "responses"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "cancelled"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made: ``arguments`` is JSON text, as the model wrote it."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True, slots=True)
class Message:
    """One turn. An assistant turn may carry tool calls; a ``tool`` turn answers one of them
    (``tool_call_id``) with ``content``."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None  # the tool's name, on a tool turn, where the client gave it


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the model may call; ``parameters`` is its JSON Schema."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """``auto`` (the model decides), ``none``, ``required`` (some tool), or ``function``
    (the tool called ``name``)."""

    mode: Literal["auto", "none", "required", "function"]
    name: str | None = None


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Decoding controls, already validated and defaulted."""

    max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    ignore_eos: bool = False  # go on past the end-of-sequence token, up to max_tokens


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """One generation, whatever protocol it arrived in.

    ``messages`` is set for chat requests, ``prompt`` for plain completions. ``wire``: the
    protocol the client speaks, where a provider whose upstream speaks it too may relay the
    upstream's stream instead of translating it (None: always translate). ``response_format``:
    OpenAI's object as the client sent it (``{"type": "json_object"}``...), passed on to
    OpenAI-compatible upstreams.
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
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    user: str | None = None
    wire: Wire | None = None
    response_format: Mapping[str, Any] | None = None
    logprobs: int | None = None  # each token's log probability and this many alternatives
    continuous_usage: bool = False  # the usage so far on every stream chunk
    extensions: Mapping[str, Any] = field(default_factory=dict)  # vendor fields, as sent
    extensions_wire: Wire | None = None  # the client protocol they are written in
    # "batch": a Batch API line, which the embedded engine schedules after interactive ones
    priority: Priority = "interactive"

    def needs(self) -> frozenset[str]:
        """The optional features the request asks for, by the field that asks (``tools``,
        ``logprobs``, ``ignore_eos``, ``stream_options.continuous_usage_stats``,
        ``response_format`` (JSON, or JSON that fits a schema), and each vendor
        extension's name): a deployment serves it only if it honours every one."""
        asked = {"tools": bool(self.tools), "logprobs": self.logprobs is not None,
                 "ignore_eos": self.params.ignore_eos,
                 CONTINUOUS_USAGE: self.continuous_usage,
                 "response_format": self.response_format is not None}
        return frozenset([name for name, wanted in asked.items() if wanted] + list(self.extensions))


CONTINUOUS_USAGE = "stream_options.continuous_usage_stats"
#: The features above that a provider may or may not honour (``Provider.features``).
FEATURES = frozenset({"tools", "logprobs", "ignore_eos", CONTINUOUS_USAGE, "response_format"})


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    id: str
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None
    encoding_format: Literal["float", "base64"] = "float"  # how the client wants the vectors


@dataclass(frozen=True, slots=True)
class Embeddings:
    vectors: Sequence[Sequence[float]]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens one request used, as the upstream reported them.

    ``prompt_tokens`` counts every input token, including ``cached_tokens`` (read from a prompt
    cache) and ``cache_write_tokens`` (written to one); ``completion_tokens`` includes
    ``reasoning_tokens``. Adapters normalise providers that count these apart (Anthropic).
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Started:
    """The upstream accepted the request (its first byte arrived). Engines that know the
    prompt's length report it here; hosted APIs report it in :class:`Finished`.

    ``relayed``: the stream's content comes as :class:`Relayed` frames, already in the
    client's protocol, instead of text and tool-call deltas."""

    prompt_tokens: int = 0
    relayed: bool = False


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token's log probability (natural log), its text and UTF-8 bytes (a token
    may hold part of a character), and the most likely alternatives at its position."""

    token: str
    logprob: float
    bytes: tuple[int, ...]
    top: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class TextDelta:
    """New text; ``tokens``: how many generated tokens it carries, where the upstream counts
    them (0: unknown), and ``logprobs`` theirs when the request asked for them."""

    text: str
    tokens: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the ``index``-th tool call: its first piece carries ``id`` and ``name``,
    later pieces append to ``arguments``."""

    index: int
    arguments: str = ""
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Relayed:
    """Stream frames for a client that speaks the upstream's own protocol: the upstream's
    bytes with only the envelope (id, model, created) rewritten, no re-encoding. They carry
    ``deltas`` pieces of text or tool-call arguments, ``chars`` characters in all (what
    :class:`TextDelta` and :class:`ToolCallDelta` tell the meter one by one). A relayed
    stream's last frames (the usage, the stream's end) are rendered from :class:`Finished`,
    like any stream's."""

    data: bytes
    deltas: int = 0
    chars: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: FinishReason
    usage: Usage
    engine_seconds: float = 0.0
    stop_sequence: str | None = None  # the stop string that ended it, where known
    energy_j: float | None = None  # the engine's share of its energy counter, where it has one
    energy_method: str | None = None  # "measured" or "modelled" (metering/energy.py)
    queue_s: float | None = None  # waiting for an engine slot, where the engine says


StreamEvent = Started | TextDelta | ToolCallDelta | Relayed | Finished


class UsageSink(Protocol):
    """Where a provider reports the final usage of a stream that was closed early, and the
    energy its engine's counter gave a stream that ended without :class:`Finished` (closed
    early, or failed)."""

    def finished(self, event: Finished) -> None: ...

    def energy(self, joules: float, method: str) -> None: ...
