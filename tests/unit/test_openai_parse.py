"""OpenAI request bodies -> GenerationRequest, and the InvalidRequest each bad body gets."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.api.openai_parse import MAX_STOP, parse, parse_embeddings
from inferplane.errors import InvalidRequest
from inferplane.protocol.types import (
    Endpoint,
    GenerationRequest,
    Message,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)

USER = [{"role": "user", "content": "Hi"}]


def chat(**fields: Any) -> GenerationRequest:
    return parse("chat.completions", {"model": "m", "messages": USER, **fields}, "req-1", 123)


def text(**fields: Any) -> GenerationRequest:
    return parse("completions", {"model": "m", "prompt": "Once", **fields}, "req-2", 456)


def invalid(endpoint: Endpoint, body: dict[str, Any]) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as info:
        parse(endpoint, body, "req", 0)
    assert info.value.status == 400
    return info.value


def bad_chat(**fields: Any) -> InvalidRequest:
    return invalid("chat.completions", {"model": "m", "messages": USER, **fields})


def bad_text(**fields: Any) -> InvalidRequest:
    return invalid("completions", {"model": "m", "prompt": "Once", **fields})


# -- valid bodies ---------------------------------------------------------------------------


def test_minimal_chat_gets_the_defaults() -> None:
    req = chat()
    assert req == GenerationRequest(
        id="req-1", endpoint="chat.completions", model="m", params=SamplingParams(),
        messages=(Message("user", "Hi"),), prompt=None, stream=False, include_usage=False,
        created=123, wire="openai",
    )
    assert req.params.temperature == 1.0
    assert req.params.top_p == 1.0
    assert req.params.max_tokens is None
    assert req.params.stop == ()


def test_minimal_completion_gets_the_defaults() -> None:
    req = text()
    assert req == GenerationRequest(
        id="req-2", endpoint="completions", model="m", params=SamplingParams(),
        messages=(), prompt="Once", created=456, wire="openai",
    )


def test_chat_sampling_fields() -> None:
    req = chat(max_tokens=50, temperature=0, top_p=0.5, seed=7, stop=["\n", "END"])
    assert req.params == SamplingParams(
        max_tokens=50, temperature=0.0, top_p=0.5, stop=("\n", "END"), seed=7
    )
    assert isinstance(req.params.temperature, float)


def test_range_bounds_are_inclusive() -> None:
    assert chat(temperature=2, top_p=0).params.temperature == 2.0
    assert chat(temperature=0.0, top_p=1).params.top_p == 1.0


def test_stop_string_becomes_a_one_tuple() -> None:
    assert chat(stop="###").params.stop == ("###",)
    assert text(stop=["a", "b", "c", "d"]).params.stop == ("a", "b", "c", "d")
    assert text(stop=None).params.stop == ()


def test_max_completion_tokens_overrides_max_tokens() -> None:
    assert chat(max_tokens=10, max_completion_tokens=20).params.max_tokens == 20
    assert chat(max_completion_tokens=5).params.max_tokens == 5
    assert chat(max_tokens=10, max_completion_tokens=None).params.max_tokens == 10


def test_max_completion_tokens_is_a_chat_field_only() -> None:
    assert text(max_tokens=10, max_completion_tokens=20).params.max_tokens == 10


def test_stream_with_include_usage() -> None:
    req = chat(stream=True, stream_options={"include_usage": True})
    assert req.stream and req.include_usage
    req = text(stream=True, stream_options={})
    assert req.stream and not req.include_usage
    req = text(stream=True)
    assert req.stream and not req.include_usage


def test_null_fields_mean_absent() -> None:
    req = chat(stream=None, stream_options=None, n=None, temperature=None, top_p=None,
               max_tokens=None, seed=None)
    assert req.params == SamplingParams()
    assert not req.stream


def test_n_1_and_unknown_fields_are_accepted() -> None:
    req = chat(n=1, user="u-1", logit_bias={"50256": -100}, presence_penalty=0.5)
    assert req.messages == (Message("user", "Hi"),)


def test_text_content_parts_are_joined() -> None:
    req = chat(messages=[{"role": "user", "content": [
        {"type": "text", "text": "Hello, "},
        {"type": "text", "text": "world"},
    ]}])
    assert req.messages == (Message("user", "Hello, world"),)


def test_every_role_and_null_assistant_content() -> None:
    req = chat(messages=[
        {"role": "system", "content": "s"},
        {"role": "developer", "content": "d"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "again"},
    ])
    assert req.messages == (
        Message("system", "s"), Message("developer", "d"), Message("user", "u"),
        Message("assistant", ""), Message("user", "again"),
    )


def test_prompt_as_a_one_string_list() -> None:
    assert text(prompt=["Once upon"]).prompt == "Once upon"


# -- invalid bodies -------------------------------------------------------------------------


@pytest.mark.parametrize("model", [None, "", 5])
def test_bad_model(model: Any) -> None:
    assert invalid("chat.completions", {"model": model, "messages": USER}).param == "model"
    assert invalid("completions", {"prompt": "x"}).param == "model"


@pytest.mark.parametrize(
    ("field", "value", "param"),
    [
        ("max_tokens", True, "max_tokens"),
        ("max_completion_tokens", False, "max_completion_tokens"),
        ("n", True, "n"),
        ("seed", True, "seed"),
        ("temperature", True, "temperature"),
        ("top_p", False, "top_p"),
        ("max_tokens", 1.5, "max_tokens"),
        ("max_tokens", "10", "max_tokens"),
        ("temperature", "0.5", "temperature"),
        ("stream", 1, "stream"),
        ("stream", "true", "stream"),
    ],
)
def test_wrong_types_name_their_param(field: str, value: Any, param: str) -> None:
    error = bad_chat(**{field: value})
    assert error.param == param
    assert error.code == "invalid_type"


def test_include_usage_must_be_a_boolean() -> None:
    error = bad_chat(stream=True, stream_options={"include_usage": 1})
    assert error.param == "stream_options.include_usage"
    assert bad_chat(stream=True, stream_options=["include_usage"]).param == "stream_options"


@pytest.mark.parametrize("n", [2, 0])
def test_only_n_1(n: int) -> None:
    assert bad_chat(n=n).param == "n"


def test_more_than_max_stop_strings() -> None:
    assert MAX_STOP == 4
    assert bad_chat(stop=["a", "b", "c", "d", "e"]).param == "stop"
    assert bad_text(stop=["a", "b", "c", "d", "e"]).param == "stop"


@pytest.mark.parametrize("stop", [5, ["a", 1], {"s": "a"}])
def test_stop_of_wrong_type(stop: Any) -> None:
    assert bad_chat(stop=stop).param == "stop"


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", 2.01), ("temperature", -0.1), ("top_p", 1.5), ("top_p", -1)],
)
def test_sampling_out_of_range(field: str, value: float) -> None:
    error = bad_chat(**{field: value})
    assert error.param == field
    assert str(value) in error.message


@pytest.mark.parametrize("value", [0, -5])
def test_max_tokens_below_one(value: int) -> None:
    assert bad_chat(max_tokens=value).param == "max_tokens"
    assert bad_text(max_tokens=value).param == "max_tokens"


def test_max_completion_tokens_below_one_names_that_param() -> None:
    assert bad_chat(max_completion_tokens=0).param == "max_completion_tokens"


@pytest.mark.parametrize("stream", [None, False])
def test_stream_options_require_stream(stream: bool | None) -> None:
    error = bad_chat(stream=stream, stream_options={"include_usage": True})
    assert error.param == "stream_options"
    assert bad_text(stream_options={}).param == "stream_options"


@pytest.mark.parametrize("role", ["function", "", None, "USER"])
def test_unknown_role(role: Any) -> None:
    error = bad_chat(messages=[{"role": "user", "content": "a"}, {"role": role, "content": "b"}])
    assert error.param == "messages[1].role"


def test_tool_turn_needs_its_call_id() -> None:
    error = bad_chat(messages=[{"role": "user", "content": "a"}, {"role": "tool", "content": "b"}])
    assert error.param == "messages[1].tool_call_id"


def test_tool_calls_and_results_parse() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    req = parse("chat.completions", {
        "model": "m",
        "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }, "id", 0)
    assert req.messages[1].tool_calls == (ToolCall("call_1", "get_weather", '{"city": "Paris"}'),)
    assert req.messages[2] == Message("tool", "sunny", tool_call_id="call_1")
    assert req.tools == (Tool("get_weather", "", {"type": "object"}),)
    assert req.tool_choice == ToolChoice("function", "get_weather")


@pytest.mark.parametrize(("tools", "choice", "param"), [
    ("nope", None, "tools"),
    ([{"type": "function"}], None, "tools[0]"),
    ([{"type": "function", "function": {"name": ""}}], None, "tools[0].function.name"),
    ([], {"type": "function", "function": {"name": "missing"}}, "tool_choice"),
    ([], "sometimes", "tool_choice"),
])
def test_bad_tools(tools: Any, choice: Any, param: str) -> None:
    body: dict[str, Any] = {"tools": tools}
    if choice is not None:
        body["tool_choice"] = choice
    assert bad_chat(**body).param == param


def test_embeddings_input() -> None:
    req = parse_embeddings({"model": "e", "input": ["a", "b"], "dimensions": 8}, "emb-1")
    assert req.inputs == ("a", "b") and req.dimensions == 8
    assert parse_embeddings({"model": "e", "input": "a"}, "emb-2").inputs == ("a",)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"model": "e"}, "input"), ({"model": "e", "input": []}, "input"),
        ({"model": "e", "input": [1]}, "input"),
        ({"model": "e", "input": "a", "encoding_format": "hex"}, "encoding_format"),
    ]
    for body, param in cases:
        with pytest.raises(InvalidRequest) as info:
            parse_embeddings(body, "emb-3")
        assert info.value.param == param


def test_non_text_content_part() -> None:
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    error = bad_chat(messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, image]}])
    assert error.param == "messages[0].content[1]"


def test_text_part_without_a_string() -> None:
    error = bad_chat(messages=[{"role": "user", "content": [{"type": "text", "text": 3}]}])
    assert error.param == "messages[0].content[0].text"
    assert error.code == "invalid_type"


@pytest.mark.parametrize("role", ["user", "system", "developer"])
def test_null_content_is_only_for_assistant(role: str) -> None:
    error = bad_chat(messages=[{"role": role, "content": None}])
    assert error.param == "messages[0].content"


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        (None, "messages"),
        ([], "messages"),
        ("Hi", "messages"),
        (["Hi"], "messages[0]"),
        ([{"role": "user", "content": 5}], "messages[0].content"),
    ],
)
def test_bad_messages(messages: Any, param: str) -> None:
    assert invalid("chat.completions", {"model": "m", "messages": messages}).param == param


def test_missing_messages() -> None:
    assert invalid("chat.completions", {"model": "m"}).param == "messages"


@pytest.mark.parametrize("prompt", [["one", "two"], [], [1, 2, 3], 5, None])
def test_bad_prompt(prompt: Any) -> None:
    assert bad_text(prompt=prompt).param == "prompt"
