"""The Anthropic adapter over real HTTP, against the fake upstream's Messages route: whole and
streamed replies, a tool call and its result, usage with cache and thinking tokens, stop
sequences, and faults as UpstreamErrors."""

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
from inferplane.providers.anthropic import ANTHROPIC_VERSION, DEFAULT_MAX_TOKENS, AnthropicProvider
from tests.provider_helpers import RecordingSink, chat, collect, collect_until_error, text_of
from tests.upstream.process import UpstreamProcess

KEY = "anthropic-test-key"
MODEL = "claude-test"
ECHO = Tool("echo", "Echo the text", {"type": "object",
                                      "properties": {"echo": {"type": "string"}}})


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("claude", api_key=KEY) as up:
        yield up


async def started(upstream: UpstreamProcess, key_env: str) -> AnthropicProvider:
    deployment = DeploymentConfig(
        name="claude", model="chat", provider="anthropic", upstream_model=MODEL,
        base_url=upstream.url, api_key=f"env:{key_env}",
        timeouts=TimeoutsConfig(first_token_s=10, idle_s=10, total_s=20),
    )
    p = AnthropicProvider(deployment)
    await p.start()
    return p


@pytest.fixture
async def provider(upstream: UpstreamProcess, monkeypatch: pytest.MonkeyPatch
                   ) -> AsyncIterator[AnthropicProvider]:
    upstream.reset()
    upstream.configure(cached_tokens=0, reasoning_tokens=0)
    monkeypatch.setenv("INFERPLANE_TEST_ANTHROPIC_KEY", KEY)
    p = await started(upstream, "INFERPLANE_TEST_ANTHROPIC_KEY")
    yield p
    await p.stop()


@pytest.mark.parametrize("stream", [False, True])
async def test_text_round_trip(provider: AnthropicProvider, upstream: UpstreamProcess,
                               stream: bool) -> None:
    request = chat(Message("system", "Be brief."), Message("user", "Tell me about the sea"),
                   stream=stream)
    events = await collect(provider, request)
    assert isinstance(events[0], Started)
    assert text_of(events) == "[claude] echo: Tell me about the sea"
    if stream:
        assert events[0] == Started(prompt_tokens=7)
        assert sum(isinstance(e, TextDelta) for e in events) == 7
    # prompt: 2 system words + 5 user words; completion: the 7 words of the reply
    assert events[-1] == Finished("stop", Usage(prompt_tokens=7, completion_tokens=7))
    [logged] = upstream.requests()
    assert logged["path"] == "/v1/messages"
    assert logged["auth_ok"]
    assert logged["headers"]["anthropic-version"] == ANTHROPIC_VERSION
    assert logged["body"]["system"] == "Be brief."
    assert logged["body"]["max_tokens"] == DEFAULT_MAX_TOKENS
    assert logged["body"]["model"] == MODEL


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_counts_cache_reads_and_thinking(provider: AnthropicProvider,
                                                     upstream: UpstreamProcess,
                                                     stream: bool) -> None:
    upstream.configure(cached_tokens=2, reasoning_tokens=5)
    events = await collect(provider, chat(Message("user", "Hi there friend"), stream=stream))
    # Anthropic reports 1 uncached input token and 2 cache reads: 3 prompt tokens in all.
    assert events[-1] == Finished("stop", Usage(prompt_tokens=3, completion_tokens=5 + 5,
                                                cached_tokens=2, reasoning_tokens=5))


@pytest.mark.parametrize("stream", [False, True])
async def test_stop_sequence_and_max_tokens(provider: AnthropicProvider, stream: bool) -> None:
    question = Message("user", "one two three four")
    stopped = await collect(provider, chat(question, stream=stream,
                                           params=SamplingParams(stop=("three",))))
    assert text_of(stopped) == "[claude] echo: one two "
    assert stopped[-1] == Finished("stop", Usage(prompt_tokens=4, completion_tokens=5),
                                   stop_sequence="three")
    capped = await collect(provider, chat(question, stream=stream,
                                          params=SamplingParams(max_tokens=2)))
    assert text_of(capped) == "[claude] echo:"
    assert isinstance(capped[-1], Finished) and capped[-1].finish_reason == "length"


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_call_and_result(provider: AnthropicProvider, upstream: UpstreamProcess,
                                    stream: bool) -> None:
    question = Message("user", "Oslo weather")
    events = await collect(provider, chat(question, tools=(ECHO,), stream=stream))
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls[0].index == 0 and calls[0].name == "echo" and calls[0].id
    assert all(c.index == 0 and c.id is None for c in calls[1:])
    arguments = "".join(c.arguments for c in calls)
    assert orjson.loads(arguments) == {"echo": "Oslo weather"}
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "tool_calls"

    call_id = calls[0].id
    assert call_id is not None
    answered = chat(question, Message("assistant", "", (ToolCall(call_id, "echo", arguments),)),
                    Message("tool", "sunny, 21 degrees", tool_call_id=call_id),
                    tools=(ECHO,), stream=stream)
    events = await collect(provider, answered)
    assert text_of(events) == "[claude] tool result: sunny, 21 degrees"
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "stop"
    sent = upstream.requests()[-1]["body"]["messages"]
    assert sent[1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": call_id, "name": "echo", "input": {"echo": "Oslo weather"}}]}
    assert sent[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": call_id, "content": "sunny, 21 degrees"}]}


@pytest.mark.parametrize(("status", "client_status"), [(429, 429), (529, 503), (500, 502)])
@pytest.mark.parametrize("stream", [False, True])
async def test_overload_is_retryable_with_retry_after(provider: AnthropicProvider,
                                                      upstream: UpstreamProcess, status: int,
                                                      client_status: int, stream: bool) -> None:
    upstream.add_faults({"kind": "status", "status": status, "retry_after": 3,
                         "protocol": "anthropic"})
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat(Message("user", "Hi"), stream=stream))
    err = info.value
    assert err.retryable and err.upstream_status == status and err.retry_after == 3.0
    assert err.status == client_status


async def test_a_bad_request_is_not_retryable(provider: AnthropicProvider,
                                              upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "status", "status": 400, "protocol": "anthropic",
                         "message": "messages.0: bad"})
    with pytest.raises(UpstreamError) as info:
        await collect(provider, chat(Message("user", "Hi")))
    assert not info.value.retryable and info.value.status == 400
    assert "messages.0: bad" in info.value.message


async def test_a_wrong_key_is_a_gateway_error(upstream: UpstreamProcess,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFERPLANE_TEST_WRONG_KEY", "not-the-key")
    p = await started(upstream, "INFERPLANE_TEST_WRONG_KEY")
    try:
        with pytest.raises(UpstreamError) as info:
            await collect(p, chat(Message("user", "Hi")))
    finally:
        await p.stop()
    assert info.value.status == 502 and not info.value.retryable
    assert "not-the-key" not in info.value.message


async def test_an_error_event_mid_stream_is_retryable(provider: AnthropicProvider,
                                                      upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "stream_error", "after_chunks": 3, "protocol": "anthropic"})
    events, err = await collect_until_error(provider, chat(Message("user", "a b c d"),
                                                           stream=True))
    assert err.retryable and err.upstream_status == 529
    assert isinstance(events[0], Started)
    assert not any(isinstance(e, Finished) for e in events)


async def test_a_broken_stream_is_retryable(provider: AnthropicProvider,
                                            upstream: UpstreamProcess) -> None:
    upstream.add_faults({"kind": "reset_mid_stream", "after_chunks": 3, "mode": "close",
                         "protocol": "anthropic"})
    events, err = await collect_until_error(provider, chat(Message("user", "a b c d"),
                                                           stream=True))
    assert err.retryable
    assert not any(isinstance(e, Finished) for e in events)


async def test_closing_a_stream_early_releases_it(provider: AnthropicProvider,
                                                  upstream: UpstreamProcess) -> None:
    stream = provider.stream(chat(Message("user", "a b c d e f"), stream=True), RecordingSink())
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    events = await collect(provider, chat(Message("user", "again"), stream=True))
    assert text_of(events) == "[claude] echo: again"


@pytest.mark.parametrize("stream", [False, True])
async def test_a_response_format_is_answered_through_the_answer_tool(
        provider: AnthropicProvider, upstream: UpstreamProcess, stream: bool) -> None:
    """The schema goes as a tool the model must call; its input comes back as the text, and
    no tool call shows."""
    schema = {"type": "object", "properties": {"echo": {"type": "string"}},
              "required": ["echo"]}
    request = chat(Message("user", "Tell me about the sea"), stream=stream,
                   response_format={"type": "json_schema",
                                    "json_schema": {"name": "reply", "schema": schema}})
    events = await collect(provider, request)
    assert orjson.loads(text_of(events)) == {"echo": "Tell me about the sea"}
    assert not any(isinstance(e, ToolCallDelta) for e in events)
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "stop"
    [logged] = upstream.requests()
    assert logged["body"]["tools"] == [{"name": "reply", "input_schema": schema,
                                        "description": "Give your answer: its input is the "
                                                       "answer."}]
    assert logged["body"]["tool_choice"] == {"type": "tool", "name": "reply"}


async def test_with_client_tools_the_model_must_call_one_and_real_calls_show(
        provider: AnthropicProvider, upstream: UpstreamProcess) -> None:
    request = chat(Message("user", "Tell me about the sea"), tools=(ECHO,),
                   response_format={"type": "json_object"})
    events = await collect(provider, request)
    [logged] = upstream.requests()
    assert [t["name"] for t in logged["body"]["tools"]] == ["echo", "answer"]
    assert logged["body"]["tool_choice"] == {"type": "any"}
    calls = [e for e in events if isinstance(e, ToolCallDelta)]
    assert calls and calls[0].index == 0 and calls[0].name == "echo"  # the fake calls the first
    assert isinstance(events[-1], Finished) and events[-1].finish_reason == "tool_calls"
