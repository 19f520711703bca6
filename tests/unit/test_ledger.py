"""The usage ledger against real SQLite files and a real PostgreSQL 15 server: WAL, group
commit, recovery, queries, CLI."""

from __future__ import annotations

import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import delete
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from inferplane.cli import ledger_cmd
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger
from inferplane.ledger.stats import percentile
from inferplane.ledger.store import (
    RECORDS_BATCH,
    Store,
    ledger_checkpoint,
    make_engine,
    metadata,
    migrate,
    usage_records,
)
from inferplane.ledger.wal import (
    FIELDS,
    LedgerClosed,
    LedgerLocked,
    WalPosition,
    encode,
    read_records,
    segment_name,
    segment_numbers,
)
from tests.services import refusing_connections

SRC = Path(__file__).resolve().parents[2] / "src"
NEVER_MS = 3_600_000  # a commit interval so long that only flush/close commit


def record(i: int, **changes: object) -> UsageRecord:
    base = UsageRecord(
        id=f"req-{i:06d}",
        ts=1_700_000_000.0 + i,
        endpoint="/v1/chat/completions",
        model="chat-small" if i % 2 == 0 else "chat-large",
        deployment="local-gemma",
        provider="llamacpp",
        prompt_tokens=10,
        completion_tokens=20,
        ttft_ms=5.0 + i,
        latency_ms=100.0 + i,
        status=200,
        error_type=None,
        finish_reason="stop",
        stream=True,
        engine_seconds=0.5,
        cost_usd=0.001,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture
def url(tmp_path: Path) -> str:
    """An SQLite store, for the tests of the write-ahead file itself."""
    return f"sqlite:///{tmp_path}/db/inferplane.db"


@pytest.fixture
def wal_dir(tmp_path: Path) -> Path:
    return tmp_path / "wal"


def stored_count(url: str) -> int:
    store = Store.open(url)
    try:
        return store.count()
    finally:
        store.close()


# -- the write-ahead file ----------------------------------------------------------------


def test_record_fields_are_the_table_columns() -> None:
    assert tuple(c.name for c in usage_records.columns) == FIELDS


def test_reader_ignores_a_torn_last_line_and_skips_garbage(tmp_path: Path) -> None:
    good = [encode(record(i)) for i in range(3)]
    (tmp_path / segment_name(1)).write_bytes(
        good[0] + b"not json\n" + good[1] + good[2] + b'{"id": "torn", "ts'
    )
    rows, position = read_records(tmp_path, WalPosition(0, 0), limit=100, active=1)
    assert [r["id"] for r in rows] == ["req-000000", "req-000001", "req-000002"]
    assert position == WalPosition(1, sum(map(len, good)) + len(b"not json\n"))
    # the same segment once closed: the torn line is given up and the position moves on
    (tmp_path / segment_name(2)).write_bytes(encode(record(9)))
    rows, position = read_records(tmp_path, position, limit=100, active=2)
    assert [r["id"] for r in rows] == ["req-000009"]
    assert position == WalPosition(2, len(encode(record(9))))


def test_a_line_from_before_later_fields_is_replayed_with_their_defaults(
        store_url: str, wal_dir: Path) -> None:
    old = json.loads(encode(record(1)))
    for name in ("cached_tokens", "region", "routing_policy", "attempts", "attempt_count"):
        del old[name]  # fields added after the first release
    Ledger.open(store_url, wal_dir).close()  # a WAL directory of this store's
    (wal_dir / segment_name(9)).write_bytes(json.dumps(old).encode() + b"\n")
    rows, _ = read_records(wal_dir, WalPosition(0, 0), limit=10, active=10)
    assert rows == [{**old, "cached_tokens": 0, "region": None, "routing_policy": None,
                     "attempts": None, "attempt_count": 1}]
    Ledger.open(store_url, str(wal_dir)).close()  # recovery moves it into the store
    store = Store.open(store_url)
    try:
        stored = store.get("req-000001")
    finally:
        store.close()
    assert stored is not None and stored.attempt_count == 1 and stored.cached_tokens == 0


def test_reader_respects_the_limit_across_segments(tmp_path: Path) -> None:
    for segment in (1, 2):
        lines = b"".join(encode(record(segment * 10 + i)) for i in range(3))
        (tmp_path / segment_name(segment)).write_bytes(lines)
    seen: list[str] = []
    position = WalPosition(0, 0)
    while True:
        rows, after = read_records(tmp_path, position, limit=2, active=2)
        if after == position:
            break
        seen += [r["id"] for r in rows]
        position = after
    assert seen == [f"req-0000{n}" for n in (10, 11, 12, 20, 21, 22)]


# -- append, flush, query -----------------------------------------------------------------


def test_append_flush_tail_stats(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir, commit_interval_ms=NEVER_MS) as ledger:
        for i in range(10):
            ledger.append(record(i))
        ledger.append(record(10, status=502, error_type="upstream_error", ttft_ms=None))
        ledger.append(record(11, status=429, error_type="rate_limited", prompt_tokens=0))
        assert ledger.count() == 0  # nothing committed until the interval or a flush
        ledger.flush(timeout=10)
        assert ledger.count() == 12
        assert [r.id for r in ledger.tail(3)] == ["req-000009", "req-000010", "req-000011"]
        assert [r.id for r in ledger.tail(2, model="chat-small")] == ["req-000008", "req-000010"]
        assert ledger.get("req-000003") == record(3)
        assert ledger.get("nope") is None
        stats = ledger.stats()
        assert ledger.wal_path == wal_dir
        assert ledger.store_url == store_url
    overall = stats["overall"]
    assert overall["requests"] == 12
    assert overall["errors"] == 2
    assert overall["status"] == {"2xx": 10, "4xx": 1, "5xx": 1}
    assert overall["error_types"] == {"upstream_error": 1, "rate_limited": 1}
    assert overall["prompt_tokens"] == 110
    assert overall["completion_tokens"] == 240
    assert overall["cost_usd"] == pytest.approx(0.012)
    assert overall["engine_seconds"] == pytest.approx(6.0)
    assert overall["latency_ms"] == {"p50": 105.0, "p95": 111.0, "p99": 111.0}
    assert overall["ttft_ms"] == {"p50": 10.0, "p99": 16.0}
    small = stats["models"]["chat-small"]
    assert small["requests"] == 6
    assert small["latency_ms"]["p50"] == 104.0
    assert set(stats["models"]) == {"chat-small", "chat-large"}


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 99) == 99.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


def test_records_are_committed_in_the_background(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir, commit_interval_ms=10) as ledger:
        for i in range(5):
            ledger.append(record(i))
        deadline = time.monotonic() + 10
        while ledger.count() < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ledger.count() == 5


@pytest.mark.parametrize("fsync", ["always", "interval", "never"])
def test_every_fsync_policy_keeps_every_record(url: str, wal_dir: Path, fsync: str) -> None:
    with Ledger.open(url, wal_dir, fsync=fsync, fsync_interval_ms=5) as ledger:  # type: ignore[arg-type]
        for i in range(50):
            ledger.append(record(i))
    assert stored_count(url) == 50


def test_close_is_idempotent_and_final(store_url: str, wal_dir: Path) -> None:
    ledger = Ledger.open(store_url, wal_dir, commit_interval_ms=NEVER_MS)
    ledger.append(record(1))
    assert (ledger.appended, ledger.all_in_store) == (1, False)
    ledger.close()
    ledger.close()
    assert stored_count(store_url) == 1
    assert (ledger.appended, ledger.all_in_store) == (1, True)  # what `up` says when it stops
    with pytest.raises(LedgerClosed):
        ledger.append(record(2))
    with pytest.raises(LedgerClosed):
        ledger.flush()


def test_one_process_per_wal_directory(url: str, wal_dir: Path) -> None:
    with Ledger.open(url, wal_dir), pytest.raises(LedgerLocked):
        Ledger.open(url, wal_dir)
    Ledger.open(url, wal_dir).close()  # free again once closed


# -- crashes and recovery -----------------------------------------------------------------

CHILD = """
import os, signal, sys, time
from dataclasses import replace
sys.path.insert(0, sys.argv[1])
from inferplane.ledger.service import Ledger
from inferplane.ledger.record import UsageRecord

url, wal_dir, n, flush_at = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ledger = Ledger.open(url, wal_dir, commit_interval_ms=3_600_000, commit_batch=10**9)
for i in range(n):
    ledger.append(UsageRecord(
        id=f"req-{i:06d}", ts=1.7e9 + i, endpoint="/v1/chat/completions", model="m",
        deployment=None, provider=None, prompt_tokens=1, completion_tokens=2, ttft_ms=None,
        latency_ms=3.0, status=200, error_type=None, finish_reason="stop", stream=False,
        engine_seconds=0.0, cost_usd=0.0))
    if i + 1 == flush_at:
        ledger.flush(10)
        time.sleep(0.3)  # the committer goes idle: what follows stays only in the WAL
os.kill(os.getpid(), signal.SIGKILL)
"""


def run_and_kill(tmp_path: Path, url: str, wal_dir: Path, n: int, flush_at: int = 0) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    args = [sys.executable, str(script), str(SRC), url, str(wal_dir), str(n), str(flush_at)]
    done = subprocess.run(args, capture_output=True, timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()


def test_sigkill_loses_nothing_and_recovery_is_exactly_once(
    tmp_path: Path, store_url: str, wal_dir: Path
) -> None:
    run_and_kill(tmp_path, store_url, wal_dir, n=3000, flush_at=1200)
    assert stored_count(store_url) == 1200  # the store had taken only what was flushed
    with Ledger.open(store_url, wal_dir) as ledger:  # recovery replays the rest, once
        assert ledger.count() == 3000
        assert [r.id for r in ledger.tail(1)] == ["req-002999"]
    with Ledger.open(store_url, wal_dir) as ledger:
        assert ledger.count() == 3000


LOADED_CHILD = """
import os, sys, threading
sys.path.insert(0, sys.argv[1])
from inferplane.ledger.service import Ledger
from inferplane.ledger.record import UsageRecord

ledger = Ledger.open(sys.argv[2], sys.argv[3], commit_interval_ms=5, commit_batch=50)

def serve(t):
    for i in range(10**9):
        rid = f"t{t}-{i}"
        ledger.append(UsageRecord(
            id=rid, ts=1.7e9 + i, endpoint="/v1/chat/completions", model="m",
            deployment=None, provider=None, prompt_tokens=1, completion_tokens=2, ttft_ms=None,
            latency_ms=3.0, status=200, error_type=None, finish_reason="stop", stream=False,
            engine_seconds=0.0, cost_usd=0.0))
        os.write(1, (rid + "\\n").encode())  # the client's complete response

for t in range(4):
    threading.Thread(target=serve, args=(t,), daemon=True).start()
threading.Event().wait()
"""


def test_sigkill_under_load_keeps_every_acknowledged_record(
    tmp_path: Path, store_url: str, wal_dir: Path
) -> None:
    script = tmp_path / "loaded.py"
    script.write_text(LOADED_CHILD)
    args = [sys.executable, str(script), str(SRC), store_url, str(wal_dir)]
    with (tmp_path / "stderr").open("wb") as errors:
        child = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errors)
        assert child.stdout is not None
        acknowledged: list[bytes] = []
        for line in child.stdout:  # kill it mid-stream, committer and all
            acknowledged.append(line.strip())
            if len(acknowledged) == 3000:
                child.kill()
                break
        acknowledged += [line.strip() for line in child.stdout]  # acks sent before it died
        assert child.wait(timeout=30) == -signal.SIGKILL, (tmp_path / "stderr").read_text()
    with Ledger.open(store_url, wal_dir) as ledger:
        missing = [rid for rid in acknowledged if ledger.get(rid.decode()) is None]
        assert missing == []
        assert ledger.count() >= len(acknowledged)


def test_torn_final_line_after_a_crash_is_ignored(
    tmp_path: Path, store_url: str, wal_dir: Path
) -> None:
    run_and_kill(tmp_path, store_url, wal_dir, n=100)
    last = wal_dir / segment_name(segment_numbers(wal_dir)[-1])
    with last.open("ab") as f:
        f.write(encode(record(999))[:40])  # a write cut short by the crash
    with Ledger.open(store_url, wal_dir) as ledger:
        assert ledger.count() == 100
        assert ledger.get("req-000999") is None
        ledger.append(record(1000))  # goes to a fresh segment, not after the torn bytes
        ledger.flush(10)
        assert ledger.count() == 101


def test_replay_is_idempotent(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir) as ledger:
        for i in range(20):
            ledger.append(record(i))
    engine = make_engine(store_url)
    with engine.begin() as connection:
        connection.execute(delete(ledger_checkpoint))  # as if the checkpoint had never moved
    engine.dispose()
    with Ledger.open(store_url, wal_dir) as ledger:
        assert ledger.count() == 20
    store = Store.open(store_url)
    rows = [record(i).to_dict() for i in (1, 2, 2, 3)]
    store.commit(rows, "another-wal", (1, 0))
    assert store.count() == 20
    assert store.checkpoint("another-wal") == (1, 0)
    store.close()


def test_segments_rotate_and_committed_ones_are_deleted(url: str, wal_dir: Path) -> None:
    ledger = Ledger.open(url, wal_dir, commit_interval_ms=NEVER_MS, segment_bytes=2048)
    for i in range(100):
        ledger.append(record(i))
    assert len(segment_numbers(wal_dir)) > 10
    line = len(encode(record(99)))  # a segment may pass its size by one line, no more
    assert all(
        (wal_dir / segment_name(n)).stat().st_size < 2048 + line for n in segment_numbers(wal_dir)
    )
    ledger.flush(10)
    active = segment_numbers(wal_dir)[-1]
    assert segment_numbers(wal_dir) == [active]  # only the active segment is left
    assert ledger.count() == 100
    ledger.close()


def test_concurrent_appends(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir, commit_batch=300, segment_bytes=64 * 1024) as ledger:

        def writer(t: int) -> None:
            for i in range(500):
                ledger.append(record(t * 1000 + i, id=f"t{t}-{i}"))

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        ledger.flush(30)
        assert ledger.count() == 4000
    assert stored_count(store_url) == 4000


# -- the store going away -----------------------------------------------------------------


def hold_exclusive_lock(db: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(db, isolation_level=None)
    connection.execute("BEGIN EXCLUSIVE")
    return connection


def test_locked_store_is_retried_without_loss(
    tmp_path: Path, wal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/locked.db?timeout=0.05"
    with Ledger.open(url, wal_dir, commit_interval_ms=10) as ledger:
        lock = hold_exclusive_lock(tmp_path / "locked.db")
        with caplog.at_level(logging.WARNING, logger="inferplane.ledger"):
            for i in range(50):
                ledger.append(record(i))
            with pytest.raises(TimeoutError):
                ledger.flush(timeout=0.5)
        assert any("unavailable" in r.getMessage() for r in caplog.records)
        lock.execute("ROLLBACK")
        lock.close()
        ledger.flush(timeout=20)
        assert ledger.count() == 50


def test_close_while_the_store_is_locked_keeps_records_for_the_next_open(
    tmp_path: Path, wal_dir: Path
) -> None:
    url = f"sqlite:///{tmp_path}/locked.db?timeout=0.05"
    ledger = Ledger.open(url, wal_dir, commit_interval_ms=NEVER_MS)
    lock = hold_exclusive_lock(tmp_path / "locked.db")
    for i in range(30):
        ledger.append(record(i))
    ledger.close()  # the last commit fails: the records stay in the WAL
    assert (ledger.appended, ledger.all_in_store) == (30, False)
    lock.execute("ROLLBACK")
    lock.close()
    assert stored_count(url) == 0
    with Ledger.open(url, wal_dir) as reopened:
        assert reopened.count() == 30


def test_a_record_the_store_refuses_is_set_aside(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir, commit_interval_ms=NEVER_MS) as ledger:
        ledger.append(record(1))
        ledger.append(record(2, latency_ms=None))  # NOT NULL: refused by the database
        ledger.append(record(3))
        ledger.flush(10)
        assert [r.id for r in ledger.tail(5)] == ["req-000001", "req-000003"]
    rejected = (wal_dir / "rejected.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in rejected] == ["req-000002"]


# -- the store itself, on each database ---------------------------------------------------


def test_migrations_build_the_tables_the_store_describes(store_url: str) -> None:
    engine = make_engine(store_url)
    try:
        migrate(engine)
        migrate(engine)  # at the newest already: nothing to do
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={
                "compare_type": True,
                "compare_server_default": True,
                # other parts of Inferplane keep tables of their own in the database
                "include_name": lambda name, kind, _parents: (
                    kind != "table" or name in metadata.tables),
            })
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


def test_records_are_streamed_in_batches_oldest_first(store_url: str) -> None:
    n = 2 * RECORDS_BATCH + 10  # three fetches
    store = Store.open(store_url)
    try:
        rows = [record(i).to_dict() for i in range(n)]
        for start in range(0, n, 4000):
            store.commit(rows[start:start + 4000][::-1], "wal", (1, start))  # newest first
        streamed = store.records(since=record(5).ts, until=record(n - 1).ts, columns=["id", "ts"])
        assert dict(next(streamed)) == {"id": "req-000005", "ts": record(5).ts}
        assert next(streamed)["id"] == "req-000006"
        if store_url.startswith("postgresql"):  # the rest waits on the server, not in memory
            assert fetching_queries(store_url) == [f"FETCH FORWARD {RECORDS_BATCH}"]
        assert [r["id"] for r in streamed] == [f"req-{i:06d}" for i in range(7, n - 1)]
        assert [dict(r) for r in store.records(since=record(n - 1).ts)] == [rows[-1]]
        assert list(store.records(until=record(0).ts)) == []
        assert store.count() == n
        assert store.checkpoint("wal") == (1, 8000)
    finally:
        store.close()


def fetching_queries(url: str) -> list[str]:
    """The start of each query that other sessions on ``url``'s database run or ran last."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)
                         ) as connection:
        rows = connection.execute(
            "SELECT query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
    return [" ".join(str(row[0]).split()[:3]) for row in rows]


def test_text_with_nul_characters_is_stored(store_url: str, wal_dir: Path) -> None:
    with Ledger.open(store_url, wal_dir, commit_interval_ms=NEVER_MS) as ledger:
        ledger.append(record(1, model="chat\x00small", status=404))  # a client's model name
        ledger.append(record(2))
        ledger.flush(10)
        stored = ledger.get("req-000001")
        assert ledger.count() == 2
    assert stored is not None and stored.status == 404
    # PostgreSQL's text cannot hold NUL: it becomes U+FFFD, the replacement character
    nul = "\x00" if store_url.startswith("sqlite") else "\ufffd"
    assert stored.model == f"chat{nul}small"
    assert not (wal_dir / "rejected.jsonl").exists()


# -- PostgreSQL only ----------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_a_postgresql_url_without_a_driver_uses_psycopg(postgres_db: str, scheme: str) -> None:
    plain = postgres_db.replace("postgresql+psycopg://", f"{scheme}://")
    store = Store.open(plain)
    try:
        store.commit([record(1).to_dict()], "wal", (1, 1))
        assert store.url == postgres_db
        assert store.get("req-000001") == record(1)
    finally:
        store.close()


STARTING_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from inferplane.ledger.store import Store

print("ready", flush=True)
sys.stdin.readline()  # all together now
Store.open(sys.argv[2]).close()
"""


def run_together(script: Path, database: str, n: int) -> list[tuple[bytes, bytes]]:
    """``n`` processes of ``script`` (given the source path and ``database``), each let go at
    the same moment once all print ``ready``; their outputs, once each exited 0."""
    children = [
        subprocess.Popen([sys.executable, str(script), str(SRC), database],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(n)
    ]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60) for child in children]
    errors = "\n".join(err.decode() for _out, err in outputs)
    assert [child.returncode for child in children] == [0] * n, errors
    return outputs


def test_gateways_starting_together_migrate_a_new_database_once(
    tmp_path: Path, postgres_db: str
) -> None:
    script = tmp_path / "starting.py"
    script.write_text(STARTING_CHILD)
    run_together(script, postgres_db, 4)
    assert stored_count(postgres_db) == 0


def test_postgres_going_away_is_retried_without_loss(
    postgres_db: str, wal_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Ledger.open(postgres_db, wal_dir, commit_interval_ms=10) as ledger:
        with refusing_connections(postgres_db):
            with caplog.at_level(logging.WARNING, logger="inferplane.ledger"):
                for i in range(50):
                    ledger.append(record(i))
                with pytest.raises(TimeoutError):
                    ledger.flush(timeout=0.5)
            assert any("unavailable" in r.getMessage() for r in caplog.records)
        ledger.flush(timeout=20)
        assert ledger.count() == 50


def test_close_while_postgres_is_away_keeps_records_for_the_next_open(
    postgres_db: str, wal_dir: Path
) -> None:
    ledger = Ledger.open(postgres_db, wal_dir, commit_interval_ms=NEVER_MS)
    with refusing_connections(postgres_db):
        for i in range(30):
            ledger.append(record(i))
        ledger.close()  # the last commit fails: the records stay in the WAL
    assert stored_count(postgres_db) == 0
    with Ledger.open(postgres_db, wal_dir) as reopened:
        assert reopened.count() == 30


# -- the CLI ------------------------------------------------------------------------------


def test_cli_tail_and_stats_see_records_only_in_the_wal(
    tmp_path: Path, store_url: str, wal_dir: Path
) -> None:
    run_and_kill(tmp_path, store_url, wal_dir, n=7)
    config = tmp_path / "inferplane.yaml"
    config.write_text(f'store: {{url: "{store_url}"}}\nledger: {{dir: "{wal_dir}"}}\n')
    runner = CliRunner()
    result = runner.invoke(ledger_cmd.app, ["tail", "-n", "3", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    ids = [json.loads(line)["id"] for line in result.output.splitlines()]
    assert ids == ["req-000004", "req-000005", "req-000006"]
    result = runner.invoke(ledger_cmd.app, ["stats", "--json", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overall"]["requests"] == 7
    result = runner.invoke(ledger_cmd.app, ["stats", "--config", str(config)])
    assert result.exit_code == 0 and "usage by model" in result.output
    with Ledger.open(store_url, wal_dir):  # a running gateway holds the WAL: read the store
        result = runner.invoke(ledger_cmd.app, ["tail", "--config", str(config)])
    assert result.exit_code == 0 and "last 7 requests" in result.output


def test_append_writes_one_line_per_record(url: str, wal_dir: Path) -> None:
    with Ledger.open(url, wal_dir, commit_interval_ms=NEVER_MS) as ledger:
        ledger.append(record(1))
        segment = wal_dir / segment_name(segment_numbers(wal_dir)[-1])
        assert segment.read_bytes() == encode(record(1))
        assert os.stat(segment).st_size == len(encode(record(1)))
