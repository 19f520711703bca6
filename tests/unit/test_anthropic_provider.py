"""The Anthropic adapter's pure parts: canonical -> Messages body, responses and stream events
-> canonical events, usage normalisation and error mapping."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from inferplane.api.anthropic_parse import parse
from inferplane.config import DeploymentConfig
from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    Finished,
    Message,
    SamplingParams,
    StreamEvent,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from inferplane.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicProvider,
    EventReader,
    request_body,
    response_events,
    tool_choice,
    usage,
)
from inferplane.providers.base import provider_class
from tests.provider_helpers import chat

WEATHER = Tool("weather", "Weather in a city", {"type": "object"})


def deployment(**fields: Any) -> DeploymentConfig:
    return DeploymentConfig(name="claude", model="chat", provider="anthropic", **fields)


def sse(*events: dict[str, Any]) -> list[tuple[str, bytes]]:
    return [(e["type"], orjson.dumps(e)) for e in events]


def read(events: list[tuple[str, bytes]]) -> tuple[EventReader, list[StreamEvent]]:
    reader = EventReader("claude")
    out: list[StreamEvent] = []
    for name, data in events:
        out += reader.feed(name, data)
    return reader, out


# -- the provider ---------------------------------------------------------------------------


def test_registered_with_its_url_and_headers() -> None:
    assert provider_class("anthropic") is AnthropicProvider
    p = AnthropicProvider(deployment(upstream_model="claude-sonnet"))
    assert p.url == "https://api.anthropic.com/v1/messages"
    assert p.upstream_model == "claude-sonnet"
    assert p.auth_headers("sk-ant") == {"x-api-key": "sk-ant"}
    assert p._headers() == {"anthropic-version": "2023-06-01"}
    assert p.serves("chat.completions", frozenset({"tools"})) and not p.serves("completions")
    assert not p.serves("chat.completions", frozenset({"logprobs"}))
    for base in ("http://127.0.0.1:9000", "http://127.0.0.1:9000/v1/"):
        assert AnthropicProvider(deployment(base_url=base)).url == (
            "http://127.0.0.1:9000/v1/messages")


def test_a_deployment_header_overrides_the_version() -> None:
    p = AnthropicProvider(deployment(headers={"Anthropic-Version": "2099-01-01"}))
    assert p._headers() == {}


# -- canonical -> Messages body -------------------------------------------------------------


def test_minimal_body_gets_max_tokens_and_no_sampling_defaults() -> None:
    assert request_body(chat(params=SamplingParams(seed=7)), "claude-x") == {
        "model": "claude-x", "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_sampling_fields_and_temperature_clamp() -> None:
    params = SamplingParams(max_tokens=64, temperature=1.7, top_p=0.9, stop=("END",))
    body = request_body(chat(params=params, stream=True, user="u-1"), "m")
    assert body["max_tokens"] == 64
    assert body["temperature"] == 1.0
    assert body["top_p"] == 0.9
    assert body["stop_sequences"] == ["END"]
    assert body["stream"] is True
    assert body["metadata"] == {"user_id": "u-1"}
    assert request_body(chat(params=SamplingParams(temperature=0.2)), "m")["temperature"] == 0.2


def test_system_and_developer_messages_join_the_system_prompt() -> None:
    body = request_body(chat(Message("system", "Be brief."), Message("user", "Hi"),
                             Message("developer", "Use metric units."), Message("system", "")),
                        "m")
    assert body["system"] == "Be brief.\n\nUse metric units."
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_tool_turns_become_blocks_and_merge() -> None:
    calls = (ToolCall("call_1", "weather", '{"city": "Paris"}'),
             ToolCall("call:2", "weather", "not json"))
    body = request_body(chat(
        Message("user", "Paris and Rome?"),
        Message("assistant", "", calls),
        Message("tool", "18C", tool_call_id="call_1"),
        Message("tool", "", tool_call_id="call:2"),
        Message("user", "Thanks"),
    ), "m")
    assert body["messages"] == [
        {"role": "user", "content": "Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2"},
            {"type": "text", "text": "Thanks"},
        ]},
    ]


def test_empty_turns_are_left_out_and_their_neighbours_merge() -> None:
    body = request_body(chat(Message("user", "a"), Message("assistant", ""),
                             Message("user", "b")), "m")
    assert body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]


def test_tools_and_tool_choice() -> None:
    bare, untyped = Tool("ping"), Tool("pong", parameters={"properties": {}})
    body = request_body(chat(tools=(WEATHER, bare, untyped),
                             tool_choice=ToolChoice("required")), "m")
    assert body["tools"] == [
        {"name": "weather", "description": "Weather in a city", "input_schema": {"type": "object"}},
        {"name": "ping", "input_schema": {"type": "object"}},
        {"name": "pong", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert body["tool_choice"] == {"type": "any"}
    assert "tool_choice" not in request_body(chat(tool_choice=ToolChoice("auto")), "m")


@pytest.mark.parametrize(("choice", "parallel", "expected"), [
    (None, None, None),
    (None, True, None),
    (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
    (ToolChoice("auto"), None, {"type": "auto"}),
    (ToolChoice("none"), False, {"type": "none"}),
    (ToolChoice("required"), False, {"type": "any", "disable_parallel_tool_use": True}),
    (ToolChoice("function", "weather"), None, {"type": "tool", "name": "weather"}),
])
def test_tool_choice_table(choice: ToolChoice | None, parallel: bool | None,
                           expected: dict[str, Any] | None) -> None:
    assert tool_choice(choice, parallel) == expected


def test_an_anthropic_body_survives_parse_then_request_body() -> None:
    body = {
        "model": "claude-x", "max_tokens": 300, "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "weather",
                 "input": {"city": "Paris", "units": ["C"]}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {"type": "text", "text": "And tomorrow?"}]},
        ],
        "tools": [{"name": "weather", "description": "Weather in a city",
                   "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
        "temperature": 0.5, "top_p": 0.8, "stop_sequences": ["END"], "stream": True,
        "metadata": {"user_id": "u-1"},
    }
    assert request_body(parse(body, "msg_1", 0), "claude-x") == body


# -- responses -> canonical -----------------------------------------------------------------


def test_usage_is_normalised_to_include_cache_tokens() -> None:
    wire = {"input_tokens": 10, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 60,
            "output_tokens": 7, "output_tokens_details": {"thinking_tokens": 3}}
    assert usage(wire) == Usage(prompt_tokens=100, completion_tokens=7, cached_tokens=60,
                                cache_write_tokens=30, reasoning_tokens=3)
    assert usage({"input_tokens": 5, "cache_read_input_tokens": None, "output_tokens": 1}) == (
        Usage(prompt_tokens=5, completion_tokens=1))
    assert usage(None) == Usage()


def test_whole_response_events() -> None:
    data = {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Oslo"}},
            {"type": "tool_use", "id": "toolu_2", "name": "time", "input": {}},
        ],
        "stop_reason": "tool_use", "stop_sequence": None,
        "usage": {"input_tokens": 4, "cache_read_input_tokens": 6, "output_tokens": 9},
    }
    assert response_events(data, "claude") == [
        TextDelta("Checking."),
        ToolCallDelta(0, '{"city":"Oslo"}', "toolu_1", "weather"),
        ToolCallDelta(1, "", "toolu_2", "time"),
        Finished("tool_calls", Usage(prompt_tokens=10, completion_tokens=9, cached_tokens=6)),
    ]


@pytest.mark.parametrize(("reason", "expected"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("max_tokens", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("pause_turn", "stop"),
    ("model_context_window_exceeded", "length"), ("something_new", "stop"), (None, "stop"),
])
def test_stop_reasons(reason: str | None, expected: str) -> None:
    data: dict[str, Any] = {"content": [], "stop_reason": reason,
            "stop_sequence": "END" if reason == "stop_sequence" else None}
    [finished] = response_events(data, "claude")
    assert isinstance(finished, Finished)
    assert finished.finish_reason == expected
    assert finished.stop_sequence == ("END" if reason == "stop_sequence" else None)


def test_a_response_without_content_or_with_an_error_body() -> None:
    with pytest.raises(UpstreamError) as info:
        response_events({"type": "message"}, "claude")
    assert info.value.code == "upstream_malformed"
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as info:
        response_events(error, "claude")
    assert info.value.retryable and info.value.upstream_status == 529


def test_stream_events() -> None:
    reader, events = read(sse(
        {"type": "message_start", "message": {
            "id": "msg_01", "type": "message", "role": "assistant", "content": [],
            "model": "claude-x", "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 4, "cache_creation_input_tokens": 2,
                      "cache_read_input_tokens": 6, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "ping"},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": ""}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": ""}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '"Oslo"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {
            "type": "tool_use", "id": "toolu_2", "name": "time", "input": {}}},
        {"type": "content_block_stop", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 25}},
    ))
    assert reader.usage().prompt_tokens == 12
    assert not reader.done
    assert events == [
        TextDelta("Hi"),
        ToolCallDelta(0, "", "toolu_1", "weather"),
        ToolCallDelta(0, '{"city":'), ToolCallDelta(0, '"Oslo"}'),
        ToolCallDelta(1, "", "toolu_2", "time"),
    ]
    assert reader.feed("message_stop", b'{"type": "message_stop"}') == [
        Finished("tool_calls", Usage(prompt_tokens=12, completion_tokens=25, cached_tokens=6,
                                     cache_write_tokens=2)),
    ]
    assert reader.done


def test_message_delta_counts_overwrite_message_start_and_keep_the_stop_sequence() -> None:
    _, events = read(sse(
        {"type": "message_start", "message": {"usage": {"input_tokens": 4, "output_tokens": 1}}},
        {"type": "message_delta", "delta": {"stop_reason": "stop_sequence",
                                            "stop_sequence": "END"},
         "usage": {"input_tokens": 5, "cache_read_input_tokens": None, "output_tokens": 3}},
        {"type": "message_stop"},
    ))
    assert events == [Finished("stop", Usage(prompt_tokens=5, completion_tokens=3),
                               stop_sequence="END")]


@pytest.mark.parametrize(("kind", "upstream_status", "status", "retryable"), [
    ("overloaded_error", 529, 503, True),
    ("api_error", 500, 502, True),
    ("rate_limit_error", 429, 429, True),
    ("invalid_request_error", 400, 400, False),
    ("brand_new_error", 500, 502, True),
])
def test_an_error_event_mid_stream(kind: str, upstream_status: int, status: int,
                                   retryable: bool) -> None:
    reader = EventReader("claude")
    reader.feed("message_start", b'{"type": "message_start", "message": {}}')
    error = {"type": "error", "error": {"type": kind, "message": "went wrong"}}
    with pytest.raises(UpstreamError) as info:
        reader.feed("error", orjson.dumps(error))
    err = info.value
    assert (err.upstream_status, err.status, err.retryable) == (upstream_status, status, retryable)
    assert err.message == "claude: went wrong"


def test_an_unreadable_event() -> None:
    with pytest.raises(UpstreamError) as info:
        EventReader("claude").feed("message_start", b"{not json")
    assert info.value.code == "upstream_malformed" and info.value.retryable


def test_unknown_events_give_nothing() -> None:
    reader = EventReader("claude")
    assert reader.feed("ping", b'{"type": "ping"}') == []
    assert reader.feed("future_event", b'{"type": "future_event"}') == []


def test_vendor_fields_are_honoured_only_in_the_upstreams_own_protocol() -> None:
    from inferplane.providers.openai_compat import OpenAICompatProvider

    ant = AnthropicProvider(DeploymentConfig(name="a", model="m", provider="anthropic"))
    oai = OpenAICompatProvider(DeploymentConfig(name="o", model="m", provider="openai",
                                                base_url="http://127.0.0.1:9/v1"))
    fields = frozenset({"top_k"})
    assert ant.serves("chat.completions", fields, "anthropic")
    assert not ant.serves("chat.completions", fields, "openai")
    assert oai.serves("chat.completions", fields, "openai")
    assert not oai.serves("chat.completions", fields, "anthropic")
