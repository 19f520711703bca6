"""The Merkle tree of RFC 9162 §2.1 (the tree of RFC 6962): tree hashes, inclusion and
consistency proofs, and their verification, as pure functions over 32-byte hashes.

Leaves are hashed ``SHA-256(0x00 || entry)``, interior nodes ``SHA-256(0x01 || left || right)``;
the hash of the empty tree is ``SHA-256("")``. A tree of ``n`` leaves splits at ``k``, the
largest power of two smaller than ``n``, so every left subtree is *perfect* (``2^level`` leaves,
starting at a multiple of its size). Everything here is defined over one function,
``subtree(start, end)``, the hash of leaves ``[start, end)``; :func:`range_hash` builds it from
perfect subtrees, which an append-only store can keep once they are complete (they never
change), so roots and proofs over a million leaves need a few dozen hashes, not a million.

>>> leaves = [leaf_hash(bytes.fromhex(h)) for h in ("", "00", "10", "2021")]
>>> root_of(leaves).hex()[:16]
'd37ee418976dd957'
>>> path = inclusion_path_of(2, leaves)
>>> verify_inclusion(2, 4, leaves[2], path, root_of(leaves))
True
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Subtree = Callable[[int, int], bytes]  # (start, end) -> hash of the leaves [start, end)
Perfect = Callable[[int, int], bytes]  # (level, index) -> hash of leaves [i*2^l, (i+1)*2^l)


def leaf_hash(entry: bytes) -> bytes:
    """``SHA-256(0x00 || entry)``."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two smaller than ``n`` (``n >= 2``).

    >>> [split_point(n) for n in (2, 3, 4, 5, 8, 9)]
    [1, 2, 2, 4, 4, 8]
    """
    if n < 2:
        raise ValueError(f"a tree of {n} leaves does not split")
    return 1 << ((n - 1).bit_length() - 1)


def perfect_ranges(start: int, end: int) -> list[tuple[int, int]]:
    """``[start, end)`` as perfect subtrees ``(level, index)``, left to right, largest first.

    ``start`` must be a multiple of the largest power of two not above ``end - start`` (true
    of every subtree the tree's own splits make), so the pieces are exactly the subtrees that
    the tree of ``[start, end)`` folds together from the right.

    >>> perfect_ranges(0, 7)
    [(2, 0), (1, 2), (0, 6)]
    >>> perfect_ranges(8, 13)
    [(2, 2), (0, 12)]
    """
    pieces: list[tuple[int, int]] = []
    while start < end:
        level = (end - start).bit_length() - 1
        pieces.append((level, start >> level))
        start += 1 << level
    return pieces


def range_hash(perfect: Perfect, start: int, end: int) -> bytes:
    """The hash of leaves ``[start, end)`` (``start < end``, aligned as the tree's own splits
    are) from the hashes of its perfect subtrees."""
    pieces = [perfect(level, index) for level, index in perfect_ranges(start, end)]
    acc = pieces[-1]
    for piece in reversed(pieces[:-1]):
        acc = node_hash(piece, acc)
    return acc


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) of the leaf hashes ``leaves`` (RFC 9162 §2.1.1), computed level by level."""
    if not leaves:
        return EMPTY_ROOT
    return _list_subtree(leaves)(0, len(leaves))


def _list_subtree(leaves: Sequence[bytes]) -> Subtree:
    def perfect(level: int, index: int) -> bytes:
        nodes = list(leaves[index << level:(index + 1) << level])
        while len(nodes) > 1:
            nodes = [node_hash(nodes[i], nodes[i + 1]) for i in range(0, len(nodes), 2)]
        return nodes[0]

    return lambda start, end: range_hash(perfect, start, end)


# -- proofs: the definitions of RFC 9162 §2.1.3.1 and §2.1.4.1 over any subtree() ---------------


def inclusion_path(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """PATH(index, D[size]): the inclusion proof of leaf ``index`` in the tree of ``size``."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index - start < k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start += k
    path.reverse()  # the recursion appends on the way back up: leaf side first
    return path


def consistency_path(first: int, second: int, subtree: Subtree) -> list[bytes]:
    """PROOF(first, D[second]): that the tree of ``first`` leaves is a prefix of the tree of
    ``second``. Empty when ``first`` is 0 or equals ``second``."""
    if not 0 <= first <= second:
        raise ValueError(f"no consistency proof from {first} to {second}")
    if first in (0, second):
        return []
    path: list[bytes] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            path.append(subtree(start + k, end))
            end = start + k
        else:
            path.append(subtree(start, start + k))
            start, m, whole = start + k, m - k, False
    if not whole:
        path.append(subtree(start, end))
    path.reverse()
    return path


def inclusion_path_of(index: int, leaves: Sequence[bytes]) -> list[bytes]:
    """:func:`inclusion_path` over a list of leaf hashes."""
    return inclusion_path(index, len(leaves), _list_subtree(leaves))


def consistency_path_of(first: int, leaves: Sequence[bytes]) -> list[bytes]:
    """:func:`consistency_path` from ``first`` to ``len(leaves)`` over a list of leaf hashes."""
    return consistency_path(first, len(leaves), _list_subtree(leaves))


# -- verification: RFC 9162 §2.1.3.2 and §2.1.4.2, step by step -------------------------------


def _up_to_a_right_child(fn: int, sn: int) -> tuple[int, int]:
    """Step (ii) of both verifications: right-shift ``fn`` and ``sn`` equally until the LSB of
    ``fn`` is set or ``fn`` is 0."""
    while fn and not fn & 1:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes],
                     root: bytes) -> bool:
    """True when ``path`` proves that ``leaf`` is leaf ``index`` of the tree ``root`` of
    ``size`` leaves."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            fn, sn = _up_to_a_right_child(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       path: Sequence[bytes]) -> bool:
    """True when ``path`` proves the tree ``first_root`` of ``first`` leaves a prefix of the
    tree ``second_root`` of ``second`` leaves. Sizes that need no proof (``first`` 0, or equal
    sizes with equal roots) verify with an empty path, as RFC 9162 §2.1.4 allows."""
    if not 0 <= first <= second:
        return False
    if first == 0:
        return not path
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: its root is the first node
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            fn, sn = _up_to_a_right_child(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == second_root and sn == 0


# -- appending: the compact range (the perfect subtrees along the right edge) ------------------


def frontier_sizes(size: int) -> list[int]:
    """The levels of the perfect subtrees a tree of ``size`` leaves is made of, largest first:
    the set bits of ``size``.

    >>> frontier_sizes(13)
    [3, 2, 0]
    """
    return [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]


def frontier_push(frontier: Sequence[bytes], size: int,
                  leaf: bytes) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append ``leaf`` to a tree of ``size`` leaves whose perfect subtrees (largest first) are
    ``frontier``: the new frontier, and the perfect subtrees ``(level, index, hash)`` of level
    one and up that the append completed."""
    if len(frontier) != bin(size).count("1"):
        raise ValueError(f"a frontier of {len(frontier)} hashes is not a tree of {size}")
    nodes = list(frontier)
    completed: list[tuple[int, int, bytes]] = []
    acc, level = leaf, 0
    while size >> level & 1:
        acc = node_hash(nodes.pop(), acc)
        level += 1
        completed.append((level, size >> level, acc))
    nodes.append(acc)
    return nodes, completed


def frontier_root(frontier: Sequence[bytes]) -> bytes:
    """The root of the tree whose perfect subtrees, largest first, are ``frontier``."""
    if not frontier:
        return EMPTY_ROOT
    acc = frontier[-1]
    for node in reversed(frontier[:-1]):
        acc = node_hash(node, acc)
    return acc
