"""The Responses API's pure parts: a body -> the checked call and the canonical conversation
(every field acted on or refused by name), the response object and the typed event stream,
each checked against the ``openai`` SDK's own models and its stream accumulator."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from inferplane.api.responses_items import (
    conversation,
    generation_request,
    output_items,
    response_object,
    usage,
)
from inferplane.api.responses_parse import parse
from inferplane.api.responses_stream import ResponseEvents
from inferplane.errors import InvalidRequest, ServiceUnavailable
from inferplane.protocol.types import Finished, TextDelta, ToolCall, ToolCallDelta, Usage

EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "weather", "description": "The weather somewhere",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}


def test_a_string_input_is_one_user_message() -> None:
    call = parse({"model": "m", "input": "Hi", "instructions": "Be brief."})
    [item] = call.items
    assert (item["type"], item["role"], item["content"]) == (
        "message", "user", [{"type": "input_text", "text": "Hi"}])
    assert item["id"].startswith("msg_") and call.store is True
    req = generation_request(call, (), "resp_1", 0)
    assert [(m.role, m.content) for m in req.messages] == [("system", "Be brief."),
                                                           ("user", "Hi")]
    assert req.wire is None and req.endpoint == "chat.completions"


def test_items_become_the_turns_of_a_tool_call_round_trip() -> None:
    call = parse({"model": "m", "tools": [WEATHER], "input": [
        {"role": "user", "content": [{"type": "input_text", "text": "Paris?"}]},
        {"type": "message", "role": "assistant", "id": "msg_a",
         "content": [{"type": "output_text", "text": "Let me look.", "annotations": []}]},
        {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "weather",
         "arguments": '{"city": "Paris"}', "status": "completed"},
        {"type": "function_call", "call_id": "c2", "name": "weather", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        {"type": "function_call_output", "call_id": "c2",
         "output": [{"type": "input_text", "text": "rain"}]},
    ]})
    turns = conversation(None, call.items)
    assert [t.role for t in turns] == ["user", "assistant", "tool", "tool"]
    assert turns[1].content == "Let me look."
    assert [c.id for c in turns[1].tool_calls] == ["c1", "c2"]
    assert [(t.tool_call_id, t.name, t.content) for t in turns[2:]] == [
        ("c1", "weather", "sunny"), ("c2", "weather", "rain")]
    assert call.items[2]["id"] == "fc_1" and call.tools[0].name == "weather"


def test_an_output_without_its_call_is_a_400() -> None:
    call = parse({"model": "m", "input": [
        {"type": "function_call_output", "call_id": "c9", "output": "sunny"}]})
    with pytest.raises(InvalidRequest, match="c9") as refused:
        generation_request(call, (), "resp_1", 0)
    assert refused.value.param == "input"


def test_text_format_is_chats_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    call = parse({"model": "m", "input": "x", "text": {"format": {
        "type": "json_schema", "name": "A", "schema": schema, "strict": True}}})
    assert call.response_format == {"type": "json_schema", "json_schema": {
        "name": "A", "schema": schema, "strict": True}}
    assert parse({"model": "m", "input": "x", "text": {"format": {"type": "json_object"}}}
                 ).response_format == {"type": "json_object"}
    assert parse({"model": "m", "input": "x", "text": {"format": {"type": "text"}}}
                 ).response_format is None


@pytest.mark.parametrize(("body", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, "tools[0].type"),
    ({"tools": [{"type": "code_interpreter"}]}, "tools[0].type"),
    ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0].type"),
    ({"background": True}, "background"),
    ({"conversation": "conv_1"}, "conversation"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt"),
    ({"reasoning": {"effort": "high", "summary": "auto"}}, "reasoning.summary"),
    ({"reasoning": "high"}, "reasoning"),
    ({"include": ["reasoning.encrypted_content"]}, "include"),
    ({"top_logprobs": 3}, "top_logprobs"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "u"}]}]},
     "input[0].content[0]"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "input[0].type"),
    ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
    ({"text": {"format": {"type": "json_schema", "name": "x", "schema": {"type": "objekt"}}}},
     "text.format.schema"),
    ({"text": {"format": {"type": "yaml"}}}, "text.format"),
    ({"text": {"verbosity": "low"}}, "text.verbosity"),
    ({"metadata": {"k": 1}}, "metadata"),
    ({"max_output_tokens": 0}, "max_output_tokens"),
    ({"input": None}, "input"),
])
def test_what_is_not_served_is_a_400_naming_the_field(body: dict[str, Any], param: str
                                                      ) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse({"model": "m", "input": "x", **body})
    assert refused.value.param == param, refused.value.message


def test_other_fields_are_extensions_for_a_deployment_that_speaks_responses() -> None:
    call = parse({"model": "m", "input": "x", "reasoning": {"effort": "high"},
                  "truncation": "auto", "max_tool_calls": 3, "include": []})
    assert call.extensions == {"reasoning": {"effort": "high"}, "truncation": "auto",
                               "max_tool_calls": 3}
    req = generation_request(call, (), "resp_1", 0)
    assert req.extensions_wire == "responses"
    assert {"reasoning", "truncation", "max_tool_calls"} <= req.needs()


def test_neutral_values_and_hints_are_accepted() -> None:
    call = parse({"model": "m", "input": "x", "background": False, "include": [],
                  "truncation": "disabled", "service_tier": "auto", "reasoning": None,
                  "prompt_cache_key": "k", "safety_identifier": "u1", "store": False})
    assert call.store is False and call.extensions == {}


def _call(**fields: Any) -> Any:
    return parse({"model": "m", "input": "x", "tools": [WEATHER], **fields})


def test_the_response_object_is_the_sdks() -> None:
    call = _call(metadata={"run": "7"})
    output = output_items("Hello", (ToolCall("c1", "weather", '{"city":"Paris"}'),), "stop")
    body = response_object("resp_1", 1, call, "completed", output,
                           usage=usage(Usage(10, 5, cached_tokens=4, reasoning_tokens=2)))
    response = Response.model_validate(orjson.loads(orjson.dumps(body)))
    assert response.output_text == "Hello"
    assert response.output[1].type == "function_call"
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.metadata == {"run": "7"}


def _events(frames: bytes) -> list[Any]:
    events = []
    for frame in frames.split(b"\n\n"):
        if frame:
            kind, data = frame.split(b"\n")
            event = EVENTS.validate_python(orjson.loads(data.removeprefix(b"data: ")))
            assert kind == b"event: " + event.type.encode()
            events.append(event)
    return events


def _accumulated(events: list[Any]) -> Any:
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=omit)
    for event in events:
        state.handle_event(event)
    return state


def test_a_stream_of_text_then_a_call_is_the_sdks_event_sequence() -> None:
    writer = ResponseEvents(_call(), "resp_1", 1)
    finished = Finished("tool_calls", Usage(7, 3))
    frames = (writer.first() + writer.text(TextDelta("Let me ")) + writer.text(TextDelta("see."))
              + writer.tool_call(ToolCallDelta(0, "", "c1", "weather"))
              + writer.tool_call(ToolCallDelta(0, '{"city":'))
              + writer.tool_call(ToolCallDelta(0, '"Paris"}'))
              + writer.finish(finished) + writer.done(finished))
    events = _events(frames)
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.delta", "response.function_call_arguments.done",
        "response.output_item.done", "response.completed"]
    state = _accumulated(events)
    final = state._completed_response
    assert final.output_text == "Let me see."
    assert final.output[1].arguments == '{"city":"Paris"}'
    assert writer.final is not None and writer.final["status"] == "completed"


def test_an_empty_answer_is_an_empty_message() -> None:
    writer = ResponseEvents(_call(), "resp_1", 1)
    finished = Finished("stop", Usage(7, 0))
    events = _events(writer.first() + writer.finish(finished) + writer.done(finished))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert _accumulated(events)._completed_response.output_text == ""


def test_a_cut_short_stream_ends_incomplete_and_a_failure_failed() -> None:
    writer = ResponseEvents(_call(), "resp_1", 1)
    finished = Finished("length", Usage(7, 2))
    events = _events(writer.first() + writer.text(TextDelta("Half")) + writer.finish(finished)
                     + writer.done(finished))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"
    assert events[-2].item.status == "incomplete"
    _accumulated(events)

    failing = ResponseEvents(_call(), "resp_2", 1)
    events = _events(failing.first() + failing.text(TextDelta("Hal"))
                     + failing.error(ServiceUnavailable("upstream went away")))
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "server_error"
    assert events[-1].response.output[0].content[0].text == "Hal"
    _accumulated(events)
