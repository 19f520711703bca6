"""OpenAI's Responses API through the official ``openai`` SDK, unchanged, against a real
gateway: served by an OpenAI-compatible, an Anthropic and a Gemini upstream (the fake ones in
``tests/upstream``, whose echo model calls a declared tool, then answers with its result) and
by the embedded engine. Plain and streamed responses, a function-calling round trip chained with
``previous_response_id``, structured output parsed into a Pydantic model, retrieve, delete,
input items, tenant scoping, ``store: false``, the 400s, one ledger record per response, and
an Agents SDK agent running a tool."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import FunctionToolParam
from pydantic import BaseModel

from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

KEY = "sk-responses-upstream"
UPSTREAMS = ["oa", "an", "ge", "na"]  # na: an upstream spoken to in the Responses API
WEATHER: FunctionToolParam = {
    "type": "function", "name": "weather", "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}},
                   "required": ["echo"], "additionalProperties": False},
    "strict": True}


def _config(root: Path, up: UpstreamProcess, *, local: bool = True, extra: str = "") -> str:
    ref = "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1"
    text = (ledger_yaml(root) + extra
            + "models:\n  - name: oa\n  - name: an\n  - name: ge\n  - name: na\n"
            + ("  - name: local\n" if local else "") + "deployments:\n"
            f"  - {{name: oa-1, model: oa, provider: openai, base_url: '{up.url}/v1', {ref}}}\n"
            f"  - {{name: an-1, model: an, provider: anthropic, base_url: '{up.url}', {ref}}}\n"
            f"  - {{name: ge-1, model: ge, provider: gemini,\n"
            f"     base_url: '{up.url}/v1beta', {ref}}}\n"
            f"  - {{name: na-1, model: na, provider: openai, api: responses,\n"
            f"     base_url: '{up.url}/v1', {ref}}}\n")
    if local:
        text += ("  - {name: local-1, model: local, provider: llamacpp,\n"
                 "     engine: {model: 'builtin:gemma-3-270m', parallel: 2, context: 512}}\n")
    return text


@pytest.fixture(scope="module")
def up() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("up", api_key=KEY, args=["--cached-tokens", "2"]) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, up: UpstreamProcess
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("responses"))
    with running_gateway(root, _config(root, up), env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(up: UpstreamProcess) -> None:
    up.reset()


@pytest.fixture
def oai(gateway: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def _records(gateway: GatewayProc, response_id: str) -> list[dict[str, Any]]:
    gateway.ledger_row(response_id)  # once committed
    return [r for r in gateway.ledger_rows() if r["id"] == response_id]


@pytest.mark.parametrize("model", UPSTREAMS)
def test_a_plain_response_from_every_upstream(oai: openai.OpenAI, gateway: GatewayProc,
                                              model: str) -> None:
    r = oai.responses.create(model=model, input="Hello there", instructions="Be kind.",
                             metadata={"run": "1"}, temperature=0.5)
    assert (r.status, r.output_text, r.model) == ("completed", "[up] echo: Hello there", model)
    assert r.id.startswith("resp_") and r.metadata == {"run": "1"} and r.temperature == 0.5
    assert r.usage is not None and r.usage.output_tokens == 4
    assert r.usage.input_tokens == 4  # "Be kind." and "Hello there": the upstream's words
    assert r.usage.input_tokens_details.cached_tokens == 2
    [record] = _records(gateway, r.id)
    assert (record["endpoint"], record["model"], record["status"]) == ("responses", model, 200)
    assert (record["prompt_tokens"], record["completion_tokens"]) == (4, 4)


@pytest.mark.parametrize("model", UPSTREAMS)
def test_a_streamed_response_is_the_typed_event_sequence(oai: openai.OpenAI,
                                                         gateway: GatewayProc,
                                                         model: str) -> None:
    with oai.responses.stream(model=model, input="Stream me please") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == "[up] echo: Stream me please"
    assert final.usage is not None and final.usage.output_tokens == 5
    [record] = _records(gateway, final.id)
    assert (record["endpoint"], record["stream"], record["status"]) == ("responses", 1, 200)
    assert oai.responses.retrieve(final.id).output_text == final.output_text  # stored


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True])
def test_a_function_call_round_trip_chained_by_previous_response_id(
        oai: openai.OpenAI, gateway: GatewayProc, up: UpstreamProcess, model: str,
        stream: bool) -> None:
    first: openai.types.responses.Response
    if stream:
        with oai.responses.stream(model=model, input="Paris", tools=[WEATHER]) as events:
            kinds = [e.type for e in events]
            first = events.get_final_response()
        assert "response.function_call_arguments.delta" in kinds
        assert "response.function_call_arguments.done" in kinds
    else:
        first = oai.responses.create(model=model, input="Paris", tools=[WEATHER])
    [call] = first.output
    assert call.type == "function_call" and call.name == "weather"
    assert json.loads(call.arguments) == {"echo": "Paris"}
    second = oai.responses.create(
        model=model, previous_response_id=first.id, tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}])
    assert second.previous_response_id == first.id
    assert "tool result:" in second.output_text and "sunny" in second.output_text
    asked = json.dumps(up.requests()[-1]["body"])  # the whole conversation reached it
    assert all(word in asked for word in ("Paris", "weather", "sunny"))
    for response in (first, second):
        assert len(_records(gateway, response.id)) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_speaks_responses_gets_the_conversation_as_items(
        oai: openai.OpenAI, gateway: GatewayProc, up: UpstreamProcess, stream: bool) -> None:
    """``api: responses``: whatever the client speaks (here chat completions), the upstream
    is asked in the Responses API, keeps nothing (the gateway holds the state), and its
    ``response.completed`` usage is the ledger's."""
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello upstream"}]
    if stream:
        chunks = list(oai.chat.completions.create(
            model="na", messages=messages, stream=True, stream_options={"include_usage": True}))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        used, request_id = chunks[-1].usage, chunks[-1].id
    else:
        completion = oai.chat.completions.create(model="na", messages=messages)
        text = completion.choices[0].message.content or ""
        used, request_id = completion.usage, completion.id
    assert text == "[up] echo: Hello upstream"
    [logged] = up.requests()
    assert logged["path"] == "/v1/responses"
    body = logged["body"]
    assert (body["instructions"], body["store"], body["stream"]) == ("Be brief.", False, True)
    assert body["input"] == [{"type": "message", "role": "user",
                              "content": [{"type": "input_text", "text": "Hello upstream"}]}]
    assert used is not None and (used.prompt_tokens, used.completion_tokens) == (4, 4)
    record = gateway.ledger_row(request_id)
    assert (record["provider"], record["cached_tokens"]) == ("openai", 2)


def test_responses_fields_the_gateway_does_not_act_on_go_to_a_responses_upstream(
        oai: openai.OpenAI, gateway: GatewayProc, up: UpstreamProcess) -> None:
    r = oai.responses.create(model="na", input="Think hard", reasoning={"effort": "high"},
                             max_tool_calls=2)
    assert r.output_text == "[up] echo: Think hard"
    sent = up.requests()[-1]["body"]
    assert (sent["reasoning"], sent["max_tool_calls"], sent["store"]) == (
        {"effort": "high"}, 2, False)
    with pytest.raises(openai.BadRequestError) as refused:  # a chat upstream has no such field
        oai.responses.create(model="oa", input="Think hard", reasoning={"effort": "high"})
    assert isinstance(refused.value.body, dict)
    assert (refused.value.body["param"], refused.value.body["code"]) == (
        "reasoning", "unsupported_parameter")
    assert len(up.requests()) == 1


def test_a_responses_upstream_refuses_what_it_cannot_honour_by_name(oai: openai.OpenAI
                                                                    ) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="na", messages=[{"role": "user", "content": "x"}],
                                    stop=["."])
    assert isinstance(refused.value.body, dict) and refused.value.body["param"] == "stop"


def test_the_sdk_parses_structured_output_into_a_pydantic_model(oai: openai.OpenAI,
                                                                 up: UpstreamProcess) -> None:
    """Anthropic deployments answer through a tool the model is made to call (the fake
    upstream fills it with what the user said)."""

    class Echo(BaseModel):
        echo: str

    parsed = oai.responses.parse(model="an", input="Tell me about the sea", text_format=Echo)
    assert parsed.output_parsed == Echo(echo="Tell me about the sea")
    assert up.requests()[-1]["body"]["tool_choice"] == {"type": "tool", "name": "Echo"}
    with oai.responses.stream(model="an", input="Waves", text_format=Echo) as events:
        final = events.get_final_response()
    assert final.output_parsed == Echo(echo="Waves")


def test_text_format_reaches_an_openai_upstream_as_response_format(
        oai: openai.OpenAI, up: UpstreamProcess) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
              "additionalProperties": False}
    oai.responses.create(model="oa", input="x", text={"format": {
        "type": "json_schema", "name": "A", "schema": schema, "strict": True}})
    sent = up.requests()[-1]["body"]["response_format"]
    assert sent == {"type": "json_schema",
                    "json_schema": {"name": "A", "schema": schema, "strict": True}}


def test_text_format_reaches_gemini_as_its_json_mode(oai: openai.OpenAI) -> None:
    """The schema goes to Gemini as it is (``responseJsonSchema``); the fake upstream answers a
    JSON object of what the user said, parsed by the SDK."""

    class Echo(BaseModel):
        echo: str

    parsed = oai.responses.parse(model="ge", input="Tell me about the sea", text_format=Echo)
    assert parsed.output_parsed == Echo(echo="Tell me about the sea")


def test_retrieve_input_items_and_delete(oai: openai.OpenAI, gateway: GatewayProc) -> None:
    r = oai.responses.create(model="oa", input=[
        {"role": "developer", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "input_text", "text": "One"},
                                     {"type": "input_text", "text": " two"}]}])
    got = oai.responses.retrieve(r.id)
    assert (got.id, got.output_text, got.status) == (r.id, "[up] echo: One two", "completed")
    items = oai.responses.input_items.list(r.id)
    assert [i.type for i in items.data] == ["message", "message"]
    assert [getattr(i, "role", None) for i in items.data] == ["user", "developer"]  # desc
    asc = oai.responses.input_items.list(r.id, order="asc", limit=1)
    assert asc.data[0].role == "developer" and asc.has_more  # type: ignore[union-attr]
    with pytest.raises(openai.BadRequestError) as replay:  # no stored stream to replay
        oai.responses.retrieve(r.id, stream=True)
    assert isinstance(replay.value.body, dict) and replay.value.body["param"] == "stream"
    oai.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.delete(r.id)
    assert len(_records(gateway, r.id)) == 1  # only the generation is a ledger record


def test_store_false_keeps_nothing(oai: openai.OpenAI, gateway: GatewayProc) -> None:
    r = oai.responses.create(model="oa", input="Forget me", store=False)
    assert r.output_text == "[up] echo: Forget me"
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as missing:
        oai.responses.create(model="oa", input="And?", previous_response_id=r.id)
    assert isinstance(missing.value.body, dict)
    assert missing.value.body["param"] == "previous_response_id"
    [record] = _records(gateway, missing.value.response.headers["x-request-id"])
    assert record["status"] == 404 and record["endpoint"] == "responses"


def test_a_chain_of_text_turns_carries_the_conversation(oai: openai.OpenAI,
                                                        up: UpstreamProcess) -> None:
    first = oai.responses.create(model="an", input="My name is Ada", instructions="Be terse.")
    second = oai.responses.create(model="an", input="What is my name?",
                                  previous_response_id=first.id, instructions="Be kind.")
    body = up.requests()[-1]["body"]
    assert body["system"] in ("Be kind.", [{"type": "text", "text": "Be kind."}])
    texts = json.dumps(body["messages"])
    assert "My name is Ada" in texts and "[up] echo: My name is Ada" in texts
    assert "Be terse." not in json.dumps(body)  # a previous response's instructions do not carry
    assert second.output_text == "[up] echo: What is my name?"


def test_max_output_tokens_ends_it_incomplete(oai: openai.OpenAI) -> None:
    r = oai.responses.create(model="oa", input="one two three four five six",
                             max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    with oai.responses.stream(model="oa", input="one two three four five six",
                              max_output_tokens=3) as stream:
        kinds = [e.type for e in stream]
    assert kinds[-1] == "response.incomplete"


def test_an_upstream_failing_midway_fails_the_response(oai: openai.OpenAI,
                                                       gateway: GatewayProc,
                                                       up: UpstreamProcess) -> None:
    up.add_faults({"kind": "stream_error", "after_chunks": 3, "status": 500})
    events = []
    with oai.responses.stream(model="oa", input="one two three four five six") as stream:
        for event in stream:
            events.append(event)
    assert events[-1].type == "response.failed"
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error"
    [record] = _records(gateway, failed.id)
    assert record["status"] != 200 and record["endpoint"] == "responses"
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(failed.id)


@pytest.mark.parametrize(("fields", "param"), [
    ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
    ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0].type"),
    ({"tools": [{"type": "image_generation"}]}, "tools[0].type"),
    ({"background": True}, "background"),
    ({"conversation": "conv_123"}, "conversation"),
    ({"prompt": {"id": "pmpt_123"}}, "prompt"),
    ({"reasoning": {"effort": "high"}}, "reasoning"),  # no deployment of oa takes it
    ({"include": ["reasoning.encrypted_content"]}, "include"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "https://example.com/a.png"}]}]},
     "input[0].content[0]"),
])
def test_unsupported_features_are_a_400_naming_the_field(
        oai: openai.OpenAI, gateway: GatewayProc, fields: dict[str, Any], param: str) -> None:
    body: dict[str, Any] = {"model": "oa", "input": "x", **fields}
    with pytest.raises(openai.BadRequestError) as refused:
        oai.post("/responses", body=body, cast_to=dict)
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param, error
    assert error["type"] == "invalid_request_error"
    request_id = refused.value.response.headers["x-request-id"]
    [record] = _records(gateway, request_id)
    assert record["status"] == 400


def test_the_embedded_engine_serves_plain_streamed_and_structured_responses(
        oai: openai.OpenAI, gateway: GatewayProc) -> None:
    r = oai.responses.create(model="local", input="Say hello.", max_output_tokens=8,
                             temperature=0)
    assert r.status in ("completed", "incomplete") and r.output_text
    assert r.usage is not None and 0 < r.usage.output_tokens <= 8
    [record] = _records(gateway, r.id)
    assert (record["endpoint"], record["provider"]) == ("responses", "llamacpp")
    with oai.responses.stream(model="local", input="Count to three.", max_output_tokens=8,
                              previous_response_id=r.id, temperature=0) as stream:
        events = list(stream)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    last = events[-1]
    assert last.type in ("response.completed", "response.incomplete")  # 8 tokens may cut it
    assert deltas == last.response.output_text and last.response.previous_response_id == r.id

    class City(BaseModel):
        city: str
        population: int

    parsed = oai.responses.parse(model="local", input="Name a large city as JSON.",
                                 text_format=City, max_output_tokens=60, temperature=0)
    assert parsed.status == "completed", parsed.output_text
    assert isinstance(parsed.output_parsed, City)


@pytest.mark.parametrize("streamed", [False, True])
def test_an_agent_runs_its_tool_through_the_gateway(gateway: GatewayProc,
                                                    up: UpstreamProcess, streamed: bool) -> None:
    """The Agents SDK drives the Responses API: the upstream calls the tool, the agent runs
    it and sends its output back, the upstream answers with it."""
    import asyncio

    from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled

    set_tracing_disabled(True)
    ran: list[str] = []

    @function_tool
    def weather(echo: str) -> str:
        """The weather in a city."""
        ran.append(echo)
        return f"sunny in {echo}"

    client = openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    agent = Agent(name="forecaster", instructions="Use the weather tool.", tools=[weather],
                  model=OpenAIResponsesModel(model="oa", openai_client=client))

    async def run() -> object:
        if not streamed:
            return (await Runner.run(agent, "Lisbon")).final_output
        result = Runner.run_streamed(agent, "Lisbon")
        kinds = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in kinds
        return result.final_output

    assert asyncio.run(run()) == "[up] tool result: sunny in Lisbon"
    assert ran == ["Lisbon"]
    assert len(up.requests()) == 2  # the call, then the answer


def test_expired_responses_are_not_served_and_are_swept(tmp_path: Path,
                                                        up: UpstreamProcess) -> None:
    text = _config(tmp_path, up, local=False,
                   extra="responses: {retention_days: 0.00002, sweep_interval_s: 0.2}\n")
    with running_gateway(tmp_path, text, env={"UPSTREAM_KEY": KEY}) as gw:  # kept 1.7 s
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
        r = client.responses.create(model="oa", input="Soon gone")
        assert client.responses.retrieve(r.id).id == r.id
        time.sleep(2.5)
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(r.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="oa", input="And?", previous_response_id=r.id)
        engine = sa.create_engine(f"sqlite:///{gw.db}")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM responses")).scalar() == 0
        engine.dispose()


def test_responses_are_kept_in_postgresql_too(tmp_path: Path, up: UpstreamProcess,
                                              postgres_db: str) -> None:
    text = _config(tmp_path, up, local=False).replace(
        f"store: {{url: 'sqlite:///{tmp_path}/ledger.db'}}", f"store: {{url: '{postgres_db}'}}")
    with running_gateway(tmp_path, text, env={"UPSTREAM_KEY": KEY}) as gw:
        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)
        first = client.responses.create(model="an", input="Remember the lighthouse")
        second = client.responses.create(model="oa", input="What was it?",
                                         previous_response_id=first.id)
        assert "Remember the lighthouse" in json.dumps(up.requests()[-1]["body"])
        assert client.responses.retrieve(second.id).output_text == second.output_text
        assert [i.id for i in client.responses.input_items.list(first.id).data]
        client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="oa", input="?", previous_response_id=first.id)


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory, up: UpstreamProcess
            ) -> Iterator[tuple[GatewayProc, dict[str, str]]]:
    root = Path(tmp_path_factory.mktemp("responses-tenants"))
    text = _config(root, up, local=False, extra="tenancy: {poll_interval_ms: 100}\n")
    with running_gateway(root, text, env={"UPSTREAM_KEY": KEY}) as gw:
        keys = {}
        for name, tenant in (("a1", "acme"), ("a2", "acme"), ("z", "zeta")):
            keys[name] = subprocess.run(
                [str(BIN / "inferplane"), "keys", "create", "--tenant", tenant, "--config",
                 str(gw.config)], capture_output=True, text=True, timeout=60,
                check=True).stdout.strip()
        time.sleep(0.5)  # the gateway sees the keys within tenancy.poll_interval_ms
        yield gw, keys


def test_another_tenants_response_is_a_404(tenants: tuple[GatewayProc, dict[str, str]]
                                           ) -> None:
    gw, keys = tenants

    def client(key: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=gw.url + "/v1", api_key=keys[key], max_retries=0)

    r = client("a1").responses.create(model="oa", input="Secret plans")
    assert client("a2").responses.retrieve(r.id).output_text == r.output_text  # same tenant
    zeta = client("z")
    with pytest.raises(openai.NotFoundError):
        zeta.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        zeta.responses.input_items.list(r.id)
    with pytest.raises(openai.NotFoundError):
        zeta.responses.create(model="oa", input="More?", previous_response_id=r.id)
    with pytest.raises(openai.NotFoundError):
        zeta.responses.delete(r.id)
    assert client("a1").responses.retrieve(r.id).id == r.id  # still there
    assert gw.ledger_row(r.id)["tenant"] == "acme"
