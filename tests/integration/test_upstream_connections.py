"""Upstream connections are kept alive across requests, streamed ones included (a stream that
ended with its protocol's last event leaves its connection for the next request), and dropped
when a stream is abandoned midway, which tells the upstream to stop generating. Each hosted
adapter against the fake upstream, counting the connections it accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from inferplane.config import DeploymentConfig, TimeoutsConfig
from inferplane.protocol.types import Relayed, TextDelta
from inferplane.providers.base import Provider, create
from tests.provider_helpers import RecordingSink, chat, collect, text_of
from tests.upstream.process import UpstreamProcess

KEY = "sk-connections-test"
BASE_PATH = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta"}
REQUESTS = 6


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("conn", api_key=KEY) as up:
        yield up


@pytest.fixture(params=sorted(BASE_PATH))
async def provider(request: pytest.FixtureRequest, upstream: UpstreamProcess,
                   monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Provider]:
    monkeypatch.setenv("INFERPLANE_TEST_CONN_KEY", KEY)
    kind = request.param
    p = create(DeploymentConfig(
        name=kind, model="chat", provider=kind, upstream_model="model-1",
        base_url=upstream.url + BASE_PATH[kind], api_key="env:INFERPLANE_TEST_CONN_KEY",
        timeouts=TimeoutsConfig(first_token_s=10, idle_s=10, total_s=20)))
    await p.start()
    upstream.reset()
    yield p
    await p.stop()


def opened(upstream: UpstreamProcess) -> int:
    """Connections the upstream accepted since its counters were reset, less the one its
    control client keeps alive (opened before the reset, or reopened once since)."""
    return int(upstream.stats()["connections"])


@pytest.mark.parametrize("stream", [False, True])
async def test_requests_one_after_another_share_a_connection(
        provider: Provider, upstream: UpstreamProcess, stream: bool) -> None:
    for _ in range(REQUESTS):
        events = await collect(provider, chat(stream=stream))
        assert text_of(events).endswith("echo: Hi")
    assert opened(upstream) <= 2  # one for the provider (and perhaps the control client's)


async def test_a_stream_abandoned_midway_drops_its_connection(
        provider: Provider, upstream: UpstreamProcess) -> None:
    upstream.configure(token_delay_ms=50)  # the rest of the stream is still to come
    try:
        await leave_at_first_piece(provider)
    finally:
        upstream.configure(token_delay_ms=0)
    assert opened(upstream) >= REQUESTS


async def test_a_stream_left_after_its_last_byte_arrived_keeps_its_connection(
        provider: Provider, upstream: UpstreamProcess) -> None:
    """The whole stream came in one read (a fast upstream): a client leaving at its first
    piece leaves nothing unread, so the connection serves the next request."""
    await leave_at_first_piece(provider)
    assert opened(upstream) <= 2


async def leave_at_first_piece(provider: Provider) -> None:
    """``REQUESTS`` streams, each closed at its first piece of text, as a client leaving
    would (an OpenAI client's: the OpenAI adapter relays its upstream's chunks)."""
    for _ in range(REQUESTS):
        events = provider.stream(chat(stream=True, wire="openai"), RecordingSink())
        async for event in events:
            if isinstance(event, TextDelta | Relayed):
                break
        await events.aclose()
