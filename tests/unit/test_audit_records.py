"""`audit verify` over the usage records, on SQLite and PostgreSQL: each ``ledger.batch``
entry's digest recomputed from the rows in ``usage_records`` now; a record edited, deleted or
added by hand is found, the batch entry and the record named; an untouched ledger is clean."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from inferplane.audit.entries import batch_data
from inferplane.audit.log import AuditLog
from inferplane.audit.records import check_batch
from inferplane.cli.main import app
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import FLOAT_COLUMNS, Store, usage_records
from inferplane.tenancy.records import Tenant
from inferplane.tenancy.store import TenancyStore

runner = CliRunner()


def record(record_id: str, ts: float, cost: float = 0.25) -> dict[str, object]:
    return UsageRecord(id=record_id, ts=ts, endpoint="/v1/chat/completions", model="chat\x00m",
                       deployment="up", provider="openai", prompt_tokens=12,
                       completion_tokens=3, ttft_ms=4.5, latency_ms=9.0, status=200,
                       error_type=None, finish_reason="stop", stream=True,
                       engine_seconds=0.0, cost_usd=cost, tenant="acme",
                       attempts='[{"deployment":"up"}]', energy_j=1.0).to_dict()


@pytest.fixture
def ledger(store_url: str, tmp_path: Path) -> Iterator[tuple[str, AuditLog]]:
    """Three batches of three records (and a tenancy change between them); the batch entries
    are 0, 2 and 3."""
    store = Store.open(store_url)
    tenancy = TenancyStore.open(store_url)
    for b in range(3):
        store.commit([record(f"b{b}-r{i}", 100.0 + 3 * b + i, cost=1 + i) for i in range(3)],
                     "wal-1", (1, 100 * (b + 1)))
        if b == 0:
            tenancy.create_tenant(Tenant("acme"), "cli:ana")
    tenancy.close()
    store.close()
    log = AuditLog.open(store_url, key_file=tmp_path / "audit.key")
    yield store_url, log
    log.close()


def _change(url: str, statement: sa.Executable) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as c:
        c.execute(statement)
    engine.dispose()


def _verify(log: AuditLog) -> tuple[bool, int | None, list[str], list[str]]:
    report = log.verify(log.checkpoint(), [log.verifier])  # type: ignore[list-item]
    return report.ok, report.first_bad, report.records, report.problems


def test_an_untouched_ledger_verifies(ledger: tuple[str, AuditLog]) -> None:
    _, log = ledger
    assert _verify(log) == (True, None, [], [])


def test_an_edited_cost_names_the_batch_and_the_record(ledger: tuple[str, AuditLog]) -> None:
    url, log = ledger
    t = usage_records
    _change(url, sa.update(t).where(t.c.id == "b2-r1").values(cost_usd=0.01))
    ok, entry, records, problems = _verify(log)
    assert (ok, entry, records) == (False, 3, ["b2-r1"])
    assert "ledger batch entry 3" in problems[0] and "b2-r1 edited" in problems[0]


def test_a_deleted_record_is_named(ledger: tuple[str, AuditLog]) -> None:
    url, log = ledger
    _change(url, sa.delete(usage_records).where(usage_records.c.id == "b0-r2"))
    ok, entry, records, problems = _verify(log)
    assert (ok, entry, records) == (False, 0, ["b0-r2"])
    assert "b0-r2 deleted" in problems[0]


def test_a_record_added_by_hand_is_named(ledger: tuple[str, AuditLog]) -> None:
    url, log = ledger
    _change(url, sa.insert(usage_records).values({**record("forged", 104.5), "model": "chat"}))
    ok, entry, records, problems = _verify(log)
    assert (ok, entry, records) == (False, 2, ["forged"])
    assert "added to usage_records by hand" in problems[0]


def test_the_cli_reports_the_record(ledger: tuple[str, AuditLog], tmp_path: Path) -> None:
    url, _ = ledger
    config = tmp_path / "inferplane.yaml"
    config.write_text(f"store: {{url: '{url}'}}\naudit: {{key_file: '{tmp_path}/audit.key'}}\n")
    clean = runner.invoke(app, ["audit", "verify", "--config", str(config)])
    assert clean.exit_code == 0, clean.output
    _change(url, sa.update(usage_records).where(usage_records.c.id == "b1-r0")
            .values(tenant="globex"))
    result = runner.invoke(app, ["audit", "verify", "--json", "--config", str(config)])
    assert result.exit_code == 1
    found = orjson.loads(result.output)
    assert found["first_bad_entry"] == 2 and found["records"] == ["b1-r0"]


def test_an_entry_without_per_record_digests_names_every_suspect() -> None:
    rows = [record(f"r{i}", 1.0 + i) for i in range(3)]
    data = batch_data(rows, FLOAT_COLUMNS, wal_id="w", position=(1, 1))
    del data["digests"]
    found = {str(r["id"]): r for r in rows}
    assert check_batch(5, data, found, FLOAT_COLUMNS) is None
    found["r1"] = {**rows[1], "cost_usd": 9.0}
    finding = check_batch(5, data, found, FLOAT_COLUMNS)
    assert finding is not None and not finding.exact and finding.changed == ("r0", "r1", "r2")
    assert "one or more of records r0, r1, r2" in finding.message()
