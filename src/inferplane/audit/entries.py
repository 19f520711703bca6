"""One audit log entry and its canonical encoding: the bytes its Merkle leaf hashes.

An entry is a JSON object, keys sorted, no spaces, UTF-8 (what ``orjson`` writes with
``OPT_SORT_KEYS``)::

    {"actor":"cli:ana","data":{...},"index":7,"kind":"key.revoke","prev":"<base64>","ts":1.7e9,"v":1}

- ``index``: its leaf index (0-based), so a row moved or renumbered names itself;
- ``prev``: the root hash (base64) of the tree of the ``index`` entries before it, so an entry
  changed together with its leaf hash is named by the next one;
- ``kind``: what happened (``tenant.create``, ``key.revoke``, ``config.load``,
  ``ledger.batch``, ...): dotted, lower case, the subject first;
- ``actor``: who did it (``key:<id>``, ``cli:<user>``, ``gateway:<host>``...);
- ``data``: what changed, JSON, never a secret.

The stored bytes are what is hashed: a verifier hashes ``0x00 || bytes`` without re-encoding.

>>> e = Entry(index=0, ts=1.5, kind="config.load", actor="gateway", prev=b"\\x00" * 32,
...           data={"sha256": "ab"})
>>> encode(e)[:44]
b'{"actor":"gateway","data":{"sha256":"ab"},"i'
>>> decode(encode(e)) == e
True
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferplane.audit.merkle import HASH_SIZE

VERSION = 1
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

# The kinds Inferplane appends today (any dotted name is accepted: items to come add theirs).
CONFIG_LOAD = "config.load"
LEDGER_BATCH = "ledger.batch"
TENANCY_KINDS = ("tenant.create", "tenant.update", "key.create", "key.rotate", "key.revoke")
# Hex digits of each record's digest a ledger.batch entry keeps: enough to name the record that
# changed (the batch's full SHA-256 is what proves it).
SHORT_DIGEST_HEX = 16


class EntryError(ValueError):
    """Bytes that are not an audit entry."""


@dataclass(frozen=True)
class Entry:
    index: int
    ts: float
    kind: str
    actor: str
    prev: bytes  # the root hash of the tree before this entry
    data: Mapping[str, Any] = field(default_factory=dict)


def check_kind(kind: str) -> str:
    """``kind`` when it is a dotted lower-case name (``key.revoke``); else ValueError."""
    if not _KIND.match(kind) or len(kind) > 64:
        raise ValueError(f"an audit entry kind is dotted lower case, e.g. key.revoke: {kind!r}")
    return kind


def encode(entry: Entry) -> bytes:
    """The canonical bytes of ``entry``."""
    return orjson.dumps({
        "v": VERSION, "index": entry.index, "ts": entry.ts, "kind": check_kind(entry.kind),
        "actor": entry.actor, "prev": base64.b64encode(entry.prev).decode(),
        "data": entry.data,
    }, option=orjson.OPT_SORT_KEYS)


def decode(raw: bytes) -> Entry:
    """The entry ``raw`` encodes; :class:`EntryError` when it is not one."""
    try:
        doc = orjson.loads(raw)
        prev = base64.b64decode(doc["prev"], validate=True)
        entry = Entry(index=doc["index"], ts=doc["ts"], kind=doc["kind"], actor=doc["actor"],
                      prev=prev, data=doc["data"])
        valid = (doc["v"] == VERSION and isinstance(entry.index, int) and entry.index >= 0
                 and isinstance(entry.ts, int | float) and isinstance(entry.kind, str)
                 and isinstance(entry.actor, str) and len(prev) == HASH_SIZE
                 and isinstance(entry.data, dict) and len(doc) == 7)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise EntryError(f"not an audit entry: {exc}") from None
    if not valid:
        raise EntryError("not an audit entry of version 1")
    return entry


# -- the digest of a ledger commit batch ------------------------------------------------------


def _plain(value: Any) -> Any:
    """A column value as a database returns it, the same from SQLite and PostgreSQL: NUL in
    text as U+FFFD (PostgreSQL cannot store NUL), whole numbers of float columns as floats."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    return value


def record_digest(row: Mapping[str, Any], float_columns: frozenset[str]) -> bytes:
    """SHA-256 of one usage record's canonical JSON (every column, floats as floats)."""
    plain = {name: (float(value) if name in float_columns and value is not None
                    and not isinstance(value, bool) else _plain(value))
             for name, value in row.items()}
    return hashlib.sha256(orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)).digest()


def batch_data(rows: Sequence[Mapping[str, Any]], float_columns: frozenset[str], *,
               wal_id: str, position: tuple[int, int]) -> dict[str, Any]:
    """The ``data`` of a ``ledger.batch`` entry: which records one group commit took (their
    ids, in order), up to which WAL position, the SHA-256 over their record digests, and the
    first :data:`SHORT_DIGEST_HEX` hex digits of each record digest (which record changed)."""
    digests = [record_digest(row, float_columns) for row in rows]
    return {"wal_id": wal_id, "segment": position[0], "offset": position[1],
            "count": len(rows), "ids": [str(row["id"]) for row in rows],
            "sha256": hashlib.sha256(b"".join(digests)).hexdigest(),
            "digests": [d.hex()[:SHORT_DIGEST_HEX] for d in digests]}
