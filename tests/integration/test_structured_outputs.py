"""Structured outputs on the embedded engine: a JSON schema (or plain JSON) the answer must
fit, enforced by a grammar while sampling, so even a 270M-parameter model answers with JSON
that parses and validates; driven with the openai SDK's ``parse`` helper and a Pydantic
model. Anthropic deployments answer through a tool the model is made to call. A schema that is
not one is a 400 naming it; a model whose deployments cannot enforce a format refuses it by
name."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway

ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Name a large city and its population as JSON."}]


class City(BaseModel):
    city: str
    population: int
    capital: bool


def client(gw: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_sdk_parses_the_answer_into_the_pydantic_model(gateway: GatewayProc,
                                                           temperature: float) -> None:
    completion = client(gateway).chat.completions.parse(
        model="default", messages=ASK, response_format=City, max_tokens=120,
        temperature=temperature, seed=7)
    choice = completion.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    assert isinstance(choice.message.parsed, City)
    assert json.loads(choice.message.content or "") == choice.message.parsed.model_dump()


def test_a_streamed_answer_fits_the_schema_too(gateway: GatewayProc) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["colors"],
              "properties": {"colors": {"type": "array", "maxItems": 3,
                                        "items": {"enum": ["red", "green", "blue"]}}}}
    stream = client(gateway).chat.completions.create(
        model="default", max_tokens=80, stream=True, temperature=0,
        messages=[{"role": "user", "content": "List some colors."}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "colors", "schema": schema, "strict": True}})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    jsonschema.validate(json.loads(text), schema)


def test_json_object_mode_answers_a_json_object(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(
        model="default", messages=ASK, max_tokens=120, temperature=0,
        response_format={"type": "json_object"})
    if r.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(r.choices[0].message.content or ""), dict)
    else:  # the budget ran out inside the object: what came is a JSON object's opening
        assert (r.choices[0].message.content or "").lstrip().startswith("{")


@pytest.mark.parametrize(("response_format", "param"), [
    ({"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "objekt"}}},
     "response_format.json_schema.schema"),
    ({"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
     "response_format.json_schema"),
    ({"type": "yaml"}, "response_format"),
])
def test_a_format_that_is_not_one_is_a_400_naming_it(
        gateway: GatewayProc, response_format: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway).chat.completions.create(model="default", messages=ASK, max_tokens=4,
                                                extra_body={"response_format": response_format})
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param, error


class Echo(BaseModel):
    echo: str


@pytest.mark.parametrize("stream", [False, True])
def test_an_anthropic_deployment_answers_through_its_answer_tool(tmp_path: Path,
                                                                 stream: bool) -> None:
    """The schema becomes a tool the model must call (the fake upstream fills it with what
    the user said); the SDK gets its input as the message, parsed."""
    from tests.upstream.process import UpstreamProcess

    with UpstreamProcess("claude", api_key="k") as up:
        config = ledger_yaml(tmp_path) + (
            "models: [{name: claude}]\ndeployments:\n"
            f"  - {{name: c, model: claude, provider: anthropic, base_url: '{up.url}',\n"
            "     api_key: 'env:INFERPLANE_TEST_ANTHROPIC_KEY', upstream_model: claude-x}\n")
        with running_gateway(tmp_path, config,
                             env={"INFERPLANE_TEST_ANTHROPIC_KEY": "k"}) as gw:
            said = "Tell me about the sea"
            if stream:
                with client(gw).chat.completions.stream(
                        model="claude", max_tokens=50, response_format=Echo,
                        messages=[{"role": "user", "content": said}]) as events:
                    final = events.get_final_completion()
            else:
                final = client(gw).chat.completions.parse(
                    model="claude", max_tokens=50, response_format=Echo,
                    messages=[{"role": "user", "content": said}])
            choice = final.choices[0]
            assert choice.message.parsed == Echo(echo=said)
            assert choice.finish_reason == "stop" and not choice.message.tool_calls
            [logged] = up.requests()
            assert logged["body"]["tool_choice"] == {"type": "tool", "name": "Echo"}


@pytest.mark.parametrize("stream", [False, True])
def test_a_gemini_deployment_answers_in_its_json_mode(tmp_path: Path, stream: bool) -> None:
    """The schema goes to Gemini as it is (``responseJsonSchema``, JSON out); the fake upstream
    answers a JSON object of what the user said, which the SDK parses."""
    from tests.upstream.process import UpstreamProcess

    with UpstreamProcess("gem", api_key="k") as up:
        config = ledger_yaml(tmp_path) + (
            "models: [{name: gem}]\ndeployments:\n"
            f"  - {{name: gem-eu, model: gem, provider: gemini, base_url: '{up.url}/v1beta',"
            "\n     api_key: 'env:INFERPLANE_TEST_GEMINI_KEY', upstream_model: gemini-x}\n")
        with running_gateway(tmp_path, config,
                             env={"INFERPLANE_TEST_GEMINI_KEY": "k"}) as gw:
            said = "Tell me about the sea"
            ask = {"model": "gem", "max_tokens": 50, "response_format": Echo,
                   "messages": [{"role": "user", "content": said}]}
            if stream:
                with client(gw).chat.completions.stream(**ask) as events:  # type: ignore[arg-type]
                    final = events.get_final_completion()
            else:
                final = client(gw).chat.completions.parse(**ask)  # type: ignore[arg-type]
            assert final.choices[0].message.parsed == Echo(echo=said)
            [logged] = up.requests()
            config_sent = logged["body"]["generationConfig"]
            assert config_sent["responseMimeType"] == "application/json"
            assert config_sent["responseJsonSchema"]["properties"]["echo"]["type"] == "string"
