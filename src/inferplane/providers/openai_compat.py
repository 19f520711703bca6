"""Any OpenAI-compatible server: OpenAI, Azure OpenAI, vLLM, SGLang, TGI, Ollama, llama.cpp's
server, LM Studio, Groq, Together, Fireworks, Mistral, OpenRouter and neocloud endpoints.

Azure OpenAI is chosen by setting ``api_version`` on the deployment: requests then go to
``{base_url}/openai/deployments/{upstream_model}/...?api-version=...`` with an ``api-key``
header. Streaming requests always ask for ``stream_options.include_usage`` so the ledger gets
the upstream's own token counts, including cached-input and reasoning tokens.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any, ClassVar

import orjson

from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    CONTINUOUS_USAGE,
    FEATURES,
    EmbeddingRequest,
    Embeddings,
    Endpoint,
    Finished,
    FinishReason,
    GenerationRequest,
    Message,
    Relayed,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageSink,
    Wire,
)
from inferplane.providers.base import register
from inferplane.providers.hosted import HostedProvider
from inferplane.providers.openai_logprobs import read_logprobs, request_fields
from inferplane.providers.openai_responses import stream_responses
from inferplane.providers.upstream import get, malformed

_PATHS: dict[str, str] = {
    "chat.completions": "chat/completions", "completions": "completions",
    "embeddings": "embeddings",
}
DONE = b"[DONE]"  # the data of the last event of a stream


def _is_done(_name: str, data: bytes) -> bool:
    return data == DONE


_FINISH: dict[str, FinishReason] = {
    "stop": "stop", "length": "length", "tool_calls": "tool_calls", "function_call": "tool_calls",
    "content_filter": "content_filter", "eos": "stop",
}


@register
class OpenAICompatProvider(HostedProvider):
    name = "openai"
    endpoints = frozenset({"chat.completions", "completions", "embeddings"})
    # Passed on for the server to honour or refuse (OpenAI itself has no ignore_eos and no
    # continuous usage: it answers 400, which reaches the client as the server worded it).
    features = frozenset({"logprobs", "ignore_eos", CONTINUOUS_USAGE, "response_format"})
    extensions: ClassVar[Wire | None] = "openai"
    default_base_url = "https://api.openai.com/v1"

    def serves(self, endpoint: Endpoint, needs: frozenset[str] = frozenset(),
               wire: Wire | None = None) -> bool:
        """Spoken to in the Responses API (``api: responses``), it serves chat-shaped requests
        (whatever the client's protocol) and embeddings."""
        if self.deployment.api == "responses" and endpoint == "completions":
            return False
        return super().serves(endpoint, needs, wire)

    def honours(self, need: str, wire: Wire | None = None) -> bool:
        """Spoken to in the Responses API, it takes tools, ``text.format`` and the fields
        of a Responses request the gateway does not act on (``reasoning``...); no log
        probabilities, ``ignore_eos``, continuous usage or chat's vendor fields."""
        if self.deployment.api == "responses":
            return need in ("tools", "response_format") or (
                need not in FEATURES and wire == "responses")
        return super().honours(need, wire)

    def auth_headers(self, key: str) -> dict[str, str]:
        if self.deployment.api_version is not None:
            return {"api-key": key}
        return {"authorization": f"Bearer {key}"}

    def url(self, endpoint: Endpoint) -> str:
        path = _PATHS[endpoint]
        version = self.deployment.api_version
        if version is not None:
            return (f"{self.base_url}/openai/deployments/{self.upstream_model}/{path}"
                    f"?api-version={version}")
        return f"{self.base_url}/{path}"

    async def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        if self.deployment.api == "responses":
            async with aclosing(stream_responses(self.http, self.base_url, self.upstream_model,
                                                 request)) as events:
                async for event in events:
                    yield event
            return
        deadline = self.http.deadline()
        body = request_body(request, self.upstream_model)
        response = await self.http.post(self.url(request.endpoint), body, deadline)
        if not request.stream:
            yield Started()
            for event in response_events(await self.http.read_json(response, deadline),
                                         self.deployment.name):
                yield event
            return
        relay = request.wire == "openai"
        started = False
        async with aclosing(self.http.events(response, deadline, last=_is_done)) as stream:
            if relay:  # the client speaks OpenAI too: its chunks, envelope rewritten
                relayer = ChunkRelay(self.deployment.name, request)
                async for batch in stream:
                    if not started:  # the first event on its own: the client sees it sooner
                        first = relayer.relay(batch[:1])  # an error in it: a failed attempt
                        started = True
                        yield Started(relayed=True)
                        if first.data:
                            yield first
                        batch = batch[1:]
                    frames = relayer.relay(batch)
                    if frames.data:
                        yield frames
                    if relayer.failed is not None:
                        raise relayer.failed
                    if relayer.done:
                        yield relayer.finished()
                        return
            else:
                chunks = ChunkReader(self.deployment.name)
                async for batch in stream:
                    for _, data in batch:
                        if data == DONE:
                            yield chunks.finished()
                            return
                        if not started:
                            started = True
                            yield Started()
                        for event in chunks.feed(data):
                            yield event
        raise UpstreamError(f"{self.deployment.name} ended its stream before [DONE]",
                            retryable=True, code="upstream_disconnected")

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        deadline = self.http.deadline()
        body: dict[str, Any] = {"model": self.upstream_model, "input": list(request.inputs)}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        response = await self.http.post(self.url("embeddings"), body, deadline)
        data = await self.http.read_json(response, deadline)
        items = get(data, "data")
        if not isinstance(items, list) or len(items) != len(request.inputs):
            raise malformed(self.deployment.name, "an embeddings response without its vectors")
        ordered = sorted(items, key=lambda item: get(item, "index") or 0)
        vectors = [get(item, "embedding") for item in ordered]
        if not all(isinstance(v, list) for v in vectors):
            raise malformed(self.deployment.name, "an embedding that is not a list of numbers")
        return Embeddings(vectors, get(data, "usage", "prompt_tokens") or 0)


def request_body(request: GenerationRequest, model: str) -> dict[str, Any]:
    """The canonical request as an OpenAI request body."""
    p = request.params
    # Vendor extensions first: nothing the gateway sets can be overridden by one.
    body: dict[str, Any] = {**request.extensions, "model": model, "stream": request.stream}
    if request.endpoint == "chat.completions":
        body["messages"] = [_message(m) for m in request.messages]
    else:
        body["prompt"] = request.prompt
    if request.stream:
        body["stream_options"] = {"include_usage": True}
        if request.continuous_usage:
            body["stream_options"]["continuous_usage_stats"] = True
    body.update(request_fields(request.endpoint, request.logprobs))
    if p.ignore_eos:
        body["ignore_eos"] = True
    if p.max_tokens is not None:
        body["max_tokens"] = p.max_tokens
    body["temperature"] = p.temperature
    body["top_p"] = p.top_p
    if p.stop:
        body["stop"] = list(p.stop)
    if p.seed is not None:
        body["seed"] = p.seed
    if request.tools:
        body["tools"] = [
            {"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": dict(t.parameters),
            }} for t in request.tools
        ]
    choice = request.tool_choice
    if choice is not None:
        body["tool_choice"] = choice.mode if choice.mode != "function" else {
            "type": "function", "function": {"name": choice.name}}
    if request.parallel_tool_calls is not None and request.tools:
        body["parallel_tool_calls"] = request.parallel_tool_calls
    if request.user is not None:
        body["user"] = request.user
    if request.response_format is not None:
        body["response_format"] = dict(request.response_format)
    return body


def _message(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def usage(data: Any) -> Usage:
    """OpenAI's ``usage`` object, including its cached and reasoning token details."""
    return Usage(
        prompt_tokens=get(data, "prompt_tokens") or 0,
        completion_tokens=get(data, "completion_tokens") or 0,
        cached_tokens=get(data, "prompt_tokens_details", "cached_tokens") or 0,
        reasoning_tokens=get(data, "completion_tokens_details", "reasoning_tokens") or 0,
    )


def finish_reason(value: Any) -> FinishReason:
    return _FINISH.get(value, "stop") if isinstance(value, str) else "stop"


def response_events(data: Any, name: str) -> list[StreamEvent]:
    """A whole (non-streamed) response as canonical events."""
    choice = get(data, "choices", 0)
    if not isinstance(choice, dict):
        raise malformed(name, "a response without choices")
    events: list[StreamEvent] = []
    text = get(choice, "message", "content") if "message" in choice else get(choice, "text")
    if isinstance(text, str) and text:
        events.append(TextDelta(text, logprobs=read_logprobs(choice)))
    for i, call in enumerate(get(choice, "message", "tool_calls") or []):
        events.append(ToolCallDelta(i, get(call, "function", "arguments") or "",
                                    get(call, "id") or f"call_{i}", get(call, "function", "name")))
    events.append(Finished(finish_reason(choice.get("finish_reason")), usage(get(data, "usage"))))
    return events


class ChunkReader:
    """Stream chunks -> canonical events; the usage chunk and finish reason are kept for
    :meth:`finished`, since OpenAI sends usage in a chunk of its own after the last choice."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.finish: FinishReason = "stop"
        self.usage = Usage()

    def feed(self, data: bytes) -> list[StreamEvent]:
        choice = self._choice(read_chunk(data, self.name))
        if choice is None:
            return []
        text, calls = content(choice)
        events: list[StreamEvent] = [TextDelta(text, logprobs=read_logprobs(choice))] if text \
            else []
        for call in calls:
            events.append(ToolCallDelta(
                get(call, "index") or 0, get(call, "function", "arguments") or "",
                get(call, "id"), get(call, "function", "name"),
            ))
        return events

    def finished(self) -> Finished:
        return Finished(self.finish, self.usage)

    def _choice(self, chunk: dict[str, Any]) -> dict[str, Any] | None:
        """The chunk's (first) choice, after noting its usage and finish reason; None for a
        chunk without choices (the usage chunk, Azure's content-filter prelude)."""
        if (used := chunk.get("usage")) is not None:
            self.usage = usage(used)
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return None
        if reason := choice.get("finish_reason"):
            self.finish = finish_reason(reason)
        return choice


class ChunkRelay(ChunkReader):
    """Stream chunks -> :class:`Relayed` frames, for a client that speaks OpenAI too.

    Each chunk is still parsed (in C) to meter it, and an error chunk still raises, but the
    client gets the upstream's bytes: only the envelope changes to the gateway's (the
    request's id and creation time, and the model name the client asked for). Where a chunk
    starts with the envelope the first relayed chunk had, byte for byte (same key order, same
    spacing: a server writes every chunk of a stream alike), the new envelope replaces just
    those bytes; any other chunk is encoded again with the envelope replaced. Chunks without
    choices are not relayed: the usage reaches the client from :class:`Finished`, as in every
    stream.
    """

    def __init__(self, name: str, request: GenerationRequest) -> None:
        super().__init__(name)
        self.done = False  # [DONE] arrived
        self.failed: UpstreamError | None = None  # an error chunk, after frames to relay
        self._ours = {"id": request.id, "created": request.created, "model": request.model}
        self._theirs: bytes | None = None  # the upstream's envelope, as its first chunk began
        self._envelope = b""  # ours, in its place

    def relay(self, batch: list[tuple[str, bytes]]) -> Relayed:
        """The frames of ``batch``'s chunks, up to ``[DONE]`` (nothing after it, in this batch
        or a later one)."""
        frames: list[bytes] = []
        deltas = chars = 0
        for _, data in () if self.done else batch:
            if data == DONE:
                self.done = True
                break
            try:
                chunk = read_chunk(data, self.name)
            except UpstreamError as exc:  # after what came before it, if anything did
                if not frames:
                    raise
                self.failed = exc
                break
            choice = self._choice(chunk)
            if choice is None:
                continue
            text, calls = content(choice)
            if text:
                deltas += 1
                chars += len(text)
            for call in calls:
                deltas += 1
                chars += len(get(call, "function", "arguments") or "")
            frames.append(b"data: " + self._rewrite(data, chunk) + b"\n\n")
        return Relayed(b"".join(frames), deltas, chars)

    def _rewrite(self, data: bytes, chunk: dict[str, Any]) -> bytes:
        if self._theirs is None:
            self._theirs = envelope(chunk)
            self._envelope = envelope({**chunk, **self._ours})
        if self._theirs and data.startswith(self._theirs):
            return self._envelope + data[len(self._theirs):]
        return orjson.dumps({**chunk, **self._ours})


def content(choice: dict[str, Any]) -> tuple[str, list[Any]]:
    """A stream choice's new text ("" for none): a chat delta's content, or a completion's
    text; and its tool-call pieces.

    >>> content({"delta": {"content": "Hi"}}), content({"text": "Hi"})
    (('Hi', []), ('Hi', []))
    """
    delta = choice.get("delta")
    if delta is None:
        text, calls = choice.get("text"), None
    elif isinstance(delta, dict):
        text, calls = delta.get("content"), delta.get("tool_calls")
    else:
        text = calls = None
    return (text if isinstance(text, str) else ""), (calls if isinstance(calls, list) else [])


def envelope(chunk: dict[str, Any]) -> bytes:
    """How a chunk written compactly in OpenAI's key order begins, up to its model's name
    (b"" where the chunk lacks one of those fields).

    >>> envelope({"id": "c1", "object": "chat.completion.chunk", "created": 7, "model": "m"})
    b'{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m"'
    """
    try:
        return b"{" + b",".join(b'"%s":%s' % (key.encode(), orjson.dumps(chunk[key]))
                                for key in ("id", "object", "created", "model"))
    except KeyError:
        return b""


def read_chunk(data: bytes, name: str) -> dict[str, Any]:
    """One stream chunk, parsed; an error chunk raises the upstream's error."""
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise malformed(name, "a stream chunk that is not JSON") from None
    if not isinstance(chunk, dict):
        raise malformed(name, "a stream chunk that is not a JSON object")
    if error := chunk.get("error"):
        message = get(error, "message") or "error"
        raise UpstreamError(f"{name}: {message}", retryable=True)
    return chunk
