"""Checking usage records against the ``ledger.batch`` entries that cover them: pure, over one
entry's data and the rows the store holds now for its record ids.

A ``ledger.batch`` entry names the records one group commit stored (``ids``, in order) and the
SHA-256 over their record digests (:func:`~inferplane.audit.entries.record_digest`, the one
encoding :meth:`~inferplane.ledger.store.Store.commit` used). Recomputing that digest from the
rows as they are now finds a batch whose records were edited or deleted; the entry's
``digests`` (a short prefix of each record's digest, in order) name which record changed.
Entries written before ``digests`` existed still catch the change, naming every record of the
batch as a suspect.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from inferplane.audit.entries import SHORT_DIGEST_HEX, record_digest

Row = Mapping[str, Any]


@dataclass(frozen=True)
class BatchFinding:
    """What differs in the records of the ``ledger.batch`` entry ``entry``."""

    entry: int
    missing: tuple[str, ...]  # ids whose row is gone
    changed: tuple[str, ...]  # ids whose row no longer matches (all of them when not exact)
    exact: bool = True  # whether ``changed`` names exactly the records that differ

    @property
    def ids(self) -> tuple[str, ...]:
        return (*self.missing, *self.changed)

    def message(self) -> str:
        parts = []
        if self.missing:
            parts.append(f"record(s) {_names(self.missing)} deleted")
        if self.changed and self.exact:
            parts.append(f"record(s) {_names(self.changed)} edited: their content no longer "
                         "matches the digest it was stored with")
        elif self.changed:
            parts.append(f"one or more of records {_names(self.changed)} edited (this entry "
                         "has no per-record digests to tell which)")
        return (f"the usage records of ledger batch entry {self.entry} differ: "
                + "; ".join(parts))


def _names(ids: Sequence[str], most: int = 10) -> str:
    shown = ", ".join(ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def batch_ids(data: Mapping[str, Any]) -> list[str]:
    """The record ids a ``ledger.batch`` entry's ``data`` covers, in order."""
    return [str(i) for i in data.get("ids", [])]


def check_batch(entry: int, data: Mapping[str, Any], found: Mapping[str, Row],
                float_columns: frozenset[str]) -> BatchFinding | None:
    """None when the rows ``found`` (id -> row, as the store returns them) for the records of
    the ``ledger.batch`` entry ``entry`` (its ``data``) hash to the digest it recorded; else
    what differs: the records whose row is missing, and those whose content changed.

    >>> row = {"id": "r1", "cost_usd": 0.5}
    >>> data = {"ids": ["r1"], "sha256": hashlib.sha256(
    ...     record_digest(row, frozenset({"cost_usd"}))).hexdigest()}
    >>> check_batch(7, data, {"r1": row}, frozenset({"cost_usd"})) is None
    True
    >>> check_batch(7, data, {}, frozenset()).missing
    ('r1',)
    """
    ids = batch_ids(data)
    digests = {i: record_digest(found[i], float_columns) for i in ids if i in found}
    missing = tuple(i for i in ids if i not in digests)
    total = hashlib.sha256(b"".join(digests[i] for i in ids if i in digests)).hexdigest()
    if not missing and total == data.get("sha256"):
        return None
    short = data.get("digests")
    if isinstance(short, list) and len(short) == len(ids):
        changed = tuple(i for i, recorded in zip(ids, short, strict=True)
                        if i in digests and digests[i].hex()[:SHORT_DIGEST_HEX] != recorded)
        if changed or missing:
            return BatchFinding(entry, missing, changed)
    if missing:  # the digest cannot tell more while a row is gone
        return BatchFinding(entry, missing, ())
    return BatchFinding(entry, (), tuple(ids), exact=False)


def added_message(entry: int | None, ids: Sequence[str]) -> str:
    """The finding for records in the store that no ``ledger.batch`` entry covers."""
    where = "" if entry is None else f" (stored at the time of ledger batch entry {entry})"
    return (f"record(s) {_names(ids)} were added to usage_records by hand: no ledger batch "
            f"entry covers them{where}")
