"""The audit log as the gateway, the admin API and the CLI use it: append an entry, issue a
signed checkpoint, prove inclusion and consistency, list entries, verify the whole log.

::

    log = AuditLog.open("sqlite:///~/.inferplane/inferplane.db", key_file=path)
    log.append("incident.open", {"system": "triage", "kind": "other"}, actor="cli:ana")
    log.checkpoint().text        # a C2SP signed note of the current tree head

Changes that live in the same database append inside their own transaction instead, with
:func:`inferplane.audit.store.append` (tenancy's admin events, the ledger's group commits), so
the change and its entry commit together.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from inferplane.audit import store
from inferplane.audit.checkpoint import Checkpoint, SignedCheckpoint, parse, sign
from inferplane.audit.covering import verify_records
from inferplane.audit.entries import Entry, check_kind, decode
from inferplane.audit.merkle import verify_consistency, verify_inclusion
from inferplane.audit.signer import Signer, Verifier, load_signer
from inferplane.audit.store import Head, StoredEntry
from inferplane.audit.tree import StoredTree
from inferplane.audit.verify import Report, trusted_roots, verify_rows
from inferplane.errors import InvalidRequest, ServiceUnavailable
from inferplane.ledger.store import Store, make_engine, migrate

MAX_ENTRIES_PAGE = 1000
READ_BATCH = 10_000


def default_origin(store_id: str) -> str:
    """The origin line of a store's log: ``inferplane.local/audit/<12 hex of its identity>``."""
    return f"inferplane.local/audit/{store_id[:12]}"


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


class AuditLog:
    """The audit log in ``engine``'s database. Thread-safe; ``signer`` is needed to issue
    checkpoints only."""

    def __init__(self, engine: Engine, origin: str, signer: Signer | None = None) -> None:
        self._engine = engine
        self.origin = origin
        self.signer = signer
        self._tree = StoredTree(self._read_hashes)

    @classmethod
    def open(cls, url: str, *, key_file: Path | None = None,
             origin: str | None = None) -> AuditLog:
        """Connect, migrate, and load the signing key from ``key_file`` (made on first use)."""
        engine = make_engine(url)
        migrate(engine)
        origin = origin or default_origin(Store(engine).identity())
        signer = None if key_file is None else load_signer(key_file, origin)
        return cls(engine, origin, signer)

    def close(self) -> None:
        self._engine.dispose()

    @property
    def verifier(self) -> Verifier | None:
        return None if self.signer is None else self.signer.verifier

    # -- writing ---------------------------------------------------------------------------

    def append(self, kind: str, data: Mapping[str, Any], actor: str) -> Entry:
        """Append one entry in a transaction of its own; return it with its index."""
        check_kind(kind)
        with self._engine.begin() as c:
            return store.append(c, kind, data, actor)

    def checkpoint(self) -> SignedCheckpoint:
        """The current tree head, signed, and kept in ``audit_checkpoints``."""
        if self.signer is None:
            raise ServiceUnavailable("this process has no audit signing key", code="no_signer")
        with self._engine.connect() as c:
            head = store.read_head(c)
        signed = sign(Checkpoint(self.origin, head.size, head.root), [self.signer])
        with self._engine.begin() as c:
            store.save_checkpoint(c, head.size, self.signer.verifier.id.hex(), head.root,
                                  signed.text)
        return signed

    def checkpoint_if_grown(self) -> SignedCheckpoint | None:
        """A new checkpoint when the tree grew since the last one kept (the periodic one)."""
        with self._engine.connect() as c:
            last, size = store.last_checkpoint_size(c), store.read_head(c).size
        return self.checkpoint() if last is None or size > last else None

    # -- reading ---------------------------------------------------------------------------

    def head(self) -> Head:
        with self._engine.connect() as c:
            return store.read_head(c)

    def _read_hashes(self, level: int, start: int, end: int) -> list[bytes]:
        with self._engine.connect() as c:
            return store.read_hashes(c, level, start, end)

    def _check_size(self, size: int) -> None:
        current = self.head().size
        if size > current:
            raise InvalidRequest(f"The log holds {current} entries, not {size}.", param="size")

    def root(self, size: int) -> bytes:
        self._check_size(size)
        return self._tree.root(size)

    def inclusion(self, index: int, size: int) -> dict[str, Any]:
        """The inclusion proof of entry ``index`` in the tree of ``size`` (RFC 9162 §2.1.3)."""
        if not 0 <= index < size:
            raise InvalidRequest(f"Entry {index} is not in a tree of {size}.", param="leaf")
        self._check_size(size)
        with self._engine.connect() as c:
            leaf = store.read_hashes(c, 0, index, index + 1)[0]
        path = self._tree.inclusion(index, size)
        root = self._tree.root(size)
        if not verify_inclusion(index, size, leaf, path, root):  # a corrupted store
            raise InvalidRequest("The stored tree does not prove this entry; run `inferplane "
                                 "audit verify`.")
        return {"leaf_index": index, "tree_size": size, "leaf_hash": _b64(leaf),
                "root_hash": _b64(root), "inclusion_path": [_b64(p) for p in path]}

    def consistency(self, first: int, second: int) -> dict[str, Any]:
        """The consistency proof from the tree of ``first`` to that of ``second`` (§2.1.4)."""
        if not 0 <= first <= second:
            raise InvalidRequest(f"No consistency proof from {first} to {second}.",
                                 param="from")
        self._check_size(second)
        path = self._tree.consistency(first, second)
        roots = self._tree.root(first), self._tree.root(second)
        if not verify_consistency(first, second, *roots, path):
            raise InvalidRequest("The stored tree is not consistent; run `inferplane audit "
                                 "verify`.")
        return {"tree_size_1": first, "tree_size_2": second, "root_hash_1": _b64(roots[0]),
                "root_hash_2": _b64(roots[1]), "consistency_path": [_b64(p) for p in path]}

    def entries(self, start: int, end: int) -> list[dict[str, Any]]:
        """Entries ``[start, end)`` (at most 1000), each with its bytes (``leaf_input``, which
        an independent verifier hashes) and decoded."""
        if not 0 <= start < end or end - start > MAX_ENTRIES_PAGE:
            raise InvalidRequest(f"Ask for 1 to {MAX_ENTRIES_PAGE} entries with start < end.",
                                 param="end")
        with self._engine.connect() as c:
            rows = store.read_entries(c, start, end)
        out = []
        for row in rows:
            entry = decode(row.leaf_input)
            out.append({"index": row.index, "leaf_input": _b64(row.leaf_input),
                        "leaf_hash": _b64(row.leaf_hash), "ts": entry.ts, "kind": entry.kind,
                        "actor": entry.actor, "prev": _b64(entry.prev),
                        "data": dict(entry.data)})
        return out

    def rows(self) -> Iterator[StoredEntry]:
        """Every stored row, in index order, read in batches."""
        start = 0
        while True:
            with self._engine.connect() as c:
                batch = store.read_entries_after(c, start, READ_BATCH)
            yield from batch
            if len(batch) < READ_BATCH:
                return
            start = batch[-1].index + 1

    def stored_checkpoints(self) -> list[SignedCheckpoint]:
        with self._engine.connect() as c:
            return [parse(note) for note in store.read_checkpoints(c)]

    def verify(self, saved: SignedCheckpoint | None,
               verifiers: list[Verifier]) -> Report:
        """Recompute the tree from the entries; check it against ``saved`` (a checkpoint kept
        earlier), the checkpoints kept in the database and the tree head, all signed by one of
        ``verifiers``; then, once the tree holds, the usage records against the
        ``ledger.batch`` entries that cover them."""
        report = Report()
        checkpoints = [*self.stored_checkpoints(), *([saved] if saved is not None else [])]
        roots = trusted_roots(checkpoints, verifiers, self.origin, report)
        verify_rows(self.rows(), roots, self.head(), report)
        if report.ok:
            verify_records(self._engine, report)
        return report
