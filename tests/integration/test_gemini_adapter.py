"""The Gemini adapter over real HTTP, against the fake upstream's Gemini routes: whole and
streamed replies, a tool call and its result, usage, and faults as UpstreamErrors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import orjson
import pytest

from inferplane.config import DeploymentConfig, TimeoutsConfig
from inferplane.errors import UpstreamError
from inferplane.protocol.types import (
    Finished,
    Message,
    SamplingParams,
    Started,
    TextDelta,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from inferplane.providers.gemini import GeminiProvider
from inferplane.providers.gemini_request import SKIP_SIGNATURE
from tests.provider_helpers import RecordingSink, chat, collect, collect_until_error, text_of
from tests.upstream.process import UpstreamProcess

KEY = "gemini-test-key"
MODEL = "gemini-test"
ECHO = Tool("echo", "Echo the text", {"type": "object", "additionalProperties": False,
                                      "properties": {"echo": {"type": "string"}}})


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("gem", api_key=KEY) as up:
        yield up


@pytest.fixture
async def provider(upstream: UpstreamProcess, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[GeminiProvider]:
    upstream.reset()
    upstream.configure(cached_tokens=0, reasoning_tokens=0)
    monkeypatch.setenv("INFERPLANE_TEST_GEMINI_KEY", KEY)
    deployment = DeploymentConfig(
        name="gem", model="chat", provider="gemini", upstream_model=MODEL,
        base_url=f"{upstream.url}/v1beta", api_key="env:INFERPLANE_TEST_GEMINI_KEY",
        timeouts=TimeoutsConfig(first_token_s=10, idle_s=10, total_s=20),
    )
    p = GeminiProvider(deployment)
    await p.start()
    yield p
    await p.stop()


@pytest.mark.parametrize("stream", [False, True])
async def test_text_round_trip(provider: GeminiProvider, upstream: UpstreamProcess,
                               stream: bool) -> None:
    request = chat(Message("system", "Be brief."), Message("user", "Tell me about the sea"),
                   stream=stream)
    events = await collect(provider, request)
    assert isinstance(events[0], Started)
    assert text_of(events) == "[gem] echo: Tell me about the sea"
    if stream:
        assert sum(isinstance(e, TextDelta) for e in events) == 7
    # prompt: 2 system words + 5 user words; completion: the 7 words of the reply
    assert events[-1] == Finished("stop", Usage(prompt_tokens=7, completion_tokens=7))
    [logged] = upstream.requests()
    method = "streamGenerateContent" if stream else "generateContent"
    assert logged["path"] == f"/v1beta/models/{MODEL}:{method}"
    assert logged["auth_ok"]
    assert logged["body"]["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


async def test_usage_counts_thoughts_and_cached_tokens(provider: GeminiProvider,
                                                       upstream: UpstreamProcess) -> None:
    upstream.configure(cached_tokens=2, reasoning_tokens=5)
    events = await collect(provider, chat(Message("user", "Hi there"), stream=True))
    assert events[-1] == Finished("stop", Usage(prompt_tokens=2, completion_tokens=4 + 5,
                                                cached_tokens=2, reasoning_tokens=5))


async def test_max_tokens_ends_with_length(provider: GeminiProvider) -> None:
    request = chat(Message("user", "one two three four"), params=SamplingParams(max_tokens=2),
                   stream=True)
    events = await collect(provider, request)
    assert text_of(events) == "[gem] echo:"
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "length"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_and_result(provider: GeminiProvider, upstream: UpstreamProcess,
                                    stream: bool) -> None:
    question = Message("user", "Oslo weather")
    events = await collect(provider, chat(question, tools=(ECHO,), stream=stream))
    [call] = [e for e in events if isinstance(e, ToolCallDelta)]
    assert call.index == 0 and call.name == "echo" and call.id
    assert orjson.loads(call.arguments) == {"echo": "Oslo weather"}
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "tool_calls"

    answered = chat(question,
                    Message("assistant", "", tool_calls=(ToolCall(call.id, "echo",
                                                                  call.arguments),)),
                    Message("tool", "sunny, 21 degrees", tool_call_id=call.id),
                    tools=(ECHO,), stream=stream)
    events = await collect(provider, answered)
    assert text_of(events) == '[gem] tool result: {"output":"sunny, 21 degrees"}'
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "stop"
    sent = upstream.requests()[-1]["body"]["contents"]
    assert sent[1]["role"] == "model"
    assert sent[1]["parts"][0]["thoughtSignature"] == SKIP_SIGNATURE
    assert sent[2] == {"role": "user", "parts": [{"functionResponse": {
        "name": "echo", "response": {"output": "sunny, 21 degrees"}}}]}


@pytest.mark.parametrize("status", [429, 503])
@pytest.mark.parametrize("stream", [False, True])
async def test_overload_is_retryable_with_retry_after(provider: GeminiProvider,
                                                      upstream: UpstreamProcess,
                                                      status: int, stream: bool) -> None:
    upstream.add_faults({"kind": "status", "status": status, "retry_after": 3,
                         "protocol": "gemini"})
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat(Message("user", "Hi"), stream=stream))
    err = info.value
    assert err.retryable and err.upstream_status == status and err.retry_after == 3.0
    assert err.status == status


async def test_a_bad_request_is_not_retryable(provider: GeminiProvider,
                                              upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "status", "status": 400, "protocol": "gemini"})
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat(Message("user", "Hi")))
    assert not info.value.retryable and info.value.status == 400


async def test_a_broken_stream_is_retryable(provider: GeminiProvider,
                                            upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "reset_mid_stream", "after_chunks": 1, "mode": "close",
                         "protocol": "gemini"})
    events, err = await collect_until_error(provider, chat(Message("user", "a b c d"),
                                                           stream=True))
    assert err.retryable
    assert not any(isinstance(e, Finished) for e in events)


async def test_an_error_event_mid_stream_is_retryable(provider: GeminiProvider,
                                                      upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "stream_error", "after_chunks": 1, "status": 503,
                         "protocol": "gemini"})
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat(Message("user", "a b c d"), stream=True))
    assert info.value.retryable and info.value.upstream_status == 503


async def test_a_client_leaving_reports_the_running_usage(provider: GeminiProvider) -> None:
    meter = RecordingSink()
    stream = provider.stream(chat(Message("user", "a b c d e f"), stream=True), meter)
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    assert [e.finish_reason for e in meter.events] == ["cancelled"]
    assert meter.events[0].usage.prompt_tokens == 6
