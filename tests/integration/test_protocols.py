"""Both inbound protocols against every upstream protocol: the official openai and anthropic
SDKs talk to the gateway, which translates to OpenAI-compatible, Anthropic and Gemini upstreams
(real server processes) and to the embedded engine — text, streams, tool calls, usage, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.upstream.process import UpstreamProcess

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway

KEY = "sk-protocols-secret"


@pytest.fixture(scope="module")
def up() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("up", api_key=KEY, args=["--cached-tokens", "2"]) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, up: UpstreamProcess
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("protocols"))
    ref = "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1"
    text = (
        ledger_yaml(root)
        + "models:\n  - name: oa\n  - name: an\n  - name: ge\n  - name: az\n  - name: local\n"
        "deployments:\n"
        f"  - {{name: oa-1, model: oa, provider: openai, base_url: '{up.url}/v1', {ref}}}\n"
        f"  - {{name: an-1, model: an, provider: anthropic, base_url: '{up.url}', {ref}}}\n"
        f"  - {{name: ge-1, model: ge, provider: gemini, base_url: '{up.url}/v1beta', {ref}}}\n"
        f"  - {{name: az-1, model: az, provider: openai, base_url: '{up.url}', {ref},\n"
        "     api_version: '2024-10-21'}\n"
        "  - {name: local-1, model: local, provider: llamacpp,\n"
        "     engine: {model: 'builtin:gemma-3-270m', parallel: 2, context: 512}}\n"
    )
    with running_gateway(root, text, env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(up: UpstreamProcess) -> None:
    up.reset()


@pytest.fixture
def claude(gateway: GatewayProc) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key="unused", max_retries=0)


@pytest.fixture
def oai(gateway: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


UPSTREAMS = ["oa", "an", "ge"]
TOOL: Any = {"name": "lookup", "description": "Look a word up",
             "input_schema": {"type": "object", "properties": {"echo": {"type": "string"}}}}
OPENAI_TOOL: Any = {"type": "function", "function": {
    "name": "lookup", "description": "Look a word up", "parameters": TOOL["input_schema"]}}


# -- the Anthropic SDK, served by every upstream -------------------------------------------------

@pytest.mark.parametrize("model", UPSTREAMS)
def test_anthropic_message(claude: anthropic.Anthropic, up: UpstreamProcess, model: str) -> None:
    reply = claude.messages.create(model=model, max_tokens=64, system="Be brief.",
                                   messages=[{"role": "user", "content": "tell me more"}])
    assert reply.content[0].type == "text"
    assert reply.content[0].text == "[up] echo: tell me more"
    assert reply.stop_reason == "end_turn" and reply.model == model
    assert reply.usage.output_tokens == 5
    assert reply.usage.input_tokens + (reply.usage.cache_read_input_tokens or 0) > 2
    seen = up.requests()[-1]
    assert seen["auth_ok"]
    assert "Be brief." in json.dumps(seen["body"])  # the system prompt crossed over


@pytest.mark.parametrize("model", UPSTREAMS)
def test_anthropic_stream(claude: anthropic.Anthropic, model: str) -> None:
    with claude.messages.stream(model=model, max_tokens=64,
                                messages=[{"role": "user", "content": "stream this now"}]
                                ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == "[up] echo: stream this now" and len(pieces) > 1
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5


@pytest.mark.parametrize("model", UPSTREAMS)
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_use_round_trip(claude: anthropic.Anthropic, model: str,
                                       stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": "define gateway"}]
    reply: anthropic.types.Message
    if stream:
        with claude.messages.stream(model=model, max_tokens=64, tools=[TOOL],
                                    messages=messages) as s:
            reply = s.get_final_message()
    else:
        reply = claude.messages.create(model=model, max_tokens=64, tools=[TOOL],
                                       messages=messages)
    assert reply.stop_reason == "tool_use"
    use = next(block for block in reply.content if block.type == "tool_use")
    assert use.name == "lookup" and use.input == {"echo": "define gateway"}
    messages += [
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "a middle layer"}]},
    ]
    final = claude.messages.create(model=model, max_tokens=64, tools=[TOOL], messages=messages)
    assert final.content[0].type == "text"
    # Gemini takes a tool's result as an object: plain text travels as {"output": text}
    assert final.content[0].text.startswith("[up] tool result:")
    assert "a middle layer" in final.content[0].text


def test_anthropic_stop_sequence_from_the_local_engine(claude: anthropic.Anthropic) -> None:
    free = claude.messages.create(model="local", max_tokens=16, extra_body={"temperature": 0},
                                  messages=[{"role": "user", "content": "Count: one two"}])
    assert free.content and free.content[0].type == "text"
    words = free.content[0].text.split()
    assume = words[1] if len(words) > 1 else None
    if assume is None:
        pytest.skip("the model's greedy reply has a single word")
    cut = claude.messages.create(model="local", max_tokens=16, extra_body={"temperature": 0},
                                 stop_sequences=[assume],
                                 messages=[{"role": "user", "content": "Count: one two"}])
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == assume
    assert cut.content[0].type == "text" and assume not in cut.content[0].text


def test_anthropic_errors_in_anthropic_format(claude: anthropic.Anthropic, gateway: GatewayProc,
                                              up: UpstreamProcess) -> None:
    with pytest.raises(anthropic.BadRequestError) as bad:
        claude.messages.create(model="oa", max_tokens=0, messages=[{"role": "user",
                                                                    "content": "x"}])
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="nope", max_tokens=8, messages=[{"role": "user",
                                                                      "content": "x"}])
    up.add_faults({"kind": "status", "status": 529, "count": -1})
    with pytest.raises(anthropic.APIStatusError) as busy:
        claude.messages.create(model="an", max_tokens=8, messages=[{"role": "user",
                                                                    "content": "x"}])
    assert busy.value.status_code == 529  # still overloaded after the gateway's own retries
    up.clear_faults()


# -- the OpenAI SDK, served by the Anthropic and Gemini upstreams -------------------------------

@pytest.mark.parametrize("model", ["an", "ge"])
def test_openai_chat_and_stream(oai: openai.OpenAI, model: str, gateway: GatewayProc) -> None:
    reply = oai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "Be brief."},
                               {"role": "user", "content": "say hello"}])
    completion = reply.parse()
    assert completion.choices[0].message.content == "[up] echo: say hello"
    assert completion.usage is not None and completion.usage.completion_tokens == 4
    record = gateway.ledger_row(reply.headers["x-request-id"])
    assert record["provider"] == {"an": "anthropic", "ge": "gemini"}[model]
    assert record["completion_tokens"] == 4
    chunks = list(oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "say hello"}], stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "[up] echo: say hello")
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 4
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 2


@pytest.mark.parametrize("model", ["oa", "an", "ge"])
def test_openai_streamed_tool_calls(oai: openai.OpenAI, model: str) -> None:
    chunks = list(oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "define gateway"}],
        tools=[OPENAI_TOOL], stream=True))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].id and calls[0].function and calls[0].function.name == "lookup"
    arguments = "".join(tc.function.arguments or "" for tc in calls if tc.function)
    assert json.loads(arguments) == {"echo": "define gateway"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_azure_openai_paths_and_key_header(oai: openai.OpenAI, up: UpstreamProcess) -> None:
    reply = oai.chat.completions.create(model="az", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content == "[up] echo: hi"
    seen = up.requests()[-1]
    assert seen["path"] == "/openai/deployments/echo-1/chat/completions"
    assert seen["query"]["api-version"] == "2024-10-21" and seen["auth_ok"]


# -- the OpenAI SDK, served by OpenAI-compatible upstreams: their chunks relayed -----------------

@pytest.mark.parametrize("model", ["oa", "az"])
@pytest.mark.parametrize("usage", [True, False])
def test_openai_stream_from_an_openai_upstream_is_relayed(
        oai: openai.OpenAI, gateway: GatewayProc, model: str, usage: bool) -> None:
    """The upstream's chunks reach the client as it wrote them (its fingerprint, service tier
    and obfuscation padding too), with the gateway's id, creation time and model name."""
    options: Any = {"stream_options": {"include_usage": True}} if usage else {}
    raw = oai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "relay this"}], stream=True,
        **options)
    chunks = list(raw.parse())
    request_id = raw.headers["x-request-id"]
    assert {(c.id, c.model, c.object) for c in chunks} == {
        (request_id, model, "chat.completion.chunk")}
    assert len({c.created for c in chunks}) == 1
    content = [c for c in chunks if c.choices]
    assert "".join(c.choices[0].delta.content or "" for c in content) == "[up] echo: relay this"
    assert content[0].choices[0].delta.role == "assistant"
    assert {c.system_fingerprint for c in content} == {"fp_upstream"}  # the upstream's own
    assert [c.choices[0].finish_reason for c in content][-1] == "stop"
    row = gateway.ledger_row(request_id)
    assert (row["provider"], row["status"], row["stream"]) == ("openai", 200, 1)
    assert row["completion_tokens"] == 4 and row["cached_tokens"] == 2
    assert row["usage_source"] == "reported" and row["ttft_ms"] is not None
    if usage:
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 4
        assert chunks[-1].usage.prompt_tokens_details is not None
        assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 2
    else:
        assert all(c.usage is None for c in chunks)


def test_relayed_chunks_are_the_upstreams_bytes_after_the_envelope(
        gateway: GatewayProc, up: UpstreamProcess) -> None:
    body = {"model": "oa", "messages": [{"role": "user", "content": "relay this"}],
            "stream": True}
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json=body) as response:
        raw = response.read()
        request_id = response.headers["x-request-id"]
    frames = [f for f in raw.split(b"\n\n") if f.startswith(b"data: {")]
    head = (b'data: {"id":"%s","object":"chat.completion.chunk","created":'
            % request_id.encode())
    assert frames and all(f.startswith(head) for f in frames)
    tails = [f[f.index(b',"model":"oa",') + len(b',"model":"oa"'):] for f in frames]
    assert all(t.startswith(b',"service_tier":"default","system_fingerprint":"fp_upstream"')
               for t in tails)
    assert all(b'"obfuscation":"' in t for t in tails)  # a field the gateway does not know
    assert raw.endswith(b"data: [DONE]\n\n")


def test_openai_text_completion_stream_is_relayed(oai: openai.OpenAI,
                                                  gateway: GatewayProc) -> None:
    raw = oai.completions.with_raw_response.create(model="oa", prompt="relay me", stream=True)
    chunks = list(raw.parse())
    assert {c.id for c in chunks} == {raw.headers["x-request-id"]}
    assert all(c.id.startswith("cmpl-") and c.model == "oa" for c in chunks)
    assert "".join(c.choices[0].text for c in chunks if c.choices) == "[up] echo: relay me"
    assert gateway.ledger_row(chunks[0].id)["completion_tokens"] == 4
