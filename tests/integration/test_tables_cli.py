"""The CLI's tables at 80 columns on a terminal, and in a pipe: no value is cut to "…"."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger

from .gateway_proc import BIN, ledger_yaml
from .terminal import run_on_terminal

LONG_MODEL = "claude-haiku-4-5-long-alias"
LONG_DEPLOYMENT = "anthropic-eu-central-1"


def _command(root: Path, name: str) -> list[str]:
    """``inferplane`` and the command's arguments, on a ledger of a few records."""
    config = str(_ledger(root))
    return [str(BIN / "inferplane"), *(arg.format(config=config) for arg in COMMANDS[name])]


def _ledger(root: Path) -> Path:
    """A configuration whose ledger holds a few records with long names."""
    config = root / "inferplane.yaml"
    config.write_text(ledger_yaml(root))
    base = UsageRecord(
        id="r", ts=time.time(), endpoint="/v1/chat/completions", model=LONG_MODEL,
        deployment=LONG_DEPLOYMENT, provider="anthropic", prompt_tokens=1234,
        completion_tokens=400, ttft_ms=55.0, latency_ms=1500.0, status=502,
        error_type="upstream_unavailable", finish_reason=None, stream=False,
        engine_seconds=0.0, cost_usd=0.0000123, tenant="globex-research")
    with Ledger.open(f"sqlite:///{root}/ledger.db", root / "wal") as ledger:
        for i in range(3):
            ledger.append(replace(base, id=f"chatcmpl-{i}", ts=base.ts - i))
    return config


COMMANDS = {  # {config}: the configuration file
    "ledger tail": ["ledger", "tail", "--config", "{config}"],
    "ledger stats": ["ledger", "stats", "--config", "{config}"],
    "report": ["report", "--by", "deployment", "--config", "{config}"],
    "plan": ["plan", "--model", "llama-3.1-70b", "--hardware", "h100,mi300x,tpu-v5e"],
}
WHOLE = {  # values that must appear whole
    "ledger tail": [LONG_MODEL, "upstream_unavailable", "1,500"],
    "ledger stats": [LONG_MODEL, "1,200"],
    "report": [LONG_DEPLOYMENT, "3,702", "0.0000369000"],
    "plan": ["TP1 x1", "mi300x", "tpu-v5e"],
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_table_in_a_pipe_is_printed_whole(tmp_path: Path, name: str) -> None:
    result = subprocess.run(_command(tmp_path, name), capture_output=True, text=True,
                            timeout=120, env={**os.environ, "COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout and "..." not in result.stdout
    for value in WHOLE[name]:
        assert value in result.stdout, result.stdout
    assert "left out" not in result.stdout  # every column


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_table_at_80_columns_keeps_what_fits_uncut(tmp_path: Path, name: str) -> None:
    status, out = run_on_terminal(_command(tmp_path, name), env={"COLUMNS": "80"})
    assert status == 0, out
    assert "…" not in out, out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "left out at 80 columns:" in out, out  # and the note says what is not shown
