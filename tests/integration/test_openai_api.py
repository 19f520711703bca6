"""The OpenAI-compatible API, driven by the official SDK against a real gateway + engine."""

from __future__ import annotations

import asyncio
import time

import openai
from openai.types.chat import ChatCompletionMessageParam

from .gateway_proc import GatewayProc

CHAT: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Write one sentence about the sea."}
]


def client(gw: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def aclient(gw: GatewayProc) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="unused", max_retries=0)


def test_models_lists_default_and_its_own_name(gateway: GatewayProc) -> None:
    ids = {m.id for m in client(gateway).models.list()}
    assert {"default", "gemma-3-270m"} <= ids


def test_chat_completion(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(model="default", messages=CHAT, max_tokens=16)
    assert r.id.startswith("chatcmpl-")
    assert r.object == "chat.completion"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage is not None and r.usage.prompt_tokens > 5
    assert 0 < r.usage.completion_tokens <= 16
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    row = gateway.ledger_row(r.id)
    assert (row["status"], row["model"], row["deployment"]) == (200, "default", "local-gemma")
    assert row["completion_tokens"] == r.usage.completion_tokens
    assert row["cost_usd"] > 0 and row["engine_seconds"] > 0


def test_alias_and_max_completion_tokens(gateway: GatewayProc) -> None:
    r = client(gateway).chat.completions.create(
        model="gemma-3-270m", messages=CHAT, max_completion_tokens=3, temperature=0
    )
    assert r.model == "gemma-3-270m"
    assert r.usage is not None and r.usage.completion_tokens <= 3
    if r.usage.completion_tokens == 3:
        assert r.choices[0].finish_reason == "length"


def test_streamed_chat_with_usage(gateway: GatewayProc) -> None:
    stream = client(gateway).chat.completions.create(
        model="default", messages=CHAT, max_tokens=20, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] in ("stop", "length") and all(f is None for f in finishes[:-1])
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage is not None
    assert 0 < usage.completion_tokens <= 20
    assert text
    row = gateway.ledger_row(chunks[0].id)
    assert row["stream"] and row["status"] == 200 and row["ttft_ms"] is not None
    assert row["completion_tokens"] == usage.completion_tokens


def test_stream_without_usage_has_no_usage_chunk(gateway: GatewayProc) -> None:
    chunks = list(client(gateway).chat.completions.create(
        model="default", messages=CHAT, max_tokens=5, stream=True))
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_text_completion_streamed_and_not(gateway: GatewayProc) -> None:
    c = client(gateway)
    r = c.completions.create(model="default", prompt="The capital of France is", max_tokens=8,
                             temperature=0)
    assert r.object == "text_completion" and r.id.startswith("cmpl-")
    assert r.usage is not None and r.usage.completion_tokens <= 8
    chunks = list(c.completions.create(model="default", prompt="The capital of France is",
                                       max_tokens=8, temperature=0, stream=True))
    streamed = "".join(ch.choices[0].text for ch in chunks if ch.choices)
    assert streamed == r.choices[0].text  # greedy decoding is deterministic


def test_stop_sequence_cuts_the_text(gateway: GatewayProc) -> None:
    c = client(gateway)
    kwargs = {"model": "default", "prompt": "1, 2, 3, 4, 5, 6, 7,", "temperature": 0}
    full = c.completions.create(max_tokens=24, **kwargs).choices[0].text  # type: ignore[call-overload]
    assert len(full) > 6
    stop = full[3:6]
    cut = c.completions.create(max_tokens=24, stop=[stop], **kwargs)  # type: ignore[call-overload]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.choices[0].text == full[: full.index(stop)]


def test_same_seed_same_sample(gateway: GatewayProc) -> None:
    c = client(gateway)

    def sample(seed: int) -> str:
        r = c.completions.create(model="default", prompt="Once upon a time", max_tokens=16,
                                 temperature=1.0, top_p=0.9, seed=seed)
        return r.choices[0].text

    assert sample(7) == sample(7)


async def test_async_client_streaming_and_not(gateway: GatewayProc) -> None:
    c = aclient(gateway)
    r = await c.chat.completions.create(model="default", messages=CHAT, max_tokens=8)
    assert r.usage is not None and r.usage.completion_tokens > 0
    stream = await c.chat.completions.create(
        model="default", messages=CHAT, max_tokens=8, stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    await c.close()


async def test_eight_concurrent_streams_are_decoded_together(gateway: GatewayProc) -> None:
    """With continuous batching every stream starts before any of them ends; a lock that
    serialized requests would make the eighth wait for the seven before it."""
    c = aclient(gateway)
    loop = asyncio.get_running_loop()

    async def one(i: int) -> tuple[float, float, int]:
        stream = await c.chat.completions.create(
            model="default", max_tokens=48, stream=True, temperature=0.8, seed=i,
            messages=[{"role": "user", "content": f"Tell story number {i}."}],
            stream_options={"include_usage": True},
        )
        first = None
        tokens = 0
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = loop.time()
            if chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        assert first is not None
        return first, loop.time(), tokens

    results = await asyncio.gather(*(one(i) for i in range(8)))
    await c.close()
    assert all(tokens > 0 for _, _, tokens in results)
    assert max(first for first, _, _ in results) < min(end for _, end, _ in results)


def test_client_disconnect_frees_the_engine_slot(gateway: GatewayProc) -> None:
    c = client(gateway)
    ids = []
    for i in range(8):  # fill every slot with a long generation
        stream = c.chat.completions.create(
            model="default", max_tokens=400, stream=True,
            messages=[{"role": "user", "content": f"Count to a thousand, attempt {i}."}],
        )
        # the client goes away once the first token arrived (the role chunk comes before it)
        first = next(chunk for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
        ids.append(first.id)
        stream.close()
    engine: dict[str, object] = {}
    for _ in range(50):  # 400 tokens x 8 would keep the engine busy for minutes
        engine = gateway.engine()
        if engine.get("running") == 0:
            break
        time.sleep(0.1)
    assert engine.get("running") == 0 and engine.get("waiting") == 0, engine
    for request_id in ids:
        row = gateway.ledger_row(request_id)
        assert row["status"] == 499 and row["error_type"] == "client_disconnected"
        # the engine's own count of what it did before the slot was freed
        assert row["finish_reason"] == "cancelled"
        assert row["completion_tokens"] >= 1 and row["engine_seconds"] > 0
        assert row["cost_usd"] > 0


def test_a_shared_prefix_is_reused_and_changes_nothing(gateway: GatewayProc) -> None:
    c = client(gateway)
    system = "You are a careful assistant who answers about rivers. " * 20
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": system}, {"role": "user", "content": "Name a river."}]
    first = c.chat.completions.create(model="default", messages=messages, max_tokens=12,
                                      temperature=0)
    second = c.chat.completions.create(model="default", messages=messages, max_tokens=12,
                                       temperature=0)
    assert second.usage is not None and second.usage.prompt_tokens_details is not None
    cached = second.usage.prompt_tokens_details.cached_tokens or 0
    assert second.usage.prompt_tokens - 1 == cached > 200  # all but the last prompt token
    # greedy decoding over a reused cache gives exactly what a fresh prefill gave
    assert second.choices[0].message.content == first.choices[0].message.content
