"""``inferplane plan`` and ``inferplane plan calibrate`` through typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferplane.cli.main import app

runner = CliRunner()

ISSUE = ["plan", "--model", "llama-3.1-70b", "--rate", "20", "--isl", "2000", "--osl", "300",
         "--slo", "ttft=1s,tpot=50ms", "--hardware", "h100,b200,mi300x,tpu-v6e"]


@pytest.fixture
def no_calibration(tmp_path: Path) -> list[str]:
    """Point the planner at a calibration file that does not exist (hermetic runs)."""
    return ["--calibration", str(tmp_path / "none.json")]


def test_table_ranks_options_and_names_the_binding_constraint(no_calibration: list[str]) -> None:
    result = runner.invoke(app, [*ISSUE, *no_calibration], env={"COLUMNS": "220"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "llama-3.1-70b (bf16 weights, bf16 KV): 20 req/s" in out
    for column in ("chips", "layout", "TTFT p50/p99", "TPOT p50/p99", "$/1M tok", "J/tok",
                   "kW", "gCO2/1M", "binding constraint"):
        assert column in out
    assert out.index(" mi300x ") < out.index(" h100 ")  # ranked by cost
    assert "Cheapest:" in out and "calibration: none" in out


def test_json_output_parses(no_calibration: list[str]) -> None:
    result = runner.invoke(app, [*ISSUE, "--json", *no_calibration])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["request"]["model"] == "llama-3.1-70b" and doc["request"]["rate_rps"] == 20
    options = doc["options"]
    assert [o["hardware"] for o in options][:1] == ["mi300x"]
    costs = [o["usd_per_mtok"] for o in options]
    assert costs == sorted(costs)
    best = options[0]
    assert best["ttft_s"]["p99"] <= 1.0 and best["tpot_s"]["p99"] <= 0.05
    assert best["chips"] == best["replicas"] * best["tp"] * best["pp"]
    assert best["price"]["source"] and best["expected_error"] == 0.25
    assert doc["calibration"]["path"] is None


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "llama-9000"], "unknown model 'llama-9000'"),
    (["--model", "llama-3.1-8b", "--hardware", "h100,z900"], "unknown hardware 'z900'"),
    (["--model", "llama-3.1-8b", "--slo", "ttft=soon"], "bad SLO 'ttft=soon'"),
    (["--model", "llama-3.1-8b", "--quant", "fp6"], "unknown precision 'fp6'"),
    (["--model", "llama-3.1-8b", "--spec", "four"], "bad --spec 'four'"),
    (["--model", "llama-3.1-8b", "--kv-quant", "int4"], "--kv-quant must be one of"),
    (["--rate", "3"], "--model is required"),
])
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str,
                                          no_calibration: list[str]) -> None:
    result = runner.invoke(app, ["plan", *args, *no_calibration])
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output


def test_plot_writes_a_png(tmp_path: Path, no_calibration: list[str]) -> None:
    png = tmp_path / "plan.png"
    result = runner.invoke(app, [*ISSUE, "--plot", str(png), "--json", *no_calibration])
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_calibrate_then_plan_uses_and_reports_it(tmp_path: Path) -> None:
    cal_file = tmp_path / "cal.json"
    measurements = tmp_path / "bench.json"
    measurements.write_text(json.dumps({
        "hardware": "h100", "model": "llama-3.1-8b", "source": "test run",
        "measurements": [
            {"phase": "decode", "batch": 1, "context": 512, "step_s": 0.0072},
            {"phase": "decode", "batch": 32, "context": 2048, "step_s": 0.0121},
            {"phase": "decode", "batch": 64, "context": 2048, "tokens_per_s": 4000},
            {"phase": "prefill", "batch": 1, "prompt": 2048, "time_s": 0.05},
        ]}))
    result = runner.invoke(app, ["plan", "calibrate", str(measurements),
                                 "--calibration", str(cal_file)], env={"COLUMNS": "160"})
    assert result.exit_code == 0, result.output
    assert "fitted bandwidth_efficiency, compute_efficiency, step_overhead_s" in result.stdout
    stored = json.loads(cal_file.read_text())["hardware"]["h100"]
    assert stored["points"] == 4 and 0.05 <= stored["bandwidth_efficiency"] <= 1.0

    planned = runner.invoke(app, ["plan", "--model", "llama-3.1-8b", "--hardware", "h100",
                                  "--calibration", str(cal_file), "--json"])
    assert planned.exit_code == 0, planned.output
    doc = json.loads(planned.stdout)
    assert doc["calibration"]["path"] == str(cal_file)
    assert doc["options"][0]["calibrated"] is True
    assert doc["options"][0]["expected_error"] == pytest.approx(stored["rms_rel_error"])
    table = runner.invoke(app, ["plan", "--model", "llama-3.1-8b", "--hardware", "h100",
                                "--calibration", str(cal_file)], env={"COLUMNS": "200"})
    assert f"calibration: {cal_file}" in table.stdout


def test_calibrate_rejects_a_bad_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    result = runner.invoke(app, ["plan", "calibrate", str(bad), "--calibration",
                                 str(tmp_path / "c.json")])
    assert result.exit_code == 2 and "not valid JSON" in result.stderr
    missing = runner.invoke(app, ["plan", "calibrate", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "cannot read" in missing.stderr
