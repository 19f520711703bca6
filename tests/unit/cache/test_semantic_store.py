"""The in-process semantic store: nearest within a scope with the answer and observations,
expiry, the oldest out beyond the limit, stats and purge by tenant."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferplane.cache.semantic_store import MemorySemanticStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def unit(*values: float) -> npt.NDArray[np.float32]:
    v = np.array([*values, 0.0, 0.0][:3], dtype=np.float32)
    return v / np.linalg.norm(v)


async def test_nearest_carries_the_answer_and_the_observations() -> None:
    store = MemorySemanticStore(ttl_s=60, max_entries=10, clock=Clock())
    key = await store.add("scope", "acme", unit(1, 0), b"answer")
    await store.observe(key, 0.93, True)
    await store.observe(key, 0.71, False)
    found = await store.nearest("scope", unit(1, 0.2))
    assert found is not None and found.key == key and found.data == b"answer"
    assert 0.97 < found.similarity < 0.99
    assert found.own == [(0.93, True), (0.71, False)] == found.pool
    assert await store.nearest("other scope", unit(1, 0)) is None


async def test_entries_expire_and_the_oldest_goes_beyond_the_limit() -> None:
    clock = Clock()
    store = MemorySemanticStore(ttl_s=60, max_entries=2, clock=clock)
    await store.add("s", None, unit(1, 0), b"one")
    await store.add("s", None, unit(0, 1), b"two")
    await store.add("s", None, unit(0, 0, 1), b"three")
    found = await store.nearest("s", unit(1, 0))
    assert found is not None and found.data != b"one"
    clock.now += 61
    assert await store.nearest("s", unit(0, 1)) is None
    assert (await store.stats()).entries == 0


async def test_stats_and_purge_by_tenant() -> None:
    store = MemorySemanticStore(ttl_s=60, max_entries=10, clock=Clock())
    await store.add("a", "acme", unit(1, 0), b"12345")
    await store.add("z", "zeta", unit(0, 1), b"123")
    await store.add("n", None, unit(0, 0, 1), b"1")
    assert (await store.stats("acme")).bytes == 5 and (await store.stats()).entries == 3
    assert await store.purge("zeta") == 1
    assert await store.nearest("z", unit(0, 1)) is None
    assert await store.purge("-") == 1 and (await store.stats()).entries == 1
