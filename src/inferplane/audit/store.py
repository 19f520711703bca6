"""The audit log in the SQL database the ledger uses (tables made by migration 0009_audit):

- ``audit_entries``: one row per leaf: its index, time, kind, the entry's bytes and leaf hash;
- ``audit_nodes``: the hash of every complete perfect subtree whose level is a multiple of
  :data:`NODE_STRIDE` (1/15 of the leaves' rows), so any subtree hash needs at most
  ``2^(NODE_STRIDE-1)`` stored hashes;
- ``audit_tree_head``: one row, the tree's size, root and frontier (its right-edge perfect
  subtrees), updated by each append in the same transaction;
- ``audit_checkpoints``: signed checkpoints issued so far.

:func:`append` runs inside the caller's transaction, so a change and its entry commit together
or not at all. It first locks the tree-head row, which serializes appenders: PostgreSQL holds
that row's lock (``SELECT ... FOR UPDATE``) until the transaction ends, SQLite its one write
lock (taken by a write before the read, so a deferred transaction never reads a head that
another writer then moves).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from inferplane.audit.entries import Entry, encode
from inferplane.audit.merkle import HASH_SIZE, frontier_push, frontier_root, leaf_hash

NODE_STRIDE = 4  # audit_nodes keeps levels 4, 8, 12, ...

metadata = MetaData()

audit_entries = Table(
    "audit_entries", metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("ts", Float, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("leaf_input", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary(HASH_SIZE), nullable=False),
    Index("ix_audit_entries_kind_ts", "kind", "ts"),
)
audit_nodes = Table(
    "audit_nodes", metadata,
    Column("level", Integer, nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("hash", LargeBinary(HASH_SIZE), nullable=False),
    PrimaryKeyConstraint("level", "idx"),
)
audit_tree_head = Table(
    "audit_tree_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("size", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(HASH_SIZE), nullable=False),
    Column("frontier", LargeBinary, nullable=False),
    Column("updated_at", Float, nullable=False),
)
audit_checkpoints = Table(
    "audit_checkpoints", metadata,
    Column("size", BigInteger, nullable=False),
    Column("key_id", String(8), nullable=False),
    Column("root_hash", LargeBinary(HASH_SIZE), nullable=False),
    Column("note", Text, nullable=False),
    Column("issued_at", Float, nullable=False),
    PrimaryKeyConstraint("size", "key_id"),
)


@dataclass(frozen=True)
class Head:
    size: int
    root: bytes
    frontier: tuple[bytes, ...]


@dataclass(frozen=True)
class StoredEntry:
    """A row of ``audit_entries`` as it is, tampered or not."""

    index: int
    ts: float
    kind: str
    leaf_input: bytes
    leaf_hash: bytes


def _split(blob: bytes) -> tuple[bytes, ...]:
    return tuple(blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))


_HEAD = select(audit_tree_head.c.size, audit_tree_head.c.root_hash,
               audit_tree_head.c.frontier).where(audit_tree_head.c.id == 1)
# Statements built once: building one per append cost more than running it.
_TAKE_WRITE_LOCK = update(audit_tree_head).where(audit_tree_head.c.id == 1).values(
    size=audit_tree_head.c.size)  # SQLite: a write takes its one write lock now
_HEAD_FOR_UPDATE = _HEAD.with_for_update()  # PostgreSQL: the row's lock, to the end
_INSERT_ENTRY = insert(audit_entries)
_INSERT_NODES = insert(audit_nodes)
_MOVE_HEAD = update(audit_tree_head).where(audit_tree_head.c.id == 1).values(
    size=bindparam("new_size"), root_hash=bindparam("new_root"),
    frontier=bindparam("new_frontier"), updated_at=bindparam("now"))


def read_head(c: Connection, *, for_update: bool = False) -> Head:
    """The tree head; with ``for_update``, locked against other appenders until the
    transaction ends."""
    query = _HEAD
    if for_update:
        if c.dialect.name == "postgresql":
            query = _HEAD_FOR_UPDATE
        else:
            c.execute(_TAKE_WRITE_LOCK)
    size, root, frontier = c.execute(query).one()
    return Head(int(size), bytes(root), _split(bytes(frontier)))


def append(c: Connection, kind: str, data: Mapping[str, Any], actor: str,
           ts: float | None = None) -> Entry:
    """Append one entry inside the transaction of ``c``; return it (with its index)."""
    head = read_head(c, for_update=True)
    entry = Entry(index=head.size, ts=time.time() if ts is None else ts, kind=kind,
                  actor=actor, prev=head.root, data=dict(data))
    raw = encode(entry)
    leaf = leaf_hash(raw)
    frontier, completed = frontier_push(head.frontier, head.size, leaf)
    c.execute(_INSERT_ENTRY, {"idx": entry.index, "ts": entry.ts, "kind": entry.kind,
                              "leaf_input": raw, "leaf_hash": leaf})
    nodes = [{"level": level, "idx": index, "hash": node}
             for level, index, node in completed if level % NODE_STRIDE == 0]
    if nodes:
        c.execute(_INSERT_NODES, nodes)
    c.execute(_MOVE_HEAD, {"new_size": head.size + 1, "new_root": frontier_root(frontier),
                           "new_frontier": b"".join(frontier), "now": time.time()})
    return entry


def read_entries(c: Connection, start: int, end: int) -> list[StoredEntry]:
    """The rows with ``start <= idx < end``, in index order (gaps and all)."""
    t = audit_entries
    query = select(t).where(t.c.idx >= start, t.c.idx < end).order_by(t.c.idx)
    return [_stored(r) for r in c.execute(query).mappings()]


def read_hashes(c: Connection, level: int, start: int, end: int) -> list[bytes]:
    """Stored hashes of level ``level`` (0: leaf hashes) with ``start <= index < end``."""
    if level == 0:
        t = audit_entries
        query = select(t.c.leaf_hash).where(t.c.idx >= start, t.c.idx < end).order_by(t.c.idx)
    else:
        n = audit_nodes
        query = select(n.c.hash).where(n.c.level == level, n.c.idx >= start,
                                       n.c.idx < end).order_by(n.c.idx)
    return [bytes(h) for h in c.scalars(query)]


def save_checkpoint(c: Connection, size: int, key_id: str, root: bytes, note: str) -> None:
    """Keep a signed checkpoint (once per size and key). Two issuers at once (the periodic
    one and a client asking) sign the same note for a size, as Ed25519 is deterministic: the
    second insert does nothing."""
    dialect = postgresql if c.dialect.name == "postgresql" else sqlite
    c.execute(dialect.insert(audit_checkpoints).values(
        size=size, key_id=key_id, root_hash=root, note=note, issued_at=time.time()
    ).on_conflict_do_nothing(index_elements=["size", "key_id"]))


def read_checkpoints(c: Connection) -> list[str]:
    """Every stored checkpoint note, smallest tree first."""
    t = audit_checkpoints
    return list(c.scalars(select(t.c.note).order_by(t.c.size, t.c.key_id)))


def last_checkpoint_size(c: Connection) -> int | None:
    t = audit_checkpoints
    found = c.execute(select(t.c.size).order_by(t.c.size.desc()).limit(1)).scalar_one_or_none()
    return None if found is None else int(found)


def read_entries_after(c: Connection, start: int, limit: int) -> list[StoredEntry]:
    """Up to ``limit`` rows with ``idx >= start``, in index order (the rows that are there)."""
    t = audit_entries
    query = select(t).where(t.c.idx >= start).order_by(t.c.idx).limit(limit)
    return [_stored(r) for r in c.execute(query).mappings()]


def _stored(r: RowMapping) -> StoredEntry:
    return StoredEntry(int(r["idx"]), float(r["ts"]), r["kind"], bytes(r["leaf_input"]),
                       bytes(r["leaf_hash"]))


def read_kind_after(c: Connection, kind: str, start: int, limit: int) -> list[StoredEntry]:
    """Up to ``limit`` rows of ``kind`` with ``idx >= start``, in index order."""
    t = audit_entries
    query = select(t).where(t.c.kind == kind, t.c.idx >= start).order_by(t.c.idx).limit(limit)
    return [_stored(r) for r in c.execute(query).mappings()]
