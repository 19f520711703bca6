"""A WAL directory belongs to one store: another store refuses it before replaying anything, an
older version's directory is bound only when its owner is certain, and each store gets a
default directory of its own."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, func, select

from inferplane.ledger.service import Ledger
from inferplane.ledger.store import Store, ledger_store_identity, make_engine
from inferplane.ledger.wal import (
    LedgerError,
    WalDirOfAnotherStore,
    WalDirOwnerUnknown,
    WalDirRefused,
    encode,
    holds_records,
    segment_name,
    segment_numbers,
)
from inferplane.ledger.waldir import default_wal_dir, normalized_store_url
from tests.services import fresh_database
from tests.unit.test_ledger import NEVER_MS, record, run_together, stored_count


@pytest.fixture(params=["sqlite", "postgresql"])
def two_stores(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """Two different stores of one kind: two SQLite files, or two PostgreSQL databases."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/a/inferplane.db", f"sqlite:///{tmp_path}/b/other.db"
    server = request.getfixturevalue("postgres_url")
    return (fresh_database(server, request.node.nodeid + "-a"),
            fresh_database(server, request.node.nodeid + "-b"))


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/db/inferplane.db"


def identity(url: str) -> str:
    store = Store.open(url)
    try:
        return store.identity()
    finally:
        store.close()


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.name != "LOCK"}


def make_legacy(wal_dir: Path) -> None:
    """Make ``wal_dir`` look written by a version before stores had an identity."""
    (wal_dir / "STORE_ID").unlink()


# -- the store's identity -----------------------------------------------------------------


def test_a_store_keeps_one_identity_and_two_stores_differ(two_stores: tuple[str, str]) -> None:
    a, b = two_stores
    first = identity(a)
    assert len(first) == 32 and int(first, 16) >= 0
    assert identity(a) == first  # reopened: the same store
    assert identity(b) != first


def test_a_store_whose_identity_row_was_deleted_gets_a_new_one(url: str) -> None:
    before = identity(url)
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(delete(ledger_store_identity))
    finally:
        engine.dispose()
    after = identity(url)
    assert after != before and identity(url) == after


def test_a_store_making_its_identity_just_after_another_process_takes_that_one(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = identity(url)  # by the migration
    store = Store.open(url)
    try:
        real = store._read_identity
        reads: list[str | None] = []

        def late_read() -> str | None:  # the first read comes before the other process's insert
            reads.append(real() if reads else None)
            return reads[-1]

        monkeypatch.setattr(store, "_read_identity", late_read)
        assert store.identity() == made and len(reads) == 2
    finally:
        store.close()


IDENTITY_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from inferplane.ledger.store import Store

print("ready", flush=True)
sys.stdin.readline()  # all together now
store = Store.open(sys.argv[2])
print(store.identity(), flush=True)
store.close()
"""


def test_processes_opening_a_new_database_together_agree_on_its_identity(
    tmp_path: Path, postgres_db: str
) -> None:
    script = tmp_path / "identity.py"
    script.write_text(IDENTITY_CHILD)
    outputs = run_together(script, postgres_db, 6)
    ids = {out.decode().strip() for out, _err in outputs}
    assert len(ids) == 1 and ids == {identity(postgres_db)}
    engine = make_engine(postgres_db)
    try:
        with engine.connect() as connection:
            rows = connection.execute(select(func.count()).select_from(ledger_store_identity))
            assert rows.scalar_one() == 1
    finally:
        engine.dispose()


# -- a WAL directory bound to its store ---------------------------------------------------


def test_another_store_refuses_a_wal_directory_and_takes_none_of_its_records(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    a, b = two_stores
    shared = tmp_path / "ledger"
    with Ledger.open(a, shared, commit_interval_ms=NEVER_MS) as ledger:
        for i in range(3):
            ledger.append(record(i))
    assert stored_count(a) == 3
    assert holds_records(shared)  # the active segment stays: without the binding, B took these
    before = files(shared)

    with pytest.raises(WalDirOfAnotherStore) as refused:
        Ledger.open(b, shared)
    message = str(refused.value)
    assert str(shared) in message and "belongs to another store" in message
    assert "ledger.dir" in message and "the store it belongs to" in message
    assert isinstance(refused.value, LedgerError)
    assert stored_count(b) == 0
    assert files(shared) == before  # nothing replayed, appended, pruned or rebound

    with Ledger.open(a, shared, commit_interval_ms=NEVER_MS) as ledger:  # the lock was let go
        for i in range(3, 7):
            ledger.append(record(i))
        ledger.flush(10)
        assert ledger.count() == 7
    assert stored_count(a) == 7 and stored_count(b) == 0


def test_each_store_in_its_default_directory_keeps_its_own_records(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    a, b = two_stores
    root = tmp_path / "ledger"
    for store_url, n in ((a, 3), (b, 4)):
        with Ledger.open(store_url, default_wal_dir(store_url, root)) as ledger:
            for i in range(n):
                ledger.append(record(100 * n + i))
    assert (stored_count(a), stored_count(b)) == (3, 4)
    assert len(list(root.iterdir())) == 2


def test_the_binding_is_written_once_and_durably(url: str, tmp_path: Path) -> None:
    wal_dir = tmp_path / "wal"
    Ledger.open(url, wal_dir).close()
    lines = (wal_dir / "STORE_ID").read_text().splitlines()
    assert lines[0] == identity(url) and lines[1].startswith("sqlite:///")
    assert not list(wal_dir.glob("*.tmp"))
    Ledger.open(url, wal_dir).close()
    assert (wal_dir / "STORE_ID").read_text().splitlines() == lines


# -- a WAL directory from before the binding ----------------------------------------------


def test_an_old_directory_is_bound_by_the_store_with_its_checkpoint(
    url: str, tmp_path: Path
) -> None:
    wal_dir = tmp_path / "wal"
    with Ledger.open(url, wal_dir) as ledger:
        ledger.append(record(1))
    make_legacy(wal_dir)
    late = max(segment_numbers(wal_dir)) + 1  # a record the old version had not committed
    (wal_dir / segment_name(late)).write_bytes(encode(record(2)))
    with Ledger.open(url, wal_dir) as ledger:
        assert ledger.count() == 2
    assert (wal_dir / "STORE_ID").read_text().split()[0] == identity(url)


def test_an_old_directory_with_records_and_no_checkpoint_here_is_refused(
    two_stores: tuple[str, str], tmp_path: Path
) -> None:
    a, b = two_stores
    wal_dir = tmp_path / "wal"
    with Ledger.open(a, wal_dir) as ledger:
        ledger.append(record(1))
    make_legacy(wal_dir)
    before = files(wal_dir)

    with pytest.raises(WalDirOwnerUnknown) as refused:
        Ledger.open(b, wal_dir)
    message = str(refused.value)
    assert str(wal_dir) in message and "owner is unknown" in message
    assert "ledger.dir" in message and identity(b) in message  # how to give them to B
    assert isinstance(refused.value, WalDirRefused)
    assert stored_count(b) == 0 and files(wal_dir) == before

    with Ledger.open(a, wal_dir) as ledger:  # its own store has the checkpoint: bound
        assert ledger.count() == 1
    with pytest.raises(WalDirOfAnotherStore):
        Ledger.open(b, wal_dir)


@pytest.mark.parametrize("content", [b"", b'{"id": "torn', b"not a record\n"])
def test_an_old_directory_without_a_record_is_bound_by_any_store(
    url: str, tmp_path: Path, content: bytes
) -> None:
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    (wal_dir / "WAL_ID").write_text("0123456789abcdef0123456789abcdef\n")
    (wal_dir / segment_name(1)).write_bytes(content)
    with Ledger.open(url, wal_dir) as ledger:
        assert ledger.count() == 0
        ledger.append(record(1))
    assert stored_count(url) == 1
    assert (wal_dir / "STORE_ID").read_text().split()[0] == identity(url)


def test_the_owner_can_be_named_by_hand(two_stores: tuple[str, str], tmp_path: Path) -> None:
    a, b = two_stores
    wal_dir = tmp_path / "wal"
    with Ledger.open(a, wal_dir, commit_interval_ms=NEVER_MS) as ledger:
        ledger.append(record(1))
    make_legacy(wal_dir)
    with pytest.raises(WalDirOwnerUnknown):
        Ledger.open(b, wal_dir)
    (wal_dir / "STORE_ID").write_text(identity(b) + "\n")  # what the refusal says to do
    with Ledger.open(b, wal_dir) as ledger:
        assert ledger.count() == 1


# -- the default directory ----------------------------------------------------------------


def test_default_wal_dirs_differ_for_different_stores(tmp_path: Path) -> None:
    root = tmp_path / "ledger"
    urls = [
        "sqlite:///~/.inferplane/inferplane.db",
        "sqlite:///other.db",
        f"sqlite:///{tmp_path}/a/inferplane.db",
        f"sqlite:///{tmp_path}/b/inferplane.db",
        "postgresql://me@db.internal/ledger",
        "postgresql://me@db.internal/usage",
        "postgresql://me@db2.internal/ledger",
        "postgresql://me@db.internal:5433/ledger",
        "postgresql://you@db.internal/ledger",
    ]
    dirs = [default_wal_dir(u, root) for u in urls]
    assert len(set(dirs)) == len(urls)
    assert all(d.parent == root for d in dirs)
    assert dirs[0].name.startswith("inferplane-") and dirs[1].name.startswith("other-")
    assert dirs[4].name.startswith("ledger-") and dirs[5].name.startswith("usage-")


def test_default_wal_dirs_agree_for_one_store_written_several_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "ledger"
    same_file = [
        "sqlite:///~/x.db",
        f"sqlite:///{tmp_path}/home/x.db",
        f"sqlite:///{tmp_path}/home/../home/x.db",
        "sqlite:///home/x.db",  # relative to the working directory
        "sqlite+pysqlite:///~/x.db?timeout=30",
    ]
    assert len({default_wal_dir(u, root) for u in same_file}) == 1
    same_database = [
        "postgresql://me:secret@db.internal/ledger",
        "postgresql://me:other@db.internal/ledger",
        "postgresql://me@db.internal/ledger",
        "postgres://me@DB.internal:5432/ledger",
        "postgresql+psycopg://me@db.internal/ledger?connect_timeout=3",
    ]
    assert len({default_wal_dir(u, root) for u in same_database}) == 1
    assert "secret" not in normalized_store_url(same_database[0])


def test_the_default_root_is_under_the_home_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    found = default_wal_dir("sqlite:///~/.inferplane/inferplane.db")
    assert found.parent == tmp_path / ".inferplane" / "ledger"
