"""The in-process store (LRU by entries and bytes, TTL, per-tenant stats and purge), entries'
bytes, and the recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Coroutine
from typing import Any, TypeVar

from inferplane.cache.entry import Entry, Saved, decode, encode, replay
from inferplane.cache.key import EntryKey
from inferplane.cache.memory import MemoryStore
from inferplane.cache.recorder import Recorder
from inferplane.cache.store import Stats
from inferplane.protocol.types import (
    Finished,
    Relayed,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
)

T = TypeVar("T")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def k(digest: str, tenant: str | None = "acme") -> EntryKey:
    return EntryKey("chat", tenant, digest)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def test_memory_store_expires_entries_after_their_ttl() -> None:
    clock = Clock()
    store = MemoryStore(ttl_s=10, max_entries=10, max_bytes=10_000, clock=clock)

    async def scenario() -> None:
        await store.put(k("a"), b"one")
        clock.now += 9.9
        assert await store.get(k("a")) == b"one"
        clock.now += 0.1
        assert await store.get(k("a")) is None
        assert len(store) == 0 and store.bytes == 0

    run(scenario())


def test_memory_store_evicts_the_least_recently_used_by_count_and_bytes() -> None:
    store = MemoryStore(ttl_s=60, max_entries=3, max_bytes=100, clock=Clock())

    async def scenario() -> None:
        for name in "abc":
            await store.put(k(name), b"x" * 10)
        assert await store.get(k("a")) is not None  # a is now the most recently used
        await store.put(k("d"), b"x" * 10)
        assert await store.get(k("b")) is None and await store.get(k("a")) is not None
        await store.put(k("e"), b"y" * 85)  # 10 + 10 + 10 + 85 > 100: the oldest go
        assert store.bytes <= 100 and await store.get(k("e")) == b"y" * 85
        assert store.evictions == 3
        await store.put(k("huge"), b"z" * 101)  # larger than the whole store: not kept
        assert await store.get(k("huge")) is None

    run(scenario())


def test_memory_store_replaces_an_entry_and_counts_its_bytes_once() -> None:
    store = MemoryStore(ttl_s=60, max_entries=3, max_bytes=100, clock=Clock())

    async def scenario() -> None:
        await store.put(k("a"), b"12345")
        await store.put(k("a"), b"123")
        assert store.bytes == 3 and await store.get(k("a")) == b"123"

    run(scenario())


def test_memory_store_stats_and_purge_by_tenant() -> None:
    store = MemoryStore(ttl_s=60, max_entries=10, max_bytes=1000, clock=Clock())

    async def scenario() -> None:
        await store.put(k("a", "acme"), b"12")
        await store.put(k("b", "acme"), b"345")
        await store.put(k("c", "zeta"), b"6")
        await store.put(k("d", None), b"78")
        assert await store.stats() == Stats(4, 8)
        assert await store.stats("acme") == Stats(2, 5)
        assert await store.stats("-") == Stats(1, 2)
        assert await store.purge("acme") == 2
        assert await store.get(k("a", "acme")) is None and await store.get(k("c", "zeta"))
        assert await store.purge() == 2 and store.bytes == 0

    run(scenario())


ENTRY = Entry("d1", "Hello there", "length", Usage(5, 2), Saved(0.01, 3.5, 0.2), 1_700_000_000.0,
              None, "dep-1")


def test_entries_round_trip_and_refuse_other_keys_versions_and_garbage() -> None:
    data = encode(ENTRY)
    assert decode(data, "d1") == ENTRY
    assert decode(data, "d2") is None
    assert decode(data.replace(b'"v":1', b'"v":2'), "d1") is None
    assert decode(data.replace(b'"length"', b'"bogus"'), "d1") is None
    assert decode(b"[1,2]", "d1") is None and decode(b"\xff", "d1") is None


def test_an_entry_replays_as_its_text_then_how_it_finished() -> None:
    async def events() -> list[StreamEvent]:
        return [e async for e in replay(ENTRY)]

    assert run(events()) == [TextDelta("Hello there"), Finished("length", Usage(5, 2))]


async def _events(*events: StreamEvent) -> AsyncGenerator[StreamEvent, None]:
    for event in events:
        yield event


def test_the_recorder_keeps_text_and_finish_and_marks_what_it_cannot_keep() -> None:
    async def watched(*events: StreamEvent) -> tuple[Recorder, list[StreamEvent]]:
        recorder = Recorder()
        seen = [e async for e in recorder.watch(_events(*events))]
        return recorder, seen

    done = Finished("stop", Usage(1, 2))
    recorder, seen = run(watched(TextDelta("a"), TextDelta("b"), done))
    assert seen == [TextDelta("a"), TextDelta("b"), done]
    assert recorder.text == "ab" and recorder.finished == done and not recorder.opaque
    recorder, _ = run(watched(TextDelta("a")))
    assert recorder.finished is None
    recorder, _ = run(watched(ToolCallDelta(0, "{}", "c", "f"), done))
    assert recorder.opaque
    recorder, _ = run(watched(Relayed(b"data: {}\n\n", 1, 2), done))
    assert recorder.opaque


def test_closing_the_recorder_closes_the_stream_it_watches() -> None:
    closed = []

    async def upstream() -> AsyncGenerator[StreamEvent, None]:
        try:
            yield TextDelta("a")
            yield TextDelta("b")
        finally:
            closed.append(True)

    async def scenario() -> None:
        watched = Recorder().watch(upstream())
        assert await anext(watched) == TextDelta("a")
        await watched.aclose()

    run(scenario())
    assert closed == [True]
