"""Roots and proofs of the stored tree, from stored hashes, with a cache of complete subtrees.

A perfect subtree of level ``l`` is read as one stored hash when ``l`` is a multiple of
:data:`~inferplane.audit.store.NODE_STRIDE` (a leaf hash at level 0), else folded from the at
most ``2^(NODE_STRIDE-1)`` stored hashes below it. Complete subtrees never change in an
append-only log, so each one computed is kept (up to ``capacity``): a proof over a million
leaves reads a few dozen hashes the first time and none after.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from inferplane.audit.merkle import (
    EMPTY_ROOT,
    consistency_path,
    inclusion_path,
    node_hash,
    range_hash,
)
from inferplane.audit.store import NODE_STRIDE
from inferplane.errors import AuditLogCorrupt

ReadHashes = Callable[[int, int, int], list[bytes]]  # (level, start, end) -> stored hashes


class StoredTree:
    """The tree over stored hashes; thread-safe. ``read(level, start, end)`` returns the stored
    hashes of that level (0: leaves) with ``start <= index < end``."""

    def __init__(self, read: ReadHashes, capacity: int = 200_000) -> None:
        self._read = read
        self._cache: OrderedDict[tuple[int, int], bytes] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def perfect(self, level: int, index: int) -> bytes:
        """The hash of leaves ``[index * 2^level, (index + 1) * 2^level)``, all stored."""
        key = (level, index)
        with self._lock:
            found = self._cache.get(key)
        if found is not None:
            return found
        base = level - level % NODE_STRIDE
        width = 1 << (level - base)
        nodes = self._read(base, index * width, (index + 1) * width)
        if len(nodes) != width:
            raise AuditLogCorrupt(
                f"the audit log is missing stored hashes of level {base} under subtree "
                f"({level}, {index}); run `inferplane audit verify`")
        while len(nodes) > 1:
            nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        if level:
            with self._lock:
                self._cache[key] = nodes[0]
                if len(self._cache) > self._capacity:
                    self._cache.popitem(last=False)
        return nodes[0]

    def subtree(self, start: int, end: int) -> bytes:
        return range_hash(self.perfect, start, end)

    def root(self, size: int) -> bytes:
        return EMPTY_ROOT if size == 0 else self.subtree(0, size)

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_path(index, size, self.subtree)

    def consistency(self, first: int, second: int) -> list[bytes]:
        return consistency_path(first, second, self.subtree)
