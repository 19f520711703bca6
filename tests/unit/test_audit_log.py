"""The audit log in SQLite and PostgreSQL: tenancy changes and ledger group commits appended in
their own transactions, exactly once and in order; proofs from the stored tree that verify;
and tampering with the rows (edit, delete, swap, truncate, a consistent forgery without the
key) detected by `inferplane audit verify`, with the entry named."""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from inferplane.audit import store
from inferplane.audit.checkpoint import Checkpoint, parse, sign
from inferplane.audit.entries import decode, encode
from inferplane.audit.log import AuditLog
from inferplane.audit.merkle import EMPTY_ROOT, leaf_hash, verify_consistency, verify_inclusion
from inferplane.audit.signer import Signer
from inferplane.cli.main import app
from inferplane.errors import InvalidRequest
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store
from inferplane.tenancy.records import ApiKey, Tenant
from inferplane.tenancy.store import TenancyStore

SRC = Path(__file__).resolve().parents[2] / "src"
runner = CliRunner()


@pytest.fixture
def url(store_url: str) -> str:
    return store_url


@pytest.fixture
def log(url: str, tmp_path: Path) -> Iterator[AuditLog]:
    opened = AuditLog.open(url, key_file=tmp_path / "keys" / "audit.key")
    yield opened
    opened.close()


def _b64(value: str) -> bytes:
    return base64.b64decode(value)


def _changes(url: str, log: AuditLog, n: int) -> list[int]:
    """``n`` rounds of real changes (tenant, key, limits, revocation) with a checkpoint after
    each entry; the tree sizes checkpointed."""
    tenancy = TenancyStore.open(url)
    sizes = []
    try:
        for i in range(n):
            tenancy.create_tenant(Tenant(f"t{i}", rpm=10), "cli:ana")
            sizes.append(log.checkpoint().checkpoint.size)
            key, _ = tenancy.create_key(ApiKey(id="", tenant=f"t{i}"), "key:admin")
            sizes.append(log.checkpoint().checkpoint.size)
            tenancy.update_tenant(f"t{i}", {"rpm": 20 + i}, "cli:ana")
            sizes.append(log.checkpoint().checkpoint.size)
            tenancy.revoke_key(key.id, "cli:bob")
            sizes.append(log.checkpoint().checkpoint.size)
    finally:
        tenancy.close()
    return sizes


def test_changes_are_appended_once_in_order_and_every_proof_verifies(url: str,
                                                                      log: AuditLog) -> None:
    _changes(url, log, 3)
    kinds = [e["kind"] for e in log.entries(0, 100)]
    assert kinds == ["tenant.create", "key.create", "tenant.update", "key.revoke"] * 3
    tenancy = TenancyStore.open(url)
    events = list(reversed(tenancy.events(100)))
    tenancy.close()
    entries = log.entries(0, 100)
    assert [e["data"]["event"] for e in entries] == [e["id"] for e in events]
    assert [e["actor"] for e in entries[:4]] == ["cli:ana", "key:admin", "cli:ana", "cli:bob"]
    size = log.head().size
    for first in range(1, size + 1):
        root = log.root(first)
        for index in range(first):
            proof = log.inclusion(index, first)
            assert verify_inclusion(index, first, _b64(proof["leaf_hash"]),
                                    [_b64(p) for p in proof["inclusion_path"]], root)
        proof = log.consistency(first, size)
        assert verify_consistency(first, size, root, log.root(size),
                                  [_b64(p) for p in proof["consistency_path"]])
    with pytest.raises(InvalidRequest):
        log.inclusion(size, size)
    with pytest.raises(InvalidRequest):
        log.consistency(1, size + 1)


def test_checkpoints_issued_at_once_for_one_size_are_kept_once(url: str, log: AuditLog,
                                                                 tmp_path: Path) -> None:
    """The periodic issuer and a client's request sign the same tree at the same moment (seen
    as a 500 under load, when both inserted the checkpoint): both get it, it is kept once."""
    import threading

    log.append("tenant.create", {"name": "t"}, "cli:ana")
    logs = [AuditLog.open(url, key_file=tmp_path / "keys" / "audit.key") for _ in range(4)]
    start = threading.Barrier(len(logs))
    notes: list[str] = []
    errors: list[BaseException] = []

    def issue(other: AuditLog) -> None:
        start.wait()
        try:
            notes.extend(other.checkpoint().text for _ in range(5))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=issue, args=(other,)) for other in logs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for other in logs:
        other.close()
    assert errors == [] and len(set(notes)) == 1 and len(notes) == 20
    with _engine(url).connect() as c:
        assert store.read_checkpoints(c) == notes[:1]


def test_a_failed_change_appends_nothing(url: str, log: AuditLog) -> None:
    tenancy = TenancyStore.open(url)
    tenancy.create_tenant(Tenant("acme"), "cli:ana")
    with pytest.raises(Exception, match="already exists"):
        tenancy.create_tenant(Tenant("acme"), "cli:ana")
    tenancy.close()
    assert log.head().size == 1


def test_a_ledger_group_commit_appends_its_digest(url: str, log: AuditLog) -> None:
    ledger = Store.open(url)
    rows = [record(f"r{i}") for i in range(3)]
    ledger.commit(rows, "wal-1", (1, 300))
    ledger.commit([], "wal-1", (1, 300))  # nothing moved in: no entry
    ledger.commit([], "wal-1", (1, 400), covered=rows[:1])  # the rejected path's commit
    ledger.close()
    batches = log.entries(0, 10)
    assert [b["kind"] for b in batches] == ["ledger.batch", "ledger.batch"]
    assert batches[0]["data"]["ids"] == ["r0", "r1", "r2"]
    assert batches[0]["data"]["count"] == 3 and batches[0]["data"]["offset"] == 300
    assert batches[1]["data"]["ids"] == ["r0"]


def record(record_id: str) -> dict[str, object]:
    return UsageRecord(id=record_id, ts=1.0, endpoint="/v1/completions", model="m",
                       deployment=None, provider=None, prompt_tokens=1, completion_tokens=1,
                       ttft_ms=None, latency_ms=1.0, status=200, error_type=None,
                       finish_reason=None, stream=False, engine_seconds=0.0,
                       cost_usd=0.0).to_dict()


# -- tampering ---------------------------------------------------------------------------------


def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def _row(c: sa.Connection, index: int) -> sa.RowMapping:
    t = store.audit_entries
    return c.execute(sa.select(t).where(t.c.idx == index)).mappings().one()


def _set(c: sa.Connection, index: int, **values: object) -> None:
    t = store.audit_entries
    c.execute(sa.update(t).where(t.c.idx == index).values(**values))


def _edit_content(c: sa.Connection, k: int) -> None:
    raw = bytes(_row(c, k)["leaf_input"]).replace(b'"cli:bob"', b'"cli:eve"')
    _set(c, k, leaf_input=raw)


def _edit_with_hash(c: sa.Connection, k: int) -> None:
    raw = bytes(_row(c, k)["leaf_input"]).replace(b'"rpm":20', b'"rpm":99')
    _set(c, k, leaf_input=raw, leaf_hash=leaf_hash(raw))


def _delete(c: sa.Connection, k: int) -> None:
    c.execute(sa.delete(store.audit_entries).where(store.audit_entries.c.idx == k))


def _swap(c: sa.Connection, k: int) -> None:
    a, b = dict(_row(c, k)), dict(_row(c, k + 2))
    for index, row in ((k, b), (k + 2, a)):
        _set(c, index, leaf_input=row["leaf_input"], leaf_hash=row["leaf_hash"],
             kind=row["kind"], ts=row["ts"])


def _truncate(c: sa.Connection, k: int) -> None:
    c.execute(sa.delete(store.audit_entries).where(store.audit_entries.c.idx >= k))
    c.execute(sa.delete(store.audit_nodes))
    c.execute(sa.delete(store.audit_checkpoints).where(store.audit_checkpoints.c.size > k))
    _rebuild(c, [], start=k)  # a head that agrees with what is left


def _rebuild(c: sa.Connection, entries: list[bytes], start: int = 0) -> None:
    """Re-append ``entries`` (decoded, ``prev`` recomputed) after the first ``start``: what a
    forger with database access and this library, but without the key, can do."""
    kept = [bytes(r) for r in c.scalars(sa.select(store.audit_entries.c.leaf_input).where(
        store.audit_entries.c.idx < start).order_by(store.audit_entries.c.idx))]
    entries = [*kept, *entries] if entries else kept
    c.execute(sa.delete(store.audit_entries))
    c.execute(sa.delete(store.audit_nodes))
    c.execute(sa.update(store.audit_tree_head).values(size=0, root_hash=EMPTY_ROOT,
                                                      frontier=b""))
    for raw in entries:
        e = decode(raw)
        store.append(c, e.kind, e.data, e.actor, ts=e.ts)


def _forge(c: sa.Connection, k: int) -> None:
    t = store.audit_entries
    rest = [bytes(r) for r in c.scalars(sa.select(t.c.leaf_input).where(t.c.idx >= k)
                                         .order_by(t.c.idx))]
    first = decode(rest[0])
    rest[0] = encode(first.__class__(first.index, first.ts, first.kind, "cli:eve", first.prev,
                                     first.data))
    _rebuild(c, rest, start=k)
    # ... and signs the new tree with a key of its own, under the log's name.
    head = store.read_head(c)
    origin = parse(store.read_checkpoints(c)[0]).checkpoint.origin
    note = sign(Checkpoint(origin, head.size, head.root), [Signer.generate(origin)])
    store.save_checkpoint(c, head.size, "f0f0f0f0", head.root, note.text)


TAMPERING = {  # how, the entry it touches, the entry named, words of the finding
    "edit": (_edit_content, 3, 3, "was edited"),
    "edit-with-hash": (_edit_with_hash, 2, 2, "entry 2 was changed"),
    "delete": (_delete, 5, 5, "entry 5 is missing"),
    "swap": (_swap, 4, 4, "swapped"),
    "truncate": (_truncate, 9, 9, "truncated"),
    "forgery": (_forge, 6, 6, "entry 6 was changed"),
    "forgery-of-the-last": (_forge, 11, 11, "entry 11 was changed"),
}


@pytest.mark.parametrize("how", TAMPERING)
def test_tampering_is_detected_and_the_entry_named(url: str, log: AuditLog, tmp_path: Path,
                                                   how: str) -> None:
    sizes = _changes(url, log, 3)
    saved = tmp_path / "saved.checkpoint"
    saved.write_text(log.checkpoint().text)
    config = tmp_path / "inferplane.yaml"
    config.write_text(f"store: {{url: '{url}'}}\n"
                      f"audit: {{key_file: '{tmp_path}/keys/audit.key'}}\n")
    before = runner.invoke(app, ["audit", "verify", "--since-checkpoint", str(saved),
                                 "--config", str(config)])
    assert before.exit_code == 0, before.output
    assert "OK: 12 entries" in before.output and f"{len(set(sizes))} signed" in before.output
    tamper, k, named, words = TAMPERING[how]
    engine = _engine(url)
    with engine.begin() as c:
        tamper(c, k)
    engine.dispose()
    report = log.verify(parse(saved.read_text()), [log.verifier])  # type: ignore[list-item]
    assert not report.ok and report.first_bad == named, report.problems
    assert words in report.problems[0] or any(words in p for p in report.problems)
    result = runner.invoke(app, ["audit", "verify", "--since-checkpoint", str(saved),
                                 "--config", str(config)])
    assert result.exit_code == 1
    assert f"FAILED (first entry that differs: {named})" in result.output


def test_a_forgery_that_also_drops_the_signed_checkpoints_is_still_caught(
        url: str, log: AuditLog, tmp_path: Path) -> None:
    _changes(url, log, 2)
    saved = log.checkpoint()
    engine = _engine(url)
    with engine.begin() as c:
        _forge(c, 3)
        c.execute(sa.delete(store.audit_checkpoints).where(
            store.audit_checkpoints.c.key_id != "f0f0f0f0"))
    engine.dispose()
    report = log.verify(saved, [log.verifier])  # type: ignore[list-item]
    assert not report.ok and report.first_bad == 0
    assert any("no valid signature" in p for p in report.problems)
    assert any("first that cannot be trusted" in p for p in report.problems)


# -- several writers ---------------------------------------------------------------------------

WRITER = """
import sys, time
from inferplane.audit.log import AuditLog
from inferplane.ledger.store import Store
from inferplane.tenancy.records import Tenant
from inferplane.tenancy.store import TenancyStore
from tests.unit.test_audit_log import record
url, me, n, start = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
tenancy, ledger, log = TenancyStore.open(url), Store.open(url), AuditLog.open(url)
time.sleep(max(0.0, start - time.time()))
for i in range(n):
    tenancy.create_tenant(Tenant(f"{me}-{i}"), f"cli:{me}")
    log.append("test.event", {"writer": me, "i": i}, actor=f"cli:{me}")
    ledger.commit([record(f"{me}-{i}")], f"wal-{me}", (1, i))
"""


def test_three_writers_at_once_make_one_log_whose_every_proof_verifies(
        postgres_db: str, tmp_path: Path) -> None:
    import time

    n = 25
    AuditLog.open(postgres_db).close()  # migrated once, as `inferplane up --workers` does
    start = time.time() + 2.0
    env = {"PYTHONPATH": f"{SRC}:{SRC.parent}"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, postgres_db, f"w{w}", str(n),
                               str(start)], env=env) for w in range(3)]
    assert [p.wait(120) for p in procs] == [0, 0, 0]
    log = AuditLog.open(postgres_db, key_file=tmp_path / "audit.key")
    try:
        size = log.head().size
        assert size == 3 * n * 3
        entries = [e for s in range(0, size, 1000) for e in log.entries(s, min(s + 1000, size))]
        assert [e["index"] for e in entries] == list(range(size))
        writers = [e["actor"] for e in entries]
        assert len({a for a in writers[:20]}) > 1  # interleaved, not one writer after another
        for w in range(3):  # each writer's own events in its order
            mine = [e["data"]["i"] for e in entries if e["kind"] == "test.event"
                    and e["data"]["writer"] == f"w{w}"]
            assert mine == list(range(n))
        root = log.root(size)
        for index in range(size):
            proof = log.inclusion(index, size)
            assert verify_inclusion(index, size, _b64(proof["leaf_hash"]),
                                    [_b64(p) for p in proof["inclusion_path"]], root)
        for first in range(1, size + 1, 7):
            proof = log.consistency(first, size)
            assert verify_consistency(first, size, log.root(first), root,
                                      [_b64(p) for p in proof["consistency_path"]])
        report = log.verify(log.checkpoint(), [log.verifier])  # type: ignore[list-item]
        assert report.ok and report.size == size, report.problems
    finally:
        log.close()
