"""The ledger's write-ahead file: one JSON line per usage record, written before the response ends.

Segments ``ledger-000001.wal``, ``ledger-000002.wal``, ... hold one JSON object per line, each
appended with one ``os.write`` on a descriptor opened ``O_APPEND``; a new segment starts on every
open and whenever the active one exceeds its size. The writer only appends; the reader yields
complete lines and leaves out a last line without its newline (a write torn by a crash, or one
still being written). The directory around the segments is :mod:`inferplane.ledger.waldir`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import orjson

from inferplane.errors import InferplaneError
from inferplane.ledger.record import UsageRecord

log = logging.getLogger(__name__)

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES: tuple[str, ...] = get_args(FsyncPolicy)
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
FIELDS: tuple[str, ...] = tuple(f.name for f in fields(UsageRecord))
_FIELD_SET = frozenset(FIELDS)
# Fields added after the first release have defaults: a line written before them lacks them.
_DEFAULTS = {f.name: f.default for f in fields(UsageRecord) if f.default is not MISSING}
_REQUIRED = _FIELD_SET - _DEFAULTS.keys()

_datasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync


class LedgerError(InferplaneError):
    """The usage ledger cannot do what was asked."""


class LedgerLocked(LedgerError):
    """Another process (a running gateway) holds the WAL directory."""


class LedgerClosed(LedgerError):
    """The ledger was closed; nothing more can be appended or flushed."""


class WalDirRefused(LedgerError):
    """A WAL directory whose records this store must not take (see :mod:`~.waldir`)."""


class WalDirOfAnotherStore(WalDirRefused):
    """The WAL directory is bound to another store."""


class WalDirOwnerUnknown(WalDirRefused):
    """An older version's WAL directory holds records, and this store has no checkpoint for it."""


class WalPosition(NamedTuple):
    """A place in the WAL: a segment number and a byte offset in it. Ordered."""

    segment: int
    offset: int


def segment_name(segment: int) -> str:
    """The file name of a segment.

    >>> segment_name(7)
    'ledger-000007.wal'
    """
    return f"ledger-{segment:06d}.wal"


def segment_numbers(directory: Path) -> list[int]:
    """The numbers of the segments in ``directory``, ascending."""
    numbers = []
    for name in os.listdir(directory):
        stem = name.removeprefix("ledger-").removesuffix(".wal")
        if stem != name and stem.isdigit():
            numbers.append(int(stem))
    return sorted(numbers)


def encode(record: UsageRecord) -> bytes:
    """One WAL line: the record as a JSON object with a trailing newline."""
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)


def decode(line: bytes) -> dict[str, Any] | None:
    """A WAL line back to a row of the record's fields, or None when the line is not a record.
    Fields a line from an older version lacks take their defaults.

    >>> decode(b'{"id": "x"}') is None
    True
    """
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or not obj.keys() >= _REQUIRED:
        return None
    if obj.keys() == _FIELD_SET:  # the usual case: exactly the record's fields
        return obj
    return {name: obj[name] if name in obj else _DEFAULTS[name] for name in FIELDS}


def fsync_dir(directory: Path) -> None:
    """Make the directory's entries (a new segment, a deleted one) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WalWriter:
    """Appends records to the active segment; rotates segments; fsyncs by policy.

    ``fsync``: ``"always"`` syncs inside :meth:`append`; ``"interval"`` syncs on a background
    thread at most every ``fsync_interval_ms``; ``"never"`` leaves it to the OS (until close).
    """

    def __init__(
        self,
        directory: Path,
        *,
        first_segment: int = 1,
        fsync: FsyncPolicy = "interval",
        fsync_interval_ms: int = 200,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_POLICIES)}, not {fsync!r}")
        self.directory = directory
        self._policy = fsync
        self._segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._dirty = False
        self._dir_dirty = False
        self._retired: list[int] = []  # rotated-out descriptors the syncer still has to fsync
        self._count = 0
        self._size = 0
        self._segment = max([first_segment, *(n + 1 for n in segment_numbers(directory))])
        self._fd = self._open_segment(self._segment)
        self._stop = threading.Event()
        self._syncer: threading.Thread | None = None
        if fsync == "interval":
            self._syncer = threading.Thread(
                target=self._sync_loop,
                args=(fsync_interval_ms / 1000,),
                name="inferplane-wal-fsync",
                daemon=True,
            )
            self._syncer.start()

    @property
    def appended(self) -> int:
        """How many records this writer has appended."""
        return self._count

    @property
    def segment(self) -> int:
        """The number of the active segment (the one appends go to)."""
        return self._segment

    def position(self) -> WalPosition:
        """The position just past the last record appended so far."""
        with self._lock:
            return WalPosition(self._segment, self._size)

    def append(self, record: UsageRecord) -> int:
        """Write one record (one ``os.write``); return how many this writer has appended."""
        data = encode(record)
        with self._lock:
            if self._fd < 0:
                raise LedgerClosed("the ledger is closed")
            self._write(data)
            self._count += 1
            if self._policy == "always":
                _datasync(self._fd)
            else:
                self._dirty = True
            if self._size >= self._segment_bytes:
                self._rotate()
            return self._count

    def sync(self) -> None:
        """fsync what was appended so far, and the segments rotated out since the last sync."""
        with self._lock:
            if self._fd < 0:
                return
            fd = os.dup(self._fd) if self._dirty else -1  # a dup: safe if a rotation closes ours
            retired, self._retired = self._retired, []
            dir_dirty, self._dir_dirty = self._dir_dirty, False
            self._dirty = False
        try:
            self._sync_and_close(retired)
            if dir_dirty:
                fsync_dir(self.directory)
            if fd >= 0:
                _datasync(fd)
        finally:
            if fd >= 0:
                os.close(fd)

    def close(self) -> None:
        """fsync and close the active segment (whatever the policy). Idempotent."""
        self._stop.set()
        if self._syncer is not None:
            self._syncer.join()
        with self._lock:
            if self._fd < 0:
                return
            fds, self._retired, self._fd = [*self._retired, self._fd], [], -1
        self._sync_and_close(fds)
        fsync_dir(self.directory)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError:
            if len(view) < len(data):  # never leave half a record in front of the next one
                with contextlib.suppress(OSError):
                    os.ftruncate(self._fd, self._size)
            raise
        self._size += len(data)

    def _open_segment(self, segment: int) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(self.directory / segment_name(segment), flags, 0o644)
        if self._policy == "always":
            fsync_dir(self.directory)
        elif self._policy == "interval":
            self._dir_dirty = True
        return fd

    def _rotate(self) -> None:
        if self._policy == "interval":
            self._retired.append(self._fd)
        else:
            os.close(self._fd)  # "always": already synced; "never": the OS decides
        self._segment += 1
        self._size = 0
        self._fd = self._open_segment(self._segment)

    def _sync_and_close(self, fds: list[int]) -> None:
        error: OSError | None = None
        for fd in fds:
            try:
                _datasync(fd)
            except OSError as exc:
                error = error or exc
            finally:
                os.close(fd)
        if error is not None:
            raise error

    def _sync_loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            try:
                self.sync()
            except OSError:
                log.exception("fsync of the ledger WAL in %s failed", self.directory)


def read_lines(path: Path, offset: int, limit: int) -> list[tuple[bytes, int]]:
    """Up to ``limit`` complete lines of a segment from ``offset``, each with the offset past it.

    A last line without its newline (torn by a crash, or still being written) is left out.
    """
    lines: list[tuple[bytes, int]] = []
    end = offset
    with path.open("rb") as f:
        f.seek(offset)
        for line in f:
            if len(lines) >= limit or not line.endswith(b"\n"):
                break
            end += len(line)
            lines.append((line, end))
    return lines


def holds_records(directory: Path) -> bool:
    """Whether a segment in ``directory`` holds a complete record (a torn last line, or a line
    that is not a record, does not count)."""
    for number in segment_numbers(directory):
        with (directory / segment_name(number)).open("rb") as f:
            if any(line.endswith(b"\n") and decode(line) is not None for line in f):
                return True
    return False


def read_records(
    directory: Path, start: WalPosition, limit: int, active: int
) -> tuple[list[dict[str, Any]], WalPosition]:
    """Up to ``limit`` records after ``start``, and the position just past them.

    Segments below ``active`` are complete: once one is read to its end (a torn last line
    included), the position moves on to the start of the next segment.
    """
    rows: list[dict[str, Any]] = []
    position = start
    budget = limit
    for segment in segment_numbers(directory):
        if segment < position.segment:
            continue
        if segment > position.segment:
            position = WalPosition(segment, 0)
        path = directory / segment_name(segment)
        lines = read_lines(path, position.offset, budget)
        for line, end in lines:
            row = decode(line)
            if row is None:
                log.error("not a usage record, skipped: %s at %d", path, end - len(line))
            else:
                rows.append(row)
            position = WalPosition(segment, end)
        budget -= len(lines)
        if budget <= 0 or segment >= active:
            break
        position = WalPosition(segment + 1, 0)
    return rows, position
