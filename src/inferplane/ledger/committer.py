"""Group commit: moves records from the WAL into the store, in batches, on a thread of its own.

Each batch is one transaction that inserts the records and moves the checkpoint past them, so a
crash between two batches replays nothing twice. While the store is unavailable the records wait
in the WAL and the committer retries with exponential backoff; it never drops one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from inferplane.ledger.store import Row, Store
from inferplane.ledger.wal import WalPosition, WalWriter, read_records
from inferplane.ledger.waldir import WalDir

log = logging.getLogger(__name__)

MIN_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


class Committer:
    """Commits WAL records past ``start`` into ``store``, every ``interval_s`` or when woken."""

    def __init__(
        self,
        store: Store,
        wal_dir: WalDir,
        writer: WalWriter,
        *,
        start: WalPosition,
        interval_s: float,
        batch: int,
    ) -> None:
        self._store = store
        self._dir = wal_dir
        self._writer = writer
        self._position = start
        self._interval_s = interval_s
        self._batch = batch
        self._moved = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="inferplane-ledger-committer", daemon=True
        )

    @property
    def position(self) -> WalPosition:
        """Everything before this WAL position is in the store."""
        return self._position

    def drain(self) -> int:
        """Commit every complete record the WAL holds past the checkpoint; return how many.

        Raises :class:`~sqlalchemy.exc.SQLAlchemyError` when the store fails; what was committed
        before stays committed and the rest stays in the WAL.
        """
        committed = 0
        while True:
            if self._position >= self._writer.position():  # caught up: nothing to read
                return committed
            active = self._writer.segment  # read before the segment: what is below it is complete
            rows, position = read_records(self._dir.path, self._position, self._batch, active)
            if position == self._position:
                return committed
            self._commit(rows, position)
            if position.segment > self._position.segment:
                self._dir.delete_segments_before(position.segment)
            with self._moved:
                self._position = position
                self._moved.notify_all()
            committed += len(rows)

    def wait_for(self, target: WalPosition, timeout: float | None) -> bool:
        """Block until the store has taken everything before ``target``.

        False when ``timeout`` passes first, or the committer stops first.
        """
        with self._moved:
            self._moved.wait_for(lambda: self._position >= target or self._stopped, timeout)
            return self._position >= target

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Make a last attempt to drain, then end the thread. Idempotent."""
        self._stopping.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()
        with self._moved:
            self._stopped = True
            self._moved.notify_all()

    def _commit(self, rows: Sequence[Row], position: WalPosition) -> None:
        wal_id = self._dir.wal_id
        try:
            self._store.commit(rows, wal_id, position)
        except (IntegrityError, DataError):  # a record the database refuses: set it aside
            rejected = self._store.insert_each(rows)
            if rejected:
                path = self._dir.write_rejected(rejected)
                log.error("the store refused %d usage record(s); kept in %s", len(rejected), path)
            refused = {id(row) for row in rejected}
            self._store.commit([], wal_id, position,
                               covered=[row for row in rows if id(row) not in refused])

    def _run(self) -> None:
        backoff = MIN_BACKOFF_S
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            stopping = self._stopping.is_set()
            if self._try_drain(backoff):
                backoff = MIN_BACKOFF_S
            elif not stopping:
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
            if stopping:
                return

    def _try_drain(self, backoff: float) -> bool:
        try:
            self.drain()
            return True
        except SQLAlchemyError as exc:
            reason = getattr(exc, "orig", None) or exc  # the driver's words, not the whole batch
            log.warning(
                "ledger store unavailable (%s); records wait in the WAL, retry in %.1fs",
                reason,
                backoff,
            )
        except Exception:
            log.exception("ledger commit failed; records wait in the WAL, retry in %.1fs", backoff)
        return False
