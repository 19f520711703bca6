"""An upstream spoken to in the Responses API (``api: responses``): the canonical request as a
Responses body, and its typed events back as canonical ones."""

from __future__ import annotations

from dataclasses import replace

import orjson
import pytest
from pydantic import ValidationError

from inferplane.config import DeploymentConfig
from inferplane.errors import InvalidRequest, UpstreamError
from inferplane.protocol.types import (
    Finished,
    GenerationRequest,
    Message,
    SamplingParams,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
)
from inferplane.providers.openai_responses import EventReader, request_body


def _request(**fields: object) -> GenerationRequest:
    return GenerationRequest(id="r", endpoint="chat.completions", model="m",
                             params=SamplingParams(max_tokens=32), **fields)  # type: ignore[arg-type]


def test_the_conversation_becomes_instructions_and_items() -> None:
    body = request_body(_request(
        messages=(Message("system", "Be brief."), Message("user", "Weather in Paris?"),
                  Message("assistant", "Looking.", (ToolCall("c1", "weather", "{}"),)),
                  Message("tool", "sunny", tool_call_id="c1")),
        tools=(Tool("weather", "The weather", {"type": "object"}),),
        tool_choice=ToolChoice("function", "weather"),
        response_format={"type": "json_schema", "json_schema": {"name": "A", "schema": {}}}),
        "gpt-x")
    assert (body["model"], body["instructions"], body["store"]) == ("gpt-x", "Be brief.", False)
    assert [i["type"] for i in body["input"]] == ["message", "message", "function_call",
                                                  "function_call_output"]
    assert body["input"][1]["content"][0]["type"] == "output_text"
    assert body["tool_choice"] == {"type": "function", "name": "weather"}
    assert body["tools"][0]["name"] == "weather" and body["max_output_tokens"] == 32
    assert body["text"] == {"format": {"type": "json_schema", "name": "A", "schema": {}}}


def test_stop_sequences_have_no_field_there_and_are_refused() -> None:
    request = replace(_request(messages=(Message("user", "x"),)),
                      params=SamplingParams(stop=(".",)))
    with pytest.raises(InvalidRequest) as refused:
        request_body(request, "m")
    assert refused.value.param == "stop"


def _feed(reader: EventReader, kind: str, **fields: object) -> list[object]:
    return list(reader.feed(kind, orjson.dumps({"type": kind, **fields})))


def test_events_become_text_tool_calls_and_the_usage() -> None:
    reader = EventReader("up")
    assert _feed(reader, "response.created", response={"error": None}) == []
    assert _feed(reader, "response.output_text.delta", delta="Hi") == [TextDelta("Hi")]
    assert _feed(reader, "response.output_item.added", output_index=1, item={
        "type": "function_call", "call_id": "c1", "name": "f", "arguments": ""}) == [
        ToolCallDelta(0, "", "c1", "f")]
    assert _feed(reader, "response.function_call_arguments.delta", output_index=1,
                 delta='{"a":1}') == [ToolCallDelta(0, '{"a":1}')]
    _feed(reader, "response.completed", response={"usage": {
        "input_tokens": 9, "output_tokens": 4, "input_tokens_details": {"cached_tokens": 3},
        "output_tokens_details": {"reasoning_tokens": 1}}})
    finished = reader.finished
    assert isinstance(finished, Finished) and finished.finish_reason == "tool_calls"
    assert (finished.usage.prompt_tokens, finished.usage.cached_tokens,
            finished.usage.reasoning_tokens) == (9, 3, 1)


def test_an_incomplete_response_is_cut_short_and_a_failure_raises() -> None:
    reader = EventReader("up")
    _feed(reader, "response.incomplete", response={
        "incomplete_details": {"reason": "max_output_tokens"}, "usage": {}})
    assert reader.finished is not None and reader.finished.finish_reason == "length"
    with pytest.raises(UpstreamError, match="overloaded"):
        _feed(EventReader("up"), "response.failed",
              response={"error": {"code": "server_error", "message": "overloaded"}})
    with pytest.raises(UpstreamError, match="boom"):
        list(EventReader("up").feed("", b'{"error": {"message": "boom"}}'))


@pytest.mark.parametrize("fields", [{"provider": "anthropic"},
                                    {"provider": "openai", "api_version": "2024-10-21"}])
def test_api_responses_is_for_an_openai_deployment_only(fields: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="api: responses"):
        DeploymentConfig.model_validate({"name": "d", "model": "m", "api": "responses",
                                         **fields})
    assert DeploymentConfig.model_validate(
        {"name": "d", "model": "m", "provider": "openai", "api": "responses"}).api == "responses"
