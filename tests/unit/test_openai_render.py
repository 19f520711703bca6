"""Canonical results -> OpenAI response objects and SSE chunks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.api.openai_render import DONE, ChunkWriter, completion, usage
from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    Endpoint,
    Finished,
    GenerationRequest,
    SamplingParams,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

FINISHED = Finished("length", Usage(prompt_tokens=12, completion_tokens=30), engine_seconds=0.5)


def request(endpoint: Endpoint = "chat.completions", *, include_usage: bool = False
            ) -> GenerationRequest:
    return GenerationRequest(
        id="chatcmpl-1" if endpoint == "chat.completions" else "cmpl-1", endpoint=endpoint,
        model="my-model", params=SamplingParams(), stream=True, include_usage=include_usage,
        created=1_700_000_000,
    )


def parse_event(event: bytes) -> Any:
    assert event.startswith(b"data: ")
    assert event.endswith(b"\n\n")
    assert event.count(b"\n\n") == 1  # exactly one event, ended by a blank line
    return orjson.loads(event[len(b"data: ") : -2])


def test_usage_totals() -> None:
    assert usage(FINISHED.usage) == {
        "prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
    assert usage(Usage())["total_tokens"] == 0


def test_usage_details_appear_only_when_reported() -> None:
    detailed = usage(Usage(100, 50, cached_tokens=60, reasoning_tokens=20))
    assert detailed["prompt_tokens_details"] == {"cached_tokens": 60}
    assert detailed["completion_tokens_details"] == {"reasoning_tokens": 20}
    assert detailed["total_tokens"] == 150


def test_chat_completion_object() -> None:
    body = completion(request(), "Hello!", Finished("stop", Usage(5, 2)))
    assert body == {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "my-model",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        "system_fingerprint": None,
    }
    assert orjson.loads(orjson.dumps(body)) == body


def test_text_completion_object() -> None:
    body = completion(request("completions"), " upon a time", FINISHED)
    assert body["object"] == "text_completion"
    assert body["id"] == "cmpl-1"
    assert body["choices"] == [
        {"index": 0, "text": " upon a time", "logprobs": None, "finish_reason": "length"}
    ]
    assert body["usage"] == {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
    assert "message" not in body["choices"][0]


def test_chat_stream_chunks() -> None:
    writer = ChunkWriter(request())
    events = [writer.first(), writer.text(TextDelta("Hel")), writer.text(TextDelta("lo")),
              writer.finish(FINISHED)]
    chunks = [parse_event(e) for e in events]
    for chunk in chunks:
        assert chunk["id"] == "chatcmpl-1"
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["created"] == 1_700_000_000
        assert chunk["model"] == "my-model"
        assert chunk["system_fingerprint"] is None
        assert "usage" not in chunk
        assert len(chunk["choices"]) == 1
        assert chunk["choices"][0]["index"] == 0
        assert chunk["choices"][0]["logprobs"] is None
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [{"role": "assistant", "content": ""}, {"content": "Hel"},
                      {"content": "lo"}, {}]
    reasons = [c["choices"][0]["finish_reason"] for c in chunks]
    assert reasons == [None, None, None, "length"]


def test_include_usage_adds_null_usage_to_every_choice_chunk() -> None:
    writer = ChunkWriter(request(include_usage=True))
    for event in (writer.first(), writer.text(TextDelta("x")), writer.finish(FINISHED)):
        chunk = parse_event(event)
        assert "usage" in chunk
        assert chunk["usage"] is None


def test_usage_chunk_has_no_choices() -> None:
    writer = ChunkWriter(request(include_usage=True))
    usage_event, done = writer.done(FINISHED).split(b"\n\n", 1)
    assert done == DONE
    chunk = parse_event(usage_event + b"\n\n")
    assert chunk["choices"] == []
    assert chunk["usage"] == {"prompt_tokens": 12, "completion_tokens": 30, "total_tokens": 42}
    assert chunk["object"] == "chat.completion.chunk"
    assert chunk["id"] == "chatcmpl-1"


def test_text_completion_stream_chunks_use_text() -> None:
    writer = ChunkWriter(request("completions"))
    assert writer.first() == b""  # no role chunk for plain completions
    chunks = [parse_event(writer.text(TextDelta(" upon"))), parse_event(writer.finish(FINISHED))]
    for chunk in chunks:
        assert chunk["object"] == "text_completion"
        assert chunk["id"] == "cmpl-1"
        assert "delta" not in chunk["choices"][0]
        assert "usage" not in chunk
    assert [c["choices"][0]["text"] for c in chunks] == [" upon", ""]
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "length"]


def test_text_completion_stream_with_usage() -> None:
    writer = ChunkWriter(request("completions", include_usage=True))
    assert parse_event(writer.text(TextDelta("a")))["usage"] is None
    final = parse_event(writer.done(FINISHED)[: -len(DONE)])
    assert final["choices"] == []
    assert final["usage"]["total_tokens"] == 42
    assert final["object"] == "text_completion"


@pytest.mark.parametrize("piece", ["line\nbreak", "data: [DONE]\n\n", 'quote " \\ \u2028 é 🙂', ""])
def test_awkward_text_stays_one_event(piece: str) -> None:
    for req in (request(), request("completions")):
        chunk = parse_event(ChunkWriter(req).text(TextDelta(piece)))
        choice = chunk["choices"][0]
        assert (choice["delta"]["content"] if "delta" in choice else choice["text"]) == piece


def test_done_and_error_events() -> None:
    assert DONE == b"data: [DONE]\n\n"
    assert ChunkWriter(request()).done(FINISHED) == DONE  # no usage chunk unless asked
    error = parse_event(ChunkWriter(request()).error(UpstreamError("boom", upstream_status=500)))
    assert error == {"error": {"message": "boom", "type": "upstream_error", "param": None,
                               "code": "upstream_error"}}


def test_tool_calls_in_a_whole_response() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    body = completion(request(), "", Finished("tool_calls", Usage(5, 9)), calls)
    message = body["choices"][0]["message"]
    assert message["content"] is None
    assert message["tool_calls"] == [{"id": "call_1", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert body["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_stream_chunks() -> None:
    writer = ChunkWriter(request())
    head = parse_event(writer.tool_call(ToolCallDelta(0, "", "call_1", "get_weather")))
    tail = parse_event(writer.tool_call(ToolCallDelta(0, '{"city"')))
    assert head["choices"][0]["delta"]["tool_calls"] == [{
        "index": 0, "id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": ""}}]
    assert tail["choices"][0]["delta"]["tool_calls"] == [{
        "index": 0, "function": {"arguments": '{"city"'}}]
