"""A Ray Serve application's ``/load`` board as an engine reading: the ``ray-serve`` parser on
what the board's own summary writes, and ``provider: ray``'s scraper reading a real HTTP
server on loopback (readiness once a replica is up, or once the app says it has no board)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from inferplane.config import DeploymentConfig
from inferplane.engines.engine_metrics import SOURCES, EngineReading
from inferplane.engines.scraper import engine_scrapers
from inferplane.providers.ray_serve import RayServeProvider
from inferplane.ray.load import ReplicaLoad, summary
from inferplane.routing.engine_load import engine_view


def test_the_board_becomes_one_reading_with_the_replicas_capacity() -> None:
    board = summary([
        ReplicaLoad("a", 0, running=2, waiting=1, slots=2, kv_cache_usage=0.5, ongoing=4),
        ReplicaLoad("b", 0, running=1, slots=2, kv_cache_usage=0.25),
        ReplicaLoad("c", 0, running=0, slots=2, ready=False),
    ])
    load = SOURCES["ray-serve"].parse(json.dumps(board), None)
    # what the replicas hold: Serve's four on "a" (one on its way to the engine), one on "b"
    assert (load.running, load.waiting) == (3, 2) and load.running + load.waiting == 5
    assert load.capacity == 4 and load.replicas == 2 and load.serving
    assert load.kv_cache_usage == pytest.approx(0.375)
    status = load.as_status()  # what /readyz showed of the board, under the same keys
    assert {k: status[k] for k in ("replicas", "capacity")} == {"replicas": 2, "capacity": 4}
    assert [r["replica"] for r in status["per_replica"]] == ["a", "b", "c"]
    # the reported capacity stands for the slots where the configuration names none
    view = engine_view(EngineReading(load, 10.0, 1.0), None, now=10.5)
    assert view is not None and (view.in_flight, view.capacity, view.saturated) == (5, 4, None)


def test_a_board_without_a_ready_replica_serves_nothing_and_has_no_capacity() -> None:
    load = SOURCES["ray-serve"].parse(json.dumps(summary([])), None)
    assert load.capacity is None and load.replicas == 0 and not load.serving
    with pytest.raises(ValueError):
        SOURCES["ray-serve"].parse('{"object": "list"}', None)


class Board:
    """What a Ray Serve application answers on ``/load``: a board, or 404 (one without it)."""

    def __init__(self) -> None:
        self.board: dict[str, Any] | None = summary([])
        self.reads = 0


@pytest.fixture
def app() -> Iterator[tuple[Board, str]]:
    state = Board()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.reads += 1
            if self.path != "/load" or state.board is None:
                self.send_error(404)
                return
            body = json.dumps(state.board).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


async def until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


@contextlib.asynccontextmanager
async def scraped(name: str, base_url: str
                  ) -> AsyncIterator[tuple[RayServeProvider, dict[str, EngineReading]]]:
    """A ``provider: ray`` deployment of the app at ``base_url``, started with its scraper."""
    d = DeploymentConfig(name=name, model="chat", provider="ray", base_url=base_url)
    provider = RayServeProvider(d)
    readings: dict[str, EngineReading] = {}
    (scraper,) = engine_scrapers([d], {d.name: provider}, readings)
    await provider.start()
    scraper.start()
    try:
        yield provider, readings
    finally:
        await scraper.stop()
        await provider.stop()


async def test_provider_ray_is_ready_once_a_replica_reports(app: tuple[Board, str]) -> None:
    state, base_url = app
    async with scraped("chat-ray", base_url) as (provider, readings):
        # the app answers, but no replica is up yet: read, and not ready
        assert await until(lambda: "chat-ray" in readings)
        assert not provider.ready and (await provider.status())["replicas"] == 0
        state.board = summary([ReplicaLoad("a", 0, running=1, slots=2)])
        assert await until(lambda: provider.ready)
        status = await provider.status()
        assert status["ready"] and status["replicas"] == 1 and status["capacity"] == 2
        # once ready, it stays so when the board goes (the router then counts its own)
        state.board = None
        assert await until(lambda: "chat-ray" not in readings)
        assert provider.ready and "replicas" not in await provider.status()


async def test_an_app_without_a_board_is_ready_without_a_reading(app: tuple[Board, str]) -> None:
    state, base_url = app
    state.board = None  # vLLM through ray.serve.llm: its own app, no /load
    async with scraped("vllm-ray", base_url) as (provider, readings):
        assert await until(lambda: provider.ready)
        assert state.reads >= 1 and readings == {}
