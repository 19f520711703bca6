"""The Merkle tree against the published RFC 6962 / certificate-transparency reference vectors
(the 8 leaves of the CT reference implementation's tests, as also used by Go's
transparency-dev/merkle `testonly/reference_test.go`), then properties over random trees:
every proof verifies, any changed proof fails, and the stored-hash tree gives the same answers
as the reference recursion."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from inferplane.audit.merkle import (
    EMPTY_ROOT,
    consistency_path_of,
    frontier_push,
    frontier_root,
    inclusion_path_of,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from inferplane.audit.store import NODE_STRIDE
from inferplane.audit.tree import StoredTree

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657",
    "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, path): the reference inclusion proofs (0-based leaf index).
INCLUSION = [
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
# (first size, second size, path): the reference consistency proofs.
CONSISTENCY = [
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]


def test_hashing_is_rfc_9162_domain_separated() -> None:
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32
                                                              ).digest()
    assert EMPTY_ROOT.hex() == ROOTS[0]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_reference(size: int) -> None:
    assert root_of(HASHES[:size]).hex() == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_reference(index: int, size: int, path: list[str]) -> None:
    proof = inclusion_path_of(index, HASHES[:size])
    assert [p.hex() for p in proof] == path
    root = bytes.fromhex(ROOTS[size])
    assert verify_inclusion(index, size, HASHES[index], [bytes.fromhex(p) for p in path], root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_reference(first: int, second: int,
                                                path: list[str]) -> None:
    proof = consistency_path_of(first, HASHES[:second])
    assert [p.hex() for p in proof] == path
    roots = bytes.fromhex(ROOTS[first]), bytes.fromhex(ROOTS[second])
    assert verify_consistency(first, second, *roots, [bytes.fromhex(p) for p in path])


def test_every_proof_of_the_reference_tree_verifies() -> None:
    for size in range(1, 9):
        root = bytes.fromhex(ROOTS[size])
        for index in range(size):
            assert verify_inclusion(index, size, HASHES[index],
                                    inclusion_path_of(index, HASHES[:size]), root)
        for first in range(1, size + 1):
            assert verify_consistency(first, size, bytes.fromhex(ROOTS[first]), root,
                                      consistency_path_of(first, HASHES[:size]))


def _leaves(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _changed(proof: list[bytes], how: int, where: int) -> list[bytes]:
    """``proof`` with one element flipped, dropped, duplicated, or one added."""
    changed = list(proof)
    if how == 0 and changed:
        i = where % len(changed)
        changed[i] = bytes([changed[i][0] ^ 1]) + changed[i][1:]
    elif how == 1 and changed:
        del changed[where % len(changed)]
    elif how == 2 and changed:
        changed.insert(where % len(changed), changed[where % len(changed)])
    else:
        changed.append(hashlib.sha256(b"extra").digest())
    return changed


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 300).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n - 1))),
       st.integers(0, 3), st.integers(0, 1000))
def test_inclusion_proofs_verify_and_changed_ones_fail(case: tuple[int, int], how: int,
                                                       where: int) -> None:
    size, index = case
    leaves = _leaves(size)
    root, proof = root_of(leaves), inclusion_path_of(index, leaves)
    assert verify_inclusion(index, size, leaves[index], proof, root)
    assert not verify_inclusion(index, size, leaves[index], _changed(proof, how, where), root)
    other = (index + 1) % size
    assert other == index or not verify_inclusion(other, size, leaves[index], proof, root)
    assert not verify_inclusion(index, size, leaf_hash(b"forged"), proof, root)
    grown = root_of([*leaves, leaf_hash(b"one more")])
    assert not verify_inclusion(index, size + 1, leaves[index], proof, grown)


@settings(max_examples=300, deadline=None)
@given(st.integers(2, 300).flatmap(lambda n: st.tuples(st.integers(1, n - 1), st.just(n))),
       st.integers(0, 3), st.integers(0, 1000))
def test_consistency_proofs_verify_and_changed_ones_fail(case: tuple[int, int], how: int,
                                                         where: int) -> None:
    first, second = case
    leaves = _leaves(second)
    old, new = root_of(leaves[:first]), root_of(leaves)
    proof = consistency_path_of(first, leaves)
    assert verify_consistency(first, second, old, new, proof)
    assert not verify_consistency(first, second, old, new, _changed(proof, how, where))
    forked = root_of([*leaves[:first - 1], leaf_hash(b"forked")])
    assert not verify_consistency(first, second, forked, new, proof)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 600))
def test_the_frontier_gives_the_root_after_every_append(size: int) -> None:
    leaves = _leaves(size)
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        frontier, completed = frontier_push(frontier, i, leaf)
        for level, index, node in completed:
            assert node == root_of(leaves[index << level:(index + 1) << level])
    assert frontier_root(frontier) == root_of(leaves)


def _stored_tree(leaves: list[bytes]) -> StoredTree:
    """A StoredTree over hashes kept as the store keeps them: leaves, and the nodes of levels
    that are multiples of NODE_STRIDE, made by appending."""
    levels: dict[int, dict[int, bytes]] = {0: dict(enumerate(leaves))}
    frontier: list[bytes] = []
    for i, leaf in enumerate(leaves):
        frontier, completed = frontier_push(frontier, i, leaf)
        for level, index, node in completed:
            if level % NODE_STRIDE == 0:
                levels.setdefault(level, {})[index] = node
    reads: list[int] = []

    def read(level: int, start: int, end: int) -> list[bytes]:
        reads.append(end - start)
        return [levels[level][i] for i in range(start, end) if i in levels.get(level, {})]

    tree = StoredTree(read)
    tree.reads = reads  # type: ignore[attr-defined]
    return tree


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 700).flatmap(lambda n: st.tuples(st.integers(1, n), st.just(n))),
       st.integers(0, 10_000))
def test_stored_hashes_give_the_reference_roots_and_proofs(case: tuple[int, int],
                                                           pick: int) -> None:
    first, size = case
    leaves = _leaves(size)
    tree = _stored_tree(leaves)
    index = pick % size
    assert tree.root(size) == root_of(leaves)
    assert tree.root(first) == root_of(leaves[:first])
    assert tree.inclusion(index, size) == inclusion_path_of(index, leaves)
    assert tree.consistency(first, size) == consistency_path_of(first, leaves)


def test_a_proof_reads_a_few_dozen_stored_hashes() -> None:
    size = 5000
    tree = _stored_tree(_leaves(size))
    tree.inclusion(3210, size)
    reads = tree.reads  # type: ignore[attr-defined]
    most = 2 * size.bit_length()  # the path's subtrees, and the right edge's pieces
    assert len(reads) <= most and sum(reads) <= 2 ** (NODE_STRIDE - 1) * most
    reads.clear()
    tree.inclusion(3211, size)  # the same subtrees, cached, but for the leaf's own neighbour
    assert sum(reads) <= 2 ** (NODE_STRIDE - 1) * 3
