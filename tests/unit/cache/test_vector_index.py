"""The scoped vector index: search stays within a scope, removal, and the exact partition
turning into an HNSW graph past its size without losing what it held."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from inferplane.cache.vector_index import ScopedIndex


def unit_rows(n: int, seed: int = 0) -> npt.NDArray[np.float32]:
    x = np.random.default_rng(seed).standard_normal((n, 32)).astype(np.float32)
    rows: npt.NDArray[np.float32] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return rows


async def test_a_search_never_leaves_its_scope() -> None:
    x = unit_rows(10)
    index = ScopedIndex()
    await index.add("tenant-a", 1, x[0])
    await index.add("tenant-b", 2, x[1])
    assert await index.search("tenant-a", x[1]) == [(1, float(x[0] @ x[1]))]
    assert await index.search("tenant-c", x[1]) == []
    assert len(index) == 2


async def test_removed_keys_are_not_found_and_empty_scopes_go() -> None:
    x = unit_rows(10)
    index = ScopedIndex()
    for key in range(5):
        await index.add("s", key, x[key])
    await index.remove(2)
    found = await index.search("s", x[2], k=5)
    assert 2 not in [key for key, _ in found] and len(found) == 4
    for key in (0, 1, 3, 4):
        await index.remove(key)
    assert len(index) == 0 and await index.search("s", x[0]) == []


async def test_a_large_scope_becomes_a_graph_and_still_finds_its_vectors() -> None:
    x = unit_rows(400)
    index = ScopedIndex(flat_max=100)
    for key in range(400):
        await index.add("big", key, x[key])
    found = [(await index.search("big", x[i]))[0] for i in range(0, 400, 7)]
    assert sum(key == i for (key, _), i in zip(found, range(0, 400, 7), strict=True)) >= 55
    assert all(abs(sim - 1.0) < 0.02 for _, sim in found)  # 8-bit vectors: near, not exact
    await index.remove(7)
    assert (await index.search("big", x[7]))[0][0] != 7
    assert len(index) == 399


async def test_adding_a_key_again_moves_it() -> None:
    x = unit_rows(3)
    index = ScopedIndex()
    await index.add("a", 1, x[0])
    await index.add("b", 1, x[1])
    assert await index.search("a", x[0]) == [] and len(index) == 1
    assert (await index.search("b", x[1]))[0][0] == 1
