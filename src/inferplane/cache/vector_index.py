"""Where the semantic cache finds the nearest kept question: a vector index partitioned by scope.

:class:`VectorIndex` is the whole contract (add, search the top k within a scope, remove, len),
so a team's own vector database (Milvus, Qdrant, pgvector: the scope a filtered column) can take
the in-process index's place. Vectors are unit rows, so a similarity is a dot product.

:class:`ScopedIndex` keeps each scope in its own partition, searched alone: a question never
meets another scope's vectors, and a lookup's cost follows its own scope's size, not the
model's. A partition is an exact numpy scan while small (:data:`FLAT_MAX` vectors), then an
HNSW graph (usearch, 8-bit vectors: the choice, with its measurements, in docs/cache.md).
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np
import numpy.typing as npt
from usearch.index import Index

Vector = npt.NDArray[np.float32]
FLAT_MAX: Final = 4096  # vectors a partition scans exactly before it becomes a graph
CONNECTIVITY: Final = 16  # HNSW edges per node
EXPANSION_SEARCH: Final = 256  # candidates a search keeps: at 1M vectors, recall@1 0.99 (0.78
# at usearch's default 64) for 1.7 ms instead of 0.6 (benchmarks/results/vector-index.md)


class VectorIndex(Protocol):
    """Kept questions' vectors by key (a 63-bit integer), searched within a scope."""

    async def add(self, scope: str, key: int, vector: Vector) -> None: ...
    async def search(self, scope: str, vector: Vector, k: int = 1
                     ) -> list[tuple[int, float]]: ...  # (key, similarity), nearest first
    async def remove(self, key: int) -> None: ...
    def __len__(self) -> int: ...


class _Flat:
    """A partition scanned exactly: rows in a growing matrix, a removal swaps in the last."""

    def __init__(self, dim: int) -> None:
        self.rows = np.zeros((8, dim), dtype=np.float32)
        self.keys: list[int] = []
        self.slot: dict[int, int] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: int, vector: Vector) -> None:
        if key in self.slot:
            self.rows[self.slot[key]] = vector
            return
        n = len(self.keys)
        if n == len(self.rows):
            self.rows = np.concatenate([self.rows, np.zeros_like(self.rows)])
        self.rows[n] = vector
        self.keys.append(key)
        self.slot[key] = n

    def remove(self, key: int) -> None:
        i = self.slot.pop(key)
        last = len(self.keys) - 1
        if i != last:
            moved = self.keys[last]
            self.rows[i] = self.rows[last]
            self.keys[i] = moved
            self.slot[moved] = i
        self.keys.pop()

    def search(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        n = len(self.keys)
        if n == 0:
            return []
        sims = self.rows[:n] @ vector
        top = np.argsort(-sims)[:k] if k > 1 else np.array([int(np.argmax(sims))])
        return [(self.keys[i], float(sims[i])) for i in top]


class _Graph:
    """A partition searched approximately: an HNSW graph of 8-bit vectors (similarities to
    within about 0.01 of the exact ones)."""

    def __init__(self, dim: int) -> None:
        self.index = Index(ndim=dim, metric="cos", dtype="i8", connectivity=CONNECTIVITY,
                           expansion_search=EXPANSION_SEARCH)
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def add(self, key: int, vector: Vector) -> None:
        if self.index.contains(key):
            self.index.remove(key)
            self.count -= 1
        self.index.add(key, vector)
        self.count += 1

    def add_many(self, keys: list[int], rows: Vector) -> None:
        self.index.add(np.array(keys, dtype=np.uint64), rows)
        self.count += len(keys)

    def remove(self, key: int) -> None:
        self.index.remove(key)
        self.count -= 1

    def search(self, vector: Vector, k: int) -> list[tuple[int, float]]:
        if self.count == 0:
            return []
        found = self.index.search(vector, k)
        return [(int(key), 1.0 - float(distance))
                for key, distance in zip(found.keys, found.distances, strict=True)]


class ScopedIndex:
    """An in-process :class:`VectorIndex`: one partition per scope, exact while small."""

    def __init__(self, flat_max: int = FLAT_MAX) -> None:
        self.flat_max = flat_max
        self._parts: dict[str, _Flat | _Graph] = {}
        self._scope_of: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._scope_of)

    def __contains__(self, key: int) -> bool:
        return key in self._scope_of

    def add_now(self, scope: str, key: int, vector: Vector) -> None:
        """:meth:`add` without awaiting (the index works in this process)."""
        if key in self._scope_of and self._scope_of[key] != scope:
            self.remove_now(key)
        part = self._parts.get(scope)
        if part is None:
            part = self._parts[scope] = _Flat(len(vector))
        part.add(key, vector)
        self._scope_of[key] = scope
        if isinstance(part, _Flat) and len(part) > self.flat_max:
            graph = _Graph(len(vector))
            graph.add_many(part.keys, part.rows[:len(part)])
            self._parts[scope] = graph

    def remove_now(self, key: int) -> None:
        scope = self._scope_of.pop(key, None)
        if scope is None:
            return
        part = self._parts[scope]
        part.remove(key)
        if not len(part):
            del self._parts[scope]

    def search_now(self, scope: str, vector: Vector, k: int = 1) -> list[tuple[int, float]]:
        part = self._parts.get(scope)
        return [] if part is None else part.search(vector, k)

    async def add(self, scope: str, key: int, vector: Vector) -> None:
        self.add_now(scope, key, vector)

    async def search(self, scope: str, vector: Vector, k: int = 1) -> list[tuple[int, float]]:
        return self.search_now(scope, vector, k)

    async def remove(self, key: int) -> None:
        self.remove_now(key)

    def clear(self) -> None:
        self._parts.clear()
        self._scope_of.clear()
