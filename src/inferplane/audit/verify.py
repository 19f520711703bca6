"""Checking a stored audit log against itself and against signed checkpoints: pure, over the
rows as the database holds them, naming the first entry that differs.

What each check catches (the first failing one is reported, and the walk stops there):

- a row missing from the run of indexes: a deleted entry;
- an entry whose ``index`` is not its row's: rows swapped, moved or renumbered;
- content whose hash is not the row's leaf hash: an edited entry;
- an entry whose ``prev`` is not the root of the entries before it: the one before it was
  edited together with its leaf hash;
- a recomputed root that differs from a checkpoint signed by a trusted key: entries rewritten
  with every hash after them (what someone without the key can do at best); the entry named
  is the first one after the largest signed checkpoint the log still matches;
- fewer rows than a signed checkpoint or the tree head covers: a truncated log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from inferplane.audit.checkpoint import SignedCheckpoint
from inferplane.audit.entries import EntryError, decode
from inferplane.audit.merkle import frontier_push, frontier_root, leaf_hash
from inferplane.audit.signer import Verifier
from inferplane.audit.store import Head, StoredEntry


@dataclass
class Report:
    size: int = 0  # entries checked (all of them when nothing differs)
    root: bytes = b""
    first_bad: int | None = None  # the first entry that differs, when one does
    problems: list[str] = field(default_factory=list)
    checkpoints: int = 0  # signed checkpoints the log matches
    records: list[str] = field(default_factory=list)  # usage record ids that differ

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad(self, index: int | None, problem: str) -> None:
        if index is not None and (self.first_bad is None or index < self.first_bad):
            self.first_bad = index
        self.problems.append(problem)


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def trusted_roots(checkpoints: Iterable[SignedCheckpoint], verifiers: Sequence[Verifier],
                  origin: str | None, report: Report) -> dict[int, bytes]:
    """The tree sizes and roots of the ``checkpoints`` signed by one of ``verifiers`` for
    ``origin``; the others are reported."""
    roots: dict[int, bytes] = {}
    for signed in checkpoints:
        cp = signed.checkpoint
        if origin is not None and cp.origin != origin:
            report.bad(None, f"the checkpoint of size {cp.size} is of another log "
                             f"({cp.origin!r}, not {origin!r})")
        elif not signed.verified_by(list(verifiers)):
            report.bad(None, f"the checkpoint of size {cp.size} has no valid signature by a "
                             "trusted key: it was not issued by this log's signer")
        elif roots.setdefault(cp.size, cp.root) != cp.root:
            report.bad(None, f"two signed checkpoints of size {cp.size} disagree: the signer "
                             "itself was given two different logs")
    return roots


def verify_rows(rows: Iterable[StoredEntry], trusted: dict[int, bytes],
                head: Head | None = None, report: Report | None = None) -> Report:
    """Walk ``rows`` (in index order) recomputing the tree; compare it with the ``trusted``
    roots (size -> root) and the stored ``head``."""
    report = report or Report()
    frontier: list[bytes] = []
    matched = 0  # the largest trusted size the log matches
    i = 0
    for row in rows:
        if row.index != i:
            report.bad(i, f"entry {i} is missing: the row after entry {i - 1} is entry "
                          f"{row.index} (deleted, or the rows were renumbered)")
            return report
        try:
            entry = decode(row.leaf_input)
        except EntryError as exc:
            report.bad(i, f"entry {i} is not an audit entry any more: {exc}")
            return report
        if entry.index != i:
            report.bad(i, f"entry {i} holds the content of entry {entry.index}: rows were "
                          "swapped, moved or renumbered")
            return report
        if leaf_hash(row.leaf_input) != row.leaf_hash:
            report.bad(i, f"entry {i} was edited: its content no longer matches its leaf hash")
            return report
        if (row.kind, row.ts) != (entry.kind, entry.ts):
            report.bad(i, f"entry {i} was edited: its kind/ts columns say "
                          f"{row.kind!r}/{row.ts} but the entry says {entry.kind!r}/{entry.ts}")
            return report
        if entry.prev != frontier_root(frontier):
            report.bad(i - 1, f"entry {i - 1} was changed (with its leaf hash): entry {i} "
                              "recorded another tree before it")
            return report
        frontier, _ = frontier_push(frontier, i, row.leaf_hash)
        i += 1
        if i in trusted:
            if frontier_root(frontier) != trusted[i]:
                report.bad(matched, _rewritten(matched, i, trusted[i]))
                return report
            matched = i
            report.checkpoints += 1
    report.size, report.root = i, frontier_root(frontier)
    beyond = [size for size in trusted if size > i]
    if beyond:
        report.bad(i, f"the log was truncated: it holds {i} entries but a signed checkpoint "
                      f"covers {max(beyond)}; entries {i}.. are gone")
    if head is not None and head.size != i:
        report.bad(min(i, head.size), f"the tree head says {head.size} entries but the rows "
                                      f"hold {i}")
    elif head is not None and head.root != report.root:
        report.bad(None, "the tree head's root is not the root of the rows")
    return report


def _rewritten(matched: int, size: int, root: bytes) -> str:
    if size - matched == 1:
        return (f"entry {matched} was changed: the tree of the first {size} entries is not "
                f"the signed checkpoint's ({_b64(root)})")
    return (f"entries {matched}..{size - 1} were rewritten with every hash after them: the tree "
            f"of the first {size} entries is not the signed checkpoint's ({_b64(root)}); the "
            f"largest signed checkpoint the log still matches covers {matched}, so entry "
            f"{matched} is the first that cannot be trusted")
