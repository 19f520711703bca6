"""``inferplane report`` as a user runs it, against records in a real SQLite ledger."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger

from .gateway_proc import BIN

START = datetime(2024, 3, 10, 22, tzinfo=UTC).timestamp()  # two hours before a UTC midnight
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def record(i: int, **changes: Any) -> UsageRecord:
    base = UsageRecord(
        id=f"req-{i:04d}", ts=START + 300.0 * i, endpoint="/v1/chat/completions",
        model="chat" if i % 3 else "default", deployment=("local", "oa-mini", "claude")[i % 3],
        provider=("llamacpp", "openai", "anthropic")[i % 3],
        prompt_tokens=100 + i, completion_tokens=50 + 2 * i, ttft_ms=20.0, latency_ms=200.0,
        status=502 if i % 7 == 0 else 200, error_type=None, finish_reason="stop", stream=False,
        engine_seconds=0.1, cost_usd=0.0001 * (i % 5 + 1), cached_tokens=i % 4,
        reasoning_tokens=i % 2, region=("local", "us", None)[i % 3],
        energy_j=None if i % 11 == 0 else 10.0 + i,
        energy_method=("measured", "estimated", "modelled")[i % 3], co2_g=0.01 * i,
        water_l=None if i % 5 == 0 else 0.001 * i, tenant=("acme", "beta", None)[i % 3],
    )
    return replace(base, **changes)


RECORDS = [record(i) for i in range(40)]  # 22:00 to 01:15 the next day, UTC


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("report")
    url, wal = f"sqlite:///{root}/db/inferplane.db", root / "wal"
    with Ledger.open(url, wal) as ledger:
        for r in RECORDS:
            ledger.append(r)
    path = root / "inferplane.yaml"
    path.write_text(f'store: {{url: "{url}"}}\nledger: {{dir: "{wal}"}}\n')
    return path


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    result = subprocess.run([str(BIN / "inferplane"), "report", *args], capture_output=True,
                            text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_json_totals_are_the_sums_of_the_records(config: Path) -> None:
    data = json.loads(run("--json", "--by", "tenant", "--config", str(config)).stdout)
    assert data["by"] == "tenant" and data["since"] is None and data["until"] is None
    totals = data["totals"]
    assert totals["requests"] == len(RECORDS)
    assert totals["errors"] == sum(r.status >= 400 for r in RECORDS)
    for name in ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens"):
        assert totals[name] == sum(getattr(r, name) for r in RECORDS), name
    assert totals["total_tokens"] == totals["prompt_tokens"] + totals["completion_tokens"]
    for name in ("cost_usd", "energy_j", "co2_g", "water_l"):
        assert totals[name] == pytest.approx(sum(getattr(r, name) or 0.0 for r in RECORDS))
    assert totals["energy_unknown_requests"] == sum(r.energy_j is None for r in RECORDS)
    by_method = totals["energy_j_by_method"]
    assert by_method["measured"] == pytest.approx(
        sum(r.energy_j or 0.0 for r in RECORDS if r.energy_method == "measured"))
    assert sum(by_method.values()) == pytest.approx(totals["energy_j"])
    assert totals["cost_usd_per_mtok"] == pytest.approx(
        totals["cost_usd"] * 1e6 / totals["total_tokens"])
    assert [g["key"] for g in data["groups"]] == ["acme", "beta", None]
    assert sum(g["requests"] for g in data["groups"]) == len(RECORDS)
    assert all(isinstance(g["cost_usd"], float) for g in data["groups"])


def test_day_groups_and_the_window_are_filtered_by_the_database(config: Path) -> None:
    data = json.loads(run("--json", "--by", "day", "-c", str(config)).stdout)
    days = {g["key"]: g["requests"] for g in data["groups"]}
    assert days == {"2024-03-10": 24, "2024-03-11": 16}  # 22:00..23:55, then 00:00..01:15
    window = run("--json", "--since", "2024-03-11", "--until", "2024-03-11T01:00:00Z",
                 "-c", str(config))
    data = json.loads(window.stdout)
    inside = [r for r in RECORDS if START + 7200 <= r.ts < START + 10800]
    assert data["totals"]["requests"] == len(inside) == 12
    assert data["totals"]["cost_usd"] == pytest.approx(sum(r.cost_usd for r in inside))
    assert data["since"] == "2024-03-11T00:00:00+00:00"


def test_csv_has_a_row_per_group_and_a_total_row(config: Path) -> None:
    out = run("--csv", "-", "--by", "deployment", "-c", str(config)).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["deployment"] for row in rows] == ["claude", "local", "oa-mini", "TOTAL"]
    assert int(rows[-1]["requests"]) == len(RECORDS)
    assert float(rows[-1]["cost_usd"]) == pytest.approx(sum(r.cost_usd for r in RECORDS))
    assert sum(int(row["requests"]) for row in rows[:-1]) == len(RECORDS)


def test_png_writes_two_valid_images(config: Path, tmp_path: Path) -> None:
    result = run("--png", str(tmp_path / "plots"), "-c", str(config))
    for name in ("cost-energy-over-time.png", "cost-per-mtok-by-deployment.png"):
        data = (tmp_path / "plots" / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 10_000, name
        assert name in result.stderr


def test_table_shows_groups_totals_and_units(config: Path) -> None:
    out = run("--by", "provider", "-c", str(config)).stdout
    assert "cost by provider" in out and "energy, carbon and water by provider" in out
    for word in ("anthropic", "llamacpp", "openai", "total", "USD", "kWh", "CO2", "water"):
        assert word in out, word
    total_line = next(line for line in out.splitlines() if line.strip().startswith("total"))
    assert f"{len(RECORDS):,}" in total_line
    assert "requests without an energy figure" in out


def test_an_empty_ledger_says_so_and_exits_0(tmp_path: Path) -> None:
    config = tmp_path / "inferplane.yaml"
    config.write_text(f'store: {{url: "sqlite:///{tmp_path}/db.sqlite"}}\n'
                      f'ledger: {{dir: "{tmp_path}/wal"}}\n')
    out = run("-c", str(config)).stdout
    assert out.strip() == "no usage records in the ledger"
    data = json.loads(run("--json", "-c", str(config)).stdout)
    assert data["groups"] == [] and data["totals"]["requests"] == 0
    assert data["totals"]["cost_usd"] == 0.0 and data["totals"]["energy_j"] == 0.0
    result = run("--png", str(tmp_path / "plots"), "-c", str(config))
    assert "no plots written" in result.stderr and not (tmp_path / "plots").exists()


def test_a_bad_time_is_refused_clearly(config: Path) -> None:
    result = subprocess.run([str(BIN / "inferplane"), "report", "--since", "last week",
                             "-c", str(config)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "Invalid value for --since: 'last week' is neither" in result.stderr
    assert "Traceback" not in result.stderr
