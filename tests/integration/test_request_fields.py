"""Every request field is honoured or refused by name: log probabilities, ignore_eos and
continuous usage on the embedded engine, through the official ``openai`` SDK; a field no
deployment of the model honours is a 400 that names it."""

from __future__ import annotations

import math
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway

CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "The sea is"}]


def client(gw: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def test_chat_logprobs_in_openai_format(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(
        model="default", messages=CHAT, max_tokens=6, logprobs=True, top_logprobs=3,
        temperature=0)
    choice = r.choices[0]
    assert choice.logprobs is not None and choice.logprobs.content
    content = choice.logprobs.content
    assert r.usage is not None and len(content) == r.usage.completion_tokens
    assert "".join(t.token for t in content) == choice.message.content
    for t in content:
        assert t.logprob <= 0 and t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert [a.logprob for a in t.top_logprobs] == sorted(
            (a.logprob for a in t.top_logprobs), reverse=True)
        assert math.isclose(t.logprob, t.top_logprobs[0].logprob, abs_tol=1e-4)  # greedy


def test_chat_logprobs_streamed(gateway: GatewayProc) -> None:
    stream = client(gateway).chat.completions.create(
        model="default", messages=CHAT, max_tokens=6, logprobs=True, stream=True,
        stream_options={"include_usage": True})
    tokens, text, used = [], "", None
    for chunk in stream:
        if chunk.usage is not None:
            used = chunk.usage.completion_tokens
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.logprobs is not None and choice.logprobs.content:
                tokens += choice.logprobs.content
    assert used == len(tokens) and "".join(t.token for t in tokens) == text


def test_completions_logprobs_in_openai_format(gateway: GatewayProc) -> None:
    r = client(gateway).completions.create(model="default", prompt="The lighthouse",
                                           max_tokens=5, logprobs=2, temperature=0)
    lp = r.choices[0].logprobs
    assert lp is not None and lp.tokens and lp.token_logprobs and lp.top_logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == 5
    assert "".join(lp.tokens) == r.choices[0].text
    assert lp.text_offset is not None and lp.text_offset[0] == 0
    assert all(len(top) == 2 for top in lp.top_logprobs)


def test_no_logprobs_unless_asked(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(model="default", messages=CHAT, max_tokens=3)
    assert r.choices[0].logprobs is None


def test_ignore_eos_generates_exactly_max_tokens(gateway: GatewayProc) -> None:
    r = client(gateway).completions.create(
        model="default", prompt="Hi", max_tokens=48, temperature=0,
        stop=None, extra_body={"ignore_eos": True})
    assert r.usage is not None and r.usage.completion_tokens == 48
    assert r.choices[0].finish_reason == "length"


def test_continuous_usage_stats_counts_on_every_chunk(gateway: GatewayProc) -> None:
    options = {"include_usage": True, "continuous_usage_stats": True}  # vLLM's extension
    stream = client(gateway).completions.create(
        model="default", prompt="Once upon a time", max_tokens=8, stream=True,
        extra_body={"ignore_eos": True, "stream_options": options})
    counts = [chunk.usage.completion_tokens for chunk in stream if chunk.usage is not None]
    assert counts == sorted(counts) and counts[-1] == 8 and len(counts) > 2


@pytest.mark.parametrize(("extra", "param"), [
    ({"frequency_penalty": 0.5}, "frequency_penalty"),
    ({"top_k": 40}, "top_k"),
    ({"stream": True, "stream_options": {"bogus": True}}, "stream_options.bogus"),
    ({"top_logprobs": 2}, "top_logprobs"),
])
def test_a_field_the_engine_does_not_honour_is_a_400_naming_it(
        gateway: GatewayProc, extra: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client(gateway).chat.completions.create(model="default", messages=CHAT, max_tokens=2,
                                                extra_body=extra)
    error = refused.value.body
    assert isinstance(error, dict) and error["param"] == param, error
    assert param in error["message"]


def test_fields_at_their_defaults_are_accepted(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(
        model="default", messages=CHAT, max_tokens=2, frequency_penalty=0, presence_penalty=0,
        logit_bias={}, logprobs=False)
    assert r.choices[0].logprobs is None


def test_logprobs_on_a_model_served_by_anthropic_is_a_400_naming_the_field(
        tmp_path: Path) -> None:
    """Anthropic's API has no log probabilities: the router finds no deployment that honours
    the field and refuses the request in OpenAI's error format, before any upstream call."""
    config = ledger_yaml(tmp_path) + (
        "models: [{name: claude}]\ndeployments:\n"
        "  - {name: claude-eu, model: claude, provider: anthropic, base_url: 'http://127.0.0.1:9',"
        "\n     api_key: 'env:INFERPLANE_TEST_ANTHROPIC_KEY', upstream_model: claude-haiku-4-5}\n")
    with running_gateway(tmp_path, config,
                         env={"INFERPLANE_TEST_ANTHROPIC_KEY": "unused"}) as gw:
        with pytest.raises(openai.BadRequestError) as refused:
            client(gw).chat.completions.create(model="claude", messages=CHAT, max_tokens=2,
                                               logprobs=True)
        error = refused.value.body
        assert isinstance(error, dict)
        assert error["param"] == "logprobs" and error["code"] == "unsupported_parameter"
        assert error["type"] == "invalid_request_error"
        assert gw.ledger_row(refused.value.response.headers["x-request-id"])["status"] == 400


def test_anthropic_vendor_fields_reach_anthropic_and_are_refused_elsewhere(
        tmp_path: Path) -> None:
    """An Anthropic client's ``top_k``, ``thinking`` and ``service_tier`` go to an Anthropic
    upstream as sent; for a model served by an OpenAI-compatible server they are a 400 in
    Anthropic's error format naming the field, not silently dropped. Their no-op values pass."""
    import anthropic

    from tests.upstream.process import UpstreamProcess

    with UpstreamProcess("ant", api_key="sk-ant-fields") as up:
        config = ledger_yaml(tmp_path) + (
            "models: [{name: claude}, {name: chat}]\ndeployments:\n"
            f"  - {{name: c, model: claude, provider: anthropic, base_url: '{up.url}', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: claude-haiku-4-5}\n"
            f"  - {{name: o, model: chat, provider: openai, base_url: '{up.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n")
        with running_gateway(tmp_path, config, env={"UPSTREAM_KEY": "sk-ant-fields"}) as gw:
            ant = anthropic.Anthropic(base_url=gw.url, api_key="unused", max_retries=0)
            msgs: list[anthropic.types.MessageParam] = [{"role": "user", "content": "hi"}]
            ant.messages.create(model="claude", max_tokens=8, messages=msgs,
                                service_tier="standard_only", extra_body={"top_k": 40})
            sent = up.requests()[-1]["body"]
            assert sent["top_k"] == 40 and sent["service_tier"] == "standard_only"
            with pytest.raises(anthropic.BadRequestError) as refused:
                ant.messages.create(model="chat", max_tokens=8, messages=msgs,
                                    extra_body={"top_k": 40})
            body = refused.value.body
            assert isinstance(body, dict) and body["type"] == "error"
            assert "top_k" in body["error"]["message"]
            ok = ant.messages.create(model="chat", max_tokens=8, messages=msgs,
                                     service_tier="auto", thinking={"type": "disabled"})
            assert ok.content and "top_k" not in up.requests()[-1]["body"]
