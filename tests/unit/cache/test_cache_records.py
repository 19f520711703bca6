"""The cache's ledger fields: read from WAL lines written before they existed, and added up
by reports (and shown by ``inferplane report``)."""

from __future__ import annotations

import orjson
from rich.console import Console

from inferplane.cli.report_cmd import cache_table
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.report import aggregate
from inferplane.ledger.wal import decode, encode


def record(rid: str, model: str, cache: str | None, saved: float = 0.0) -> UsageRecord:
    return UsageRecord(
        id=rid, ts=1_700_000_000.0, endpoint="chat.completions", model=model,
        deployment=None if cache == "hit-exact" else "d", provider=None, prompt_tokens=0,
        completion_tokens=0, ttft_ms=None, latency_ms=1.0, status=200, error_type=None,
        finish_reason="stop", stream=False, engine_seconds=0.0, cost_usd=0.0, cache=cache,
        cache_saved_usd=saved, cache_saved_energy_j=3.6e6 * saved if saved else None,
        cache_saved_co2_g=saved or None)


def test_a_wal_line_from_before_the_cache_fields_reads_with_their_defaults() -> None:
    line = orjson.loads(encode(record("r1", "m", "hit-exact", 0.5)))
    for name in ("cache", "cache_saved_usd", "cache_saved_energy_j", "cache_saved_co2_g"):
        del line[name]
    row = decode(orjson.dumps(line))
    assert row is not None
    assert (row["cache"], row["cache_saved_usd"], row["cache_saved_energy_j"]) == (None, 0.0, None)
    assert UsageRecord.from_dict(row).id == "r1"


def test_reports_count_outcomes_and_add_up_what_hits_saved() -> None:
    rows = [record("1", "m", "miss"), record("2", "m", "hit-exact", 0.25),
            record("3", "m", "hit-exact", 0.5), record("4", "m", "bypass"),
            record("5", "plain", None)]
    report = aggregate(rows, by="model")
    groups = dict(report.grouped("model"))
    m = groups["m"].to_dict()
    assert (m["cache_hits"], m["cache_misses"], m["cache_bypass"]) == (2, 1, 1)
    assert m["cache_hit_rate"] == 2 / 3 and m["cache_saved_usd"] == 0.75
    assert m["cache_saved_energy_j"] == 3.6e6 * 0.75 and m["cache_saved_co2_g"] == 0.75
    assert groups["plain"].to_dict()["cache_hit_rate"] is None
    assert report.totals.cache_hits == 2
    console = Console(width=120, record=True)
    console.print(cache_table(report, "model"))
    text = console.export_text()
    assert "response cache by model" in text and "67%" in text and "plain" not in text
