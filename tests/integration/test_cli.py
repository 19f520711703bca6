"""The ``inferplane`` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from .gateway_proc import BIN, GatewayProc

BAD = "server: {port: 99999}\nmodels:\n  - name: default\ndeployments: []\n"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "inferplane"), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=120)


def test_up_refuses_an_invalid_config_with_locations(tmp_path: Path) -> None:
    bad = tmp_path / "inferplane.yaml"
    bad.write_text(BAD)
    for result in (run("up", "--config", str(bad)), run("config", "check", str(bad)),
                   run("up", cwd=tmp_path)):  # ./inferplane.yaml is picked up by default
        assert result.returncode == 1
        out = result.stdout + result.stderr
        assert "inferplane.yaml:1:" in out and "65535" in out
        assert "Traceback" not in out


def test_up_refuses_a_deployment_whose_key_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "inferplane.yaml"
    config.write_text(
        f"store: {{url: 'sqlite:///{tmp_path}/x.db'}}\nledger: {{dir: '{tmp_path}/wal'}}\n"
        "models: [{name: chat}]\ndeployments:\n"
        "  - {name: oa, model: chat, provider: openai, base_url: 'http://127.0.0.1:9/v1',\n"
        "     api_key: 'env:INFERPLANE_TEST_MISSING_KEY'}\n")
    result = run("up", "--config", str(config))
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "INFERPLANE_TEST_MISSING_KEY is not set" in out and "Traceback" not in out


def test_up_refuses_an_unknown_intensity_source(tmp_path: Path) -> None:
    config = tmp_path / "inferplane.yaml"
    config.write_text(f"store: {{url: 'sqlite:///{tmp_path}/x.db'}}\n"
                      "accounting: {intensity_source: no-such-plugin}\n")
    result = run("up", "--config", str(config))
    out = result.stdout + result.stderr
    assert result.returncode == 1
    assert "unknown intensity source 'no-such-plugin'" in out and "Traceback" not in out


def test_ledger_tail_and_stats_read_the_gateways_records(gateway: GatewayProc) -> None:
    import httpx

    r = httpx.post(gateway.url + "/v1/completions", timeout=60,
                   json={"model": "default", "prompt": "Hello", "max_tokens": 3})
    request_id = r.json()["id"]
    gateway.ledger_row(request_id)
    tail = run("ledger", "tail", "-n", "50", "--json", "--config", str(gateway.config))
    assert tail.returncode == 0, tail.stderr
    records = [json.loads(line) for line in tail.stdout.splitlines() if line.strip()]
    assert request_id in {rec["id"] for rec in records}
    stats = run("ledger", "stats", "--json", "--config", str(gateway.config))
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)
