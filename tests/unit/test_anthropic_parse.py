"""Anthropic Messages bodies -> GenerationRequest, and the InvalidRequest each bad body gets."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.api.anthropic_parse import parse
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    GenerationRequest,
    Message,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)

USER = [{"role": "user", "content": "Hi"}]
WEATHER: dict[str, Any] = {
    "name": "weather", "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


DROP = object()  # a field value that removes the field


def body(**fields: Any) -> dict[str, Any]:
    raw = {"model": "claude", "max_tokens": 100, "messages": USER, **fields}
    return {k: v for k, v in raw.items() if v is not DROP}


def req(**fields: Any) -> GenerationRequest:
    return parse(body(**fields), "msg_1", 123)


def invalid(raw: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(raw, "msg_1", 0)
    assert info.value.status == 400
    assert info.value.param is not None
    assert info.value.message.startswith(info.value.param + ": ")
    return info.value


def bad(**fields: Any) -> InvalidRequest:
    return invalid(body(**fields))


# -- valid bodies ---------------------------------------------------------------------------


def test_minimal_body_gets_the_defaults() -> None:
    assert req() == GenerationRequest(
        id="msg_1", endpoint="chat.completions", model="claude",
        params=SamplingParams(max_tokens=100), messages=(Message("user", "Hi"),),
        stream=False, include_usage=True, created=123, wire="anthropic",
    )


def test_sampling_fields() -> None:
    r = req(temperature=0, top_p=0.9, top_k=40, stop_sequences=["\n\nHuman:", "END"],
            stream=True, metadata={"user_id": "u-42"})
    assert r.params == SamplingParams(max_tokens=100, temperature=0.0, top_p=0.9,
                                      stop=("\n\nHuman:", "END"))
    assert isinstance(r.params.temperature, float)
    assert r.stream and r.include_usage
    assert r.user == "u-42"


def test_system_string_and_blocks_lead_the_messages() -> None:
    assert req(system="Be brief.").messages[0] == Message("system", "Be brief.")
    blocks = [{"type": "text", "text": "One."},
              {"type": "text", "text": "Two.", "cache_control": {"type": "ephemeral"}}]
    assert req(system=blocks).messages[:2] == (Message("system", "One.\n\nTwo."),
                                               Message("user", "Hi"))
    assert req(system="").messages == (Message("user", "Hi"),)


def test_text_blocks_of_a_turn_are_joined() -> None:
    turns = [{"role": "user", "content": [{"type": "text", "text": "a"},
                                          {"type": "text", "text": "b"}]},
             {"role": "assistant", "content": "c"}]
    assert req(messages=turns).messages == (Message("user", "a\n\nb"),
                                            Message("assistant", "c"))


def test_tool_round_trip() -> None:
    turns = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "...", "signature": "s"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "timeout"}]},
            {"type": "text", "text": "Thanks"},
        ]},
    ]
    r = req(messages=turns, tools=[WEATHER])
    assert r.messages == (
        Message("user", "Weather in Paris and Rome?"),
        Message("assistant", "Checking.", (
            ToolCall("toolu_1", "weather", '{"city":"Paris"}'),
            ToolCall("toolu_2", "weather", '{"city":"Rome"}'),
        )),
        Message("tool", "18C", tool_call_id="toolu_1", name="weather"),
        Message("tool", "Error: timeout", tool_call_id="toolu_2", name="weather"),
        Message("user", "Thanks"),
    )
    assert r.tools == (Tool("weather", "Weather in a city", WEATHER["input_schema"]),)


def test_tool_results_without_text_or_content() -> None:
    turns = [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "", "is_error": True},
    ]}]
    assert req(messages=turns).messages == (
        Message("tool", "", tool_call_id="t1"), Message("tool", "Error", tool_call_id="t2"),
    )
    assert req(messages=[{"role": "user", "content": []}]).messages == (Message("user", ""),)


@pytest.mark.parametrize(("choice", "expected", "parallel"), [
    ({"type": "auto"}, ToolChoice("auto"), None),
    ({"type": "any"}, ToolChoice("required"), None),
    ({"type": "none"}, ToolChoice("none"), None),
    ({"type": "tool", "name": "weather"}, ToolChoice("function", "weather"), None),
    ({"type": "auto", "disable_parallel_tool_use": True}, ToolChoice("auto"), False),
    ({"type": "any", "disable_parallel_tool_use": False}, ToolChoice("required"), True),
])
def test_tool_choice(choice: dict[str, Any], expected: ToolChoice, parallel: bool | None
                     ) -> None:
    r = req(tools=[WEATHER], tool_choice=choice)
    assert (r.tool_choice, r.parallel_tool_calls) == (expected, parallel)


def test_custom_tool_type_and_missing_description() -> None:
    tool = {"type": "custom", "name": "f", "input_schema": {"type": "object"}}
    assert req(tools=[tool]).tools == (Tool("f", "", {"type": "object"}),)


# -- invalid bodies -------------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "param"), [
    ({"max_tokens": DROP}, "max_tokens"),
    ({"max_tokens": 0}, "max_tokens"),
    ({"max_tokens": "10"}, "max_tokens"),
    ({"max_tokens": True}, "max_tokens"),
    ({"model": ""}, "model"),
    ({"model": 3}, "model"),
    ({"temperature": 1.5}, "temperature"),
    ({"temperature": "hot"}, "temperature"),
    ({"top_p": -0.1}, "top_p"),
    ({"top_k": -1}, "top_k"),
    ({"stream": "yes"}, "stream"),
    ({"stop_sequences": "END"}, "stop_sequences"),
    ({"stop_sequences": [""]}, "stop_sequences"),
    ({"metadata": "u"}, "metadata"),
    ({"metadata": {"user_id": 7}}, "metadata.user_id"),
    ({"messages": DROP}, "messages"),
    ({"messages": []}, "messages"),
    ({"messages": {"role": "user"}}, "messages"),
    ({"messages": ["Hi"]}, "messages.0"),
    ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role"),
    ({"messages": [{"role": "user"}]}, "messages.0.content"),
    ({"system": 5}, "system"),
    ({"system": [{"type": "image"}]}, "system.0"),
    ({"tools": {}}, "tools"),
    ({"tools": [{"name": "f"}]}, "tools.0.input_schema"),
    ({"tools": [{"name": "", "input_schema": {}}]}, "tools.0.name"),
    ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools.0.type"),
    ({"tool_choice": "auto"}, "tool_choice"),
    ({"tool_choice": {"type": "required"}}, "tool_choice.type"),
    ({"tool_choice": {"type": "tool", "name": "nope"}, "tools": [WEATHER]}, "tool_choice.name"),
    ({"tool_choice": {"type": "auto", "disable_parallel_tool_use": 1}},
     "tool_choice.disable_parallel_tool_use"),
])
def test_invalid_fields_name_their_param(fields: dict[str, Any], param: str) -> None:
    assert bad(**fields).param == param


def test_missing_max_tokens_says_it_is_required() -> None:
    assert "required" in bad(max_tokens=DROP).message


@pytest.mark.parametrize("kind", ["image", "document"])
def test_image_and_document_blocks_are_refused_clearly(kind: str) -> None:
    turns = [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": kind, "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
    ]}]
    err = bad(messages=turns)
    assert err.param == "messages.0.content.1"
    assert f"{kind} blocks are not supported" in err.message
    assert "only text and tool blocks" in err.message


@pytest.mark.parametrize(("turn", "param"), [
    ({"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]},
     "messages.0.content.0.type"),
    ({"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
     "messages.0.content.0.type"),
    ({"role": "user", "content": [{"type": "thinking", "thinking": "x"}]},
     "messages.0.content.0.type"),
    ({"role": "user", "content": ["text"]}, "messages.0.content.0"),
    ({"role": "user", "content": [{"text": "x"}]}, "messages.0.content.0.type"),
    ({"role": "user", "content": [{"type": "text", "text": 1}]}, "messages.0.content.0.text"),
    ({"role": "assistant", "content": [{"type": "tool_use", "name": "f", "input": {}}]},
     "messages.0.content.0.id"),
    ({"role": "assistant", "content": [{"type": "tool_use", "id": "t", "input": {}}]},
     "messages.0.content.0.name"),
    ({"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                        "input": "{}"}]}, "messages.0.content.0.input"),
    ({"role": "user", "content": [{"type": "tool_result", "content": "x"}]},
     "messages.0.content.0.tool_use_id"),
    ({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                   "content": [{"type": "image"}]}]},
     "messages.0.content.0.content.0"),
    ({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 5}]},
     "messages.0.content.0.content"),
    ({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                   "is_error": "yes"}]}, "messages.0.content.0.is_error"),
])
def test_invalid_blocks_name_their_path(turn: dict[str, Any], param: str) -> None:
    assert bad(messages=[turn]).param == param


def test_a_misplaced_tool_block_names_the_allowed_blocks() -> None:
    turn = {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f",
                                         "input": {}}]}
    assert "allowed: text, tool_result" in bad(messages=[turn]).message
