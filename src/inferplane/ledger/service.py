"""The ledger the gateway uses: append to the WAL on the request path, commit off it::

ledger = Ledger.open("sqlite:///~/.inferplane/inferplane.db", "~/.inferplane/ledger")
ledger.append(record)   # one os.write (~45 us with encoding), before the response's last byte
ledger.close()          # commits the rest, fsyncs, stops the committer
"""

from __future__ import annotations

import logging
import threading
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from inferplane.ledger.committer import Committer
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store
from inferplane.ledger.wal import (
    DEFAULT_SEGMENT_BYTES,
    FsyncPolicy,
    LedgerClosed,
    LedgerLocked,
    WalDirRefused,
    WalPosition,
    WalWriter,
)
from inferplane.ledger.waldir import WalDir

log = logging.getLogger(__name__)


class Ledger:
    """Durable usage records: a write-ahead file in front of a SQL store. Thread-safe.

    Build one with :meth:`open`. Only one process may hold a WAL directory; a second
    :meth:`open` of it raises :class:`~inferplane.ledger.wal.LedgerLocked`. A WAL directory
    belongs to one store: :func:`~inferplane.ledger.waldir.default_wal_dir` gives each store one.
    """

    def __init__(
        self, wal_dir: WalDir, store: Store, writer: WalWriter, committer: Committer, batch: int
    ) -> None:
        self._dir = wal_dir
        self._store = store
        self._writer = writer
        self._committer = committer
        self._batch = batch
        self._close_lock = threading.Lock()
        self._closed = False

    @classmethod
    def open(
        cls,
        store_url: str,
        wal_dir: str | Path,
        *,
        commit_interval_ms: int = 250,
        commit_batch: int = 1000,
        fsync: FsyncPolicy = "interval",
        fsync_interval_ms: int = 200,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
    ) -> Ledger:
        """Lock the WAL directory, migrate the store, bind the directory to the store, recover,
        start the committer thread.

        A directory bound to another store (or an older version's, whose owner is unknown) is
        refused with :class:`~inferplane.ledger.wal.WalDirRefused` before anything is replayed
        (see :mod:`~inferplane.ledger.waldir`). Recovery commits every WAL record past the
        store's checkpoint before returning; if the store refuses (locked, down), the committer
        keeps retrying in the background.
        """
        if commit_interval_ms <= 0 or commit_batch <= 0 or fsync_interval_ms <= 0:
            raise ValueError("commit_interval_ms, commit_batch and fsync_interval_ms must be > 0")
        if segment_bytes <= 0:
            raise ValueError("segment_bytes must be > 0")
        with ExitStack() as cleanup:
            directory = WalDir.acquire(Path(wal_dir).expanduser())
            cleanup.callback(directory.release)
            store = Store.open(store_url)
            cleanup.callback(store.close)
            checkpoint = store.checkpoint(directory.wal_id)
            # Before anything is replayed: another store's records must never come in here.
            directory.bind(store.identity(), store.url, has_checkpoint=checkpoint is not None)
            start = WalPosition(*(checkpoint or (0, 0)))
            writer = WalWriter(
                directory.path,
                first_segment=start.segment + 1,  # never behind the checkpoint
                fsync=fsync,
                fsync_interval_ms=fsync_interval_ms,
                segment_bytes=segment_bytes,
            )
            cleanup.callback(writer.close)
            committer = Committer(
                store,
                directory,
                writer,
                start=start,
                interval_s=commit_interval_ms / 1000,
                batch=commit_batch,
            )
            try:
                if recovered := committer.drain():
                    log.info("ledger recovered %d record(s) from %s", recovered, directory.path)
            except SQLAlchemyError as exc:
                log.warning("ledger recovery deferred to the committer: %s", exc)
            committer.start()
            cleanup.pop_all()
        return cls(directory, store, writer, committer, commit_batch)

    @property
    def wal_path(self) -> Path:
        """The WAL directory."""
        return self._dir.path

    @property
    def store_url(self) -> str:
        """The store's URL, password hidden."""
        return self._store.url

    @property
    def store(self) -> Store:
        return self._store

    @property
    def appended(self) -> int:
        """How many records this process appended since it opened the ledger."""
        return self._writer.appended

    @property
    def all_in_store(self) -> bool:
        """The store holds every record appended so far (after :meth:`close`: nothing was left
        in the WAL for the next open)."""
        return self._committer.position >= self._writer.position()

    def append(self, record: UsageRecord) -> None:
        """Write ``record`` to the WAL (and fsync it when the policy is "always").

        Once this returns the record survives the process being killed; the committer moves
        it into the store within ``commit_interval_ms`` (sooner when a batch is full).
        """
        if self._writer.append(record) % self._batch == 0:
            self._committer.wake()

    def flush(self, timeout: float | None = None) -> None:
        """Wait until the store has every record appended so far.

        Raises :class:`TimeoutError` after ``timeout`` seconds (the records stay in the WAL).
        """
        if self._closed:
            raise LedgerClosed("the ledger is closed")
        target = self._writer.position()
        self._committer.wake()
        if not self._committer.wait_for(target, timeout):
            if self._closed:
                raise LedgerClosed("the ledger was closed before the store took every record")
            raise TimeoutError(f"the ledger store has not taken every record in {timeout}s")

    def close(self) -> None:
        """Commit what it can, fsync the WAL, stop the committer, release everything. Idempotent.

        What the store cannot take now (it is down) stays in the WAL for the next open.
        """
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._committer.stop()
        self._writer.close()
        self._store.close()
        self._dir.release()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def tail(self, n: int = 20, model: str | None = None) -> list[UsageRecord]:
        """The ``n`` newest committed records (of ``model`` if given), newest last."""
        return self._store.tail(n, model)

    def stats(self) -> dict[str, Any]:
        """Totals and percentiles of the committed records, overall and per model."""
        return self._store.stats()

    def count(self) -> int:
        return self._store.count()

    def get(self, record_id: str) -> UsageRecord | None:
        return self._store.get(record_id)


def drain(store_url: str, wal_dir: Path) -> bool:
    """Commit what a WAL directory no gateway writes to any more still holds into the store it
    belongs to, then let it go. False, with nothing taken, when it is another store's (or its
    owner is unknown) or a process holds it."""
    try:
        Ledger.open(store_url, wal_dir).close()
    except (LedgerLocked, WalDirRefused) as exc:
        log.info("left the WAL directory %s alone: %s", wal_dir, exc)
        return False
    return True
