"""A WAL directory: held by one process, named by an id, pruned once the store has it all.

It holds::

    LOCK               flock'ed by the one process that writes here
    WAL_ID             a random id that names this WAL in the store's checkpoint table
    ledger-000001.wal  segments (see :mod:`inferplane.ledger.wal`)
    rejected.jsonl     records the store refused on a constraint: set aside, never dropped
"""

from __future__ import annotations

import fcntl
import logging
import os
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson

from inferplane.ledger.wal import LedgerLocked, fsync_dir, segment_name, segment_numbers

log = logging.getLogger(__name__)


class WalDir:
    """A WAL directory, held with an exclusive ``flock`` until :meth:`release`."""

    def __init__(self, path: Path, lock_fd: int, wal_id: str) -> None:
        self.path = path
        self.wal_id = wal_id
        self._lock_fd = lock_fd

    @classmethod
    def acquire(cls, path: Path) -> WalDir:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / "LOCK", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return cls(path, fd, _wal_id(path))
        except BlockingIOError as exc:
            os.close(fd)
            raise LedgerLocked(f"the ledger in {path} is in use by another process") from exc
        except BaseException:
            os.close(fd)
            raise

    def release(self) -> None:
        if self._lock_fd >= 0:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = -1

    def delete_segments_before(self, segment: int) -> None:
        """Delete every segment numbered below ``segment`` (the store has taken all of them)."""
        for number in segment_numbers(self.path):
            if number < segment:
                (self.path / segment_name(number)).unlink(missing_ok=True)
                log.debug("deleted committed WAL segment %s", segment_name(number))

    def write_rejected(self, rows: Iterable[Mapping[str, Any]]) -> Path:
        """Append rows the store refused to ``rejected.jsonl``, durably, and return its path."""
        path = self.path / "rejected.jsonl"
        data = b"".join(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE) for row in rows)
        with path.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return path


def _wal_id(path: Path) -> str:
    id_file = path / "WAL_ID"
    if id_file.exists():
        return id_file.read_text().strip()
    wal_id = uuid.uuid4().hex
    tmp = path / "WAL_ID.tmp"
    tmp.write_text(wal_id + "\n")
    os.replace(tmp, id_file)
    fsync_dir(path)
    return wal_id
