"""Canonical results -> Anthropic messages, SSE frames and errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, strategies as st

from inferplane.api.anthropic_render import (
    REQUEST_ID_HEADER,
    StreamWriter,
    error_body,
    error_frame,
    error_headers,
    error_status,
    error_type,
    message,
    usage,
)
from inferplane.errors import (
    EngineUnavailable,
    InferplaneError,
    InvalidRequest,
    ModelNotFound,
    PayloadTooLarge,
    RateLimited,
    ResidencyUnsatisfiable,
    ServiceUnavailable,
    UpstreamError,
    UpstreamTimeout,
)
from inferplane.protocol.types import (
    Finished,
    FinishReason,
    GenerationRequest,
    SamplingParams,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from inferplane.providers import anthropic as provider

REQUEST = GenerationRequest(id="msg_1", endpoint="chat.completions", model="claude-x",
                            params=SamplingParams(max_tokens=50), stream=True)
USAGE = Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=60, cache_write_tokens=30)
WIRE_USAGE = {"input_tokens": 10, "cache_creation_input_tokens": 30,
              "cache_read_input_tokens": 60, "output_tokens": 7}


def parse_sse(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """``event: NAME\\ndata: JSON\\n\\n`` frames, each checked for its exact shape."""
    assert raw.endswith(b"\n\n")
    frames = []
    for chunk in raw[:-2].split(b"\n\n"):
        event, data = chunk.split(b"\n")
        assert event.startswith(b"event: ") and data.startswith(b"data: ")
        name, payload = event[len(b"event: "):].decode(), orjson.loads(data[len(b"data: "):])
        assert payload["type"] == name
        frames.append((name, payload))
    return frames


def accumulate(frames: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The message a client rebuilds from a stream, as Anthropic's SDKs do."""
    names = [name for name, _ in frames]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    msg: dict[str, Any] = frames[0][1]["message"]
    buffers: dict[int, str] = {}
    for name, event in frames[1:]:
        if name == "content_block_start":
            assert event["index"] == len(msg["content"])
            msg["content"].append(dict(event["content_block"]))
        elif name == "content_block_delta":
            delta = event["delta"]
            if delta["type"] == "text_delta":
                msg["content"][event["index"]]["text"] += delta["text"]
            else:
                buffers[event["index"]] = buffers.get(event["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and event["index"] in buffers:
            msg["content"][event["index"]]["input"] = orjson.loads(buffers[event["index"]])
        elif name == "message_delta":
            msg.update(event["delta"])
            msg["usage"].update(event["usage"])
    return msg


# -- usage ----------------------------------------------------------------------------------


def test_usage_counts_cache_tokens_apart() -> None:
    assert usage(USAGE) == WIRE_USAGE
    reasoning = usage(Usage(prompt_tokens=5, completion_tokens=9, reasoning_tokens=4))
    assert reasoning["output_tokens_details"] == {"thinking_tokens": 4}


counts = st.integers(min_value=0, max_value=10**9)


@given(counts, counts, counts, counts, counts)
def test_wire_usage_survives_parse_then_render(input_tokens: int, read: int, write: int,
                                              output: int, thinking: int) -> None:
    wire: dict[str, Any] = {"input_tokens": input_tokens, "cache_creation_input_tokens": write,
                            "cache_read_input_tokens": read, "output_tokens": output}
    if thinking:
        wire["output_tokens_details"] = {"thinking_tokens": thinking}
    canonical = provider.usage(wire)
    assert canonical.prompt_tokens == input_tokens + read + write
    assert usage(canonical) == wire


@given(counts, counts, counts, counts)
def test_canonical_usage_survives_render_then_parse(uncached: int, read: int, write: int,
                                                    output: int) -> None:
    canonical = Usage(prompt_tokens=uncached + read + write, completion_tokens=output,
                      cached_tokens=read, cache_write_tokens=write)
    assert provider.usage(usage(canonical)) == canonical


# -- whole messages -------------------------------------------------------------------------


def test_message_with_text_and_tool_calls() -> None:
    calls = (ToolCall("toolu_a", "weather", '{"city": "Paris"}'),
             ToolCall("toolu_b", "broken", '{"city": '))
    body = message(REQUEST, "Checking.", Finished("tool_calls", USAGE), calls)
    assert body == {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_a", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_b", "name": "broken", "input": {}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": WIRE_USAGE,
    }


@pytest.mark.parametrize(("reason", "sequence", "expected"), [
    ("stop", None, "end_turn"), ("stop", "END", "stop_sequence"), ("length", None, "max_tokens"),
    ("tool_calls", None, "tool_use"), ("content_filter", None, "refusal"),
    ("cancelled", None, "end_turn"),
])
def test_stop_reasons(reason: FinishReason, sequence: str | None, expected: str) -> None:
    body = message(REQUEST, "x", Finished(reason, Usage(), stop_sequence=sequence))
    assert (body["stop_reason"], body["stop_sequence"]) == (expected, sequence)


def test_empty_text_gets_no_block_and_ids_get_the_prefix() -> None:
    other = GenerationRequest(id="abc", endpoint="chat.completions", model="m",
                              params=SamplingParams())
    body = message(other, "", Finished("stop", Usage()))
    assert body["content"] == []
    assert body["id"] == "msg_abc"


# -- streams --------------------------------------------------------------------------------


def end(writer: StreamWriter, finished: Finished) -> bytes:
    return writer.finish(finished) + writer.done(finished)


def test_stream_frames_event_by_event() -> None:
    writer = StreamWriter(REQUEST, prompt_tokens=12)
    raw = b"".join([
        writer.first(),
        writer.text(TextDelta("Hel")), writer.text(TextDelta("")), writer.text(TextDelta("lo")),
        writer.tool_call(ToolCallDelta(0, "", "toolu_a", "weather")),
        writer.tool_call(ToolCallDelta(0, '{"city":')),
        writer.tool_call(ToolCallDelta(0, ' "Paris"}')),
        writer.tool_call(ToolCallDelta(1, "{}", "toolu_b", "time")),
        end(writer, Finished("tool_calls", USAGE)),
    ])
    frames = parse_sse(raw)
    expected: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ("ping", {"type": "ping"}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Hel"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "lo"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_a", "name": "weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": '{"city":'}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": ' "Paris"}'}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_b", "name": "time", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 2, "delta": {
            "type": "input_json_delta", "partial_json": "{}"}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        ("message_delta", {"type": "message_delta",
                           "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": WIRE_USAGE}),
        ("message_stop", {"type": "message_stop"}),
    ]
    assert len(frames) == len(expected)
    for got, want in zip(frames, expected, strict=True):
        assert got == want


def test_a_stream_rebuilds_the_non_streamed_message() -> None:
    calls = (ToolCall("toolu_a", "weather", '{"city": "Paris"}'),)
    finished = Finished("stop", USAGE, stop_sequence="END")
    writer = StreamWriter(REQUEST)
    raw = (writer.first() + writer.text(TextDelta("It is ")) + writer.text(TextDelta("sunny."))
           + writer.tool_call(ToolCallDelta(0, '{"city": ', "toolu_a", "weather"))
           + writer.tool_call(ToolCallDelta(0, '"Paris"}')) + end(writer, finished))
    assert accumulate(parse_sse(raw)) == message(REQUEST, "It is sunny.", finished, calls)


def test_text_after_a_tool_call_opens_a_new_block() -> None:
    writer = StreamWriter(REQUEST)
    raw = (writer.first() + writer.tool_call(ToolCallDelta(0, "{}", "toolu_a", "f"))
           + writer.text(TextDelta("done")) + end(writer, Finished("stop", Usage())))
    starts = [(e["index"], e["content_block"]["type"])
              for name, e in parse_sse(raw) if name == "content_block_start"]
    assert starts == [(0, "tool_use"), (1, "text")]


def test_a_late_piece_goes_to_its_own_block() -> None:
    writer = StreamWriter(REQUEST)
    writer.first()
    writer.tool_call(ToolCallDelta(0, "{", "toolu_a", "f"))
    writer.tool_call(ToolCallDelta(1, "{", "toolu_b", "g"))
    (name, event), = parse_sse(writer.tool_call(ToolCallDelta(0, "}")))
    assert (name, event["index"]) == ("content_block_delta", 0)


def test_a_stream_without_content_and_a_tool_call_without_id() -> None:
    writer = StreamWriter(REQUEST)
    names = [n for n, _ in parse_sse(writer.first() + end(writer, Finished("length", Usage())))]
    assert names == ["message_start", "ping", "message_delta", "message_stop"]
    (_, start), = parse_sse(StreamWriter(REQUEST).tool_call(ToolCallDelta(3)))
    assert start["content_block"]["id"] == "toolu_msg_1_3"


def test_frames_validate_against_the_sdk_types() -> None:
    pydantic = pytest.importorskip("pydantic")
    types = pytest.importorskip("anthropic.types")
    writer = StreamWriter(REQUEST, prompt_tokens=3)
    raw = (writer.first() + writer.text(TextDelta("Hi"))
           + writer.tool_call(ToolCallDelta(0, '{"a": 1}', "toolu_a", "f"))
           + end(writer, Finished("tool_calls", USAGE)))
    adapter = pydantic.TypeAdapter(types.RawMessageStreamEvent)
    for name, event in parse_sse(raw):
        if name != "ping":  # the SDKs skip pings; their event union leaves them out
            adapter.validate_python(event)
    types.Message.model_validate(
        message(REQUEST, "Hi", Finished("tool_calls", USAGE), (ToolCall("t", "f", "{}"),)))


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("exc", "status", "kind"), [
    (InvalidRequest("bad"), 400, "invalid_request_error"),
    (ResidencyUnsatisfiable("eu only"), 403, "permission_error"),
    (ModelNotFound("no model"), 404, "not_found_error"),
    (PayloadTooLarge("too big"), 413, "request_too_large"),
    (RateLimited("slow down"), 429, "rate_limit_error"),
    (InferplaneError("bug"), 500, "api_error"),
    (UpstreamError("refused", upstream_status=401), 502, "api_error"),
    (UpstreamError("bad param", upstream_status=422), 400, "invalid_request_error"),
    (UpstreamError("overloaded", upstream_status=529), 529, "overloaded_error"),
    (ServiceUnavailable("busy"), 529, "overloaded_error"),
    (EngineUnavailable("down"), 529, "overloaded_error"),
    (UpstreamTimeout("slow"), 504, "timeout_error"),
])
def test_error_status_and_type(exc: InferplaneError, status: int, kind: str) -> None:
    assert error_status(exc) == status
    assert error_body(exc) == {"type": "error", "error": {"type": kind, "message": exc.message}}


def test_error_types_of_other_statuses() -> None:
    assert [error_type(s) for s in (401, 405, 422, 501, 503)] == [
        "authentication_error", "invalid_request_error", "invalid_request_error", "api_error",
        "api_error"]


def test_error_body_and_headers_carry_the_request_id_and_retry_hints() -> None:
    exc = RateLimited("slow down", retry_after=1.2)
    assert error_body(exc, "msg_1")["request_id"] == "msg_1"
    assert error_headers(exc, "msg_1") == {REQUEST_ID_HEADER: "msg_1", "retry-after": "2"}
    refused = UpstreamError("refused", upstream_status=401, retryable=False)
    assert error_headers(refused) == {"x-should-retry": "false"}
    assert error_headers(UpstreamError("flaky", retryable=True)) == {}
    assert REQUEST_ID_HEADER == "request-id"


def test_error_frame() -> None:
    exc = ServiceUnavailable("no deployment can serve claude-x now")
    assert parse_sse(error_frame(exc)) == [("error", {"type": "error", "error": {
        "type": "overloaded_error", "message": "no deployment can serve claude-x now"}})]
    assert StreamWriter(REQUEST).error(exc) == error_frame(exc)
