"""A WAL directory: held by one process, named by an id, bound to one store, pruned once the
store has it all.

It holds::

    LOCK               flock'ed by the one process that writes here
    WAL_ID             a random id that names this WAL in the store's checkpoint table
    STORE_ID           the id of the store this WAL belongs to (then, as a hint, its URL)
    ledger-000001.wal  segments (see :mod:`inferplane.ledger.wal`)
    rejected.jsonl     records the store refused on a constraint: set aside, never dropped

**Binding.** A store has an identity (``Store.identity()``, a random id made when it is first
migrated). The first store to open a directory binds it: ``STORE_ID`` is written (fsynced, then
renamed into place, then the directory fsynced) before a record is replayed or appended. From
then on any other store is refused (:class:`~inferplane.ledger.wal.WalDirOfAnotherStore`)
before anything is replayed: a store without a checkpoint for the WAL would otherwise take
every record still in it, another store's included.

**A directory from an older version** (``WAL_ID``, no ``STORE_ID``) is bound to the store that
opens it when that store has a checkpoint for its WAL id (the store has taken its records
before: it is the owner), or when it holds no complete record (there is nothing to take by
mistake; a new, empty directory is this case too). Otherwise its owner is unknown and it is
refused (:class:`~inferplane.ledger.wal.WalDirOwnerUnknown`): open it with the store it was
written for, which binds it; or, if its records are this store's, write this store's id into
``STORE_ID`` by hand (the refusal says which).

**Default directory.** :func:`default_wal_dir` derives a directory from the store's URL, so
that configurations with different stores and no explicit directory never share one. Versions
before it wrote straight into ``DEFAULT_WAL_ROOT`` (and its ``worker-N`` folders):
:func:`legacy_wal_dirs` finds those, for their store to take what they still hold.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import URL, make_url

from inferplane.ledger.wal import (
    LedgerLocked,
    WalDirOfAnotherStore,
    WalDirOwnerUnknown,
    fsync_dir,
    holds_records,
    segment_name,
    segment_numbers,
)

log = logging.getLogger(__name__)

DEFAULT_WAL_ROOT = Path("~/.inferplane/ledger")
# Query parameters that tune a PostgreSQL connection without changing which database it reaches.
_TUNING_PARAMETERS = frozenset({"connect_timeout", "application_name", "sslmode"})


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

    def bound_store(self) -> tuple[str, str] | None:
        """The id of the store this directory belongs to and the URL it was bound through (a
        hint only: the same store can be reached by other URLs); None before its first binding.
        """
        try:
            lines = (self.path / "STORE_ID").read_text().splitlines()
        except FileNotFoundError:
            return None
        store_id = lines[0].strip() if lines else ""
        if not store_id:
            return None
        return store_id, lines[1].strip() if len(lines) > 1 else "an unnamed URL"

    def bind(self, store_id: str, store_url: str, *, has_checkpoint: bool) -> None:
        """Bind this directory to store ``store_id`` (reached through ``store_url``), or raise
        :class:`~inferplane.ledger.wal.WalDirRefused` when its records are not that store's.

        ``has_checkpoint``: whether the store has a checkpoint for this WAL's id. See the
        module's docstring for the rules; call this before anything is replayed.
        """
        bound = self.bound_store()
        if bound is not None:
            if bound[0] == store_id:
                return
            raise WalDirOfAnotherStore(
                f"the WAL directory {self.path} belongs to another store ({bound[1]}, store id "
                f"{bound[0]}), not to {store_url} (store id {store_id}); none of its records were "
                "replayed. Point ledger.dir at another directory for this store, or use this "
                "directory with the store it belongs to."
            )
        if not has_checkpoint and holds_records(self.path):
            raise WalDirOwnerUnknown(
                f"the WAL directory {self.path} holds records written by an older Inferplane, "
                f"which did not note their store, and {store_url} has no checkpoint for them: "
                "the directory's owner is unknown, so none of its records were replayed. Open "
                "it with the store it was written for (that binds it), or point ledger.dir at "
                "another directory for this store; if its records are this store's, write "
                f"{store_id} into {self.path / 'STORE_ID'}."
            )
        _write_durably(self.path, "STORE_ID", f"{store_id}\n{store_url}\n")
        log.info("WAL directory %s bound to the store %s", self.path, store_url)

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
    _write_durably(path, "WAL_ID", wal_id + "\n")
    return wal_id


def _write_durably(directory: Path, name: str, text: str) -> None:
    """Write ``directory/name`` whole or not at all, and make it survive a power loss."""
    tmp = directory / f"{name}.tmp"
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / name)
    fsync_dir(directory)


def normalized_store_url(store_url: str) -> str:
    """``store_url`` written one way for each database: the driver and any password left out,
    PostgreSQL's default port made explicit, a SQLite path expanded and made absolute.

    >>> normalized_store_url("postgres://me:secret@DB.internal/ledger?connect_timeout=3")
    'postgresql://me@db.internal:5432/ledger'
    >>> normalized_store_url("sqlite:////var/lib/inferplane/../inferplane/x.db?timeout=9")
    'sqlite:////var/lib/inferplane/x.db'
    """
    url = make_url(store_url)
    backend = url.get_backend_name()
    backend = "postgresql" if backend == "postgres" else backend
    database = url.database or ""
    query = {key: url.query[key] for key in sorted(url.query)}
    if backend == "sqlite":
        if database and database != ":memory:" and not database.startswith("file:"):
            database = os.path.abspath(os.path.expanduser(database))
        query = {}  # timeout and the like: the same file
    else:
        query = {key: value for key, value in query.items() if key not in _TUNING_PARAMETERS}
    port = url.port if url.port is not None or backend != "postgresql" else 5432
    normal = URL.create(backend, url.username, None, (url.host or "").lower() or None, port,
                        database or None, query)
    return normal.render_as_string(hide_password=False)


def default_wal_dir(store_url: str, root: Path = DEFAULT_WAL_ROOT) -> Path:
    """The WAL directory for ``store_url`` when none is configured: ``root`` (``~`` expanded)
    and, under it, the database's name and a digest of :func:`normalized_store_url`. Different
    stores get different directories; one store, however its URL is written, the same one.

    >>> root = Path("/var/lib/inferplane/ledger")
    >>> default_wal_dir("postgresql://me:secret@db.internal/ledger", root)
    PosixPath('/var/lib/inferplane/ledger/ledger-d210405eb2e9')
    >>> default_wal_dir("postgres://me:other@db.internal:5432/ledger", root).name
    'ledger-d210405eb2e9'
    >>> default_wal_dir("sqlite:////srv/data/Usage DB.sqlite3", root).name
    'usage-db-c5da842d86b3'
    >>> default_wal_dir("sqlite:////srv/a/inferplane.db") == default_wal_dir(
    ...     "sqlite:////srv/b/inferplane.db")
    False
    """
    normal = normalized_store_url(store_url)
    url = make_url(normal)
    name = Path(url.database or "").stem if url.get_backend_name() == "sqlite" else (
        url.database or url.username or "")
    slug = re.sub(r"[^a-z0-9_.]+", "-", name.lower()).strip("-.")[:40].rstrip("-.") or "store"
    digest = hashlib.sha256(normal.encode()).hexdigest()[:12]
    return root.expanduser() / f"{slug}-{digest}"


def wal_root(configured: str | None, store_url: str) -> Path:
    """The WAL directory a configuration names (``ledger.dir``, ``~`` expanded), else the one
    derived from its store."""
    return Path(configured).expanduser() if configured is not None else default_wal_dir(
        store_url)


def legacy_wal_dirs(root: Path = DEFAULT_WAL_ROOT) -> list[Path]:
    """The WAL directories an older version left at the old default place: ``root`` itself and
    its ``worker-N`` folders, where they hold a WAL."""
    root = root.expanduser()
    candidates = [root, *sorted(root.glob("worker-*"))] if root.is_dir() else []
    return [path for path in candidates if (path / "WAL_ID").is_file()]
