"""Calibration: parsing measurements, fitting factors back, the store, and applying it."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from inferplane.planner import calibration as cal
from inferplane.planner.catalog import Catalog, Efficiency
from inferplane.planner.errors import PlannerError

TRUE = Efficiency(bandwidth=0.72, compute=0.55, step_overhead_s=0.0012)
POINTS = [("decode", b, c) for b in (1, 8, 32, 64) for c in (512, 2048, 8192)] + [
    ("prefill", 1, 2048), ("prefill", 4, 2048), ("prefill", 1, 8192)]


def synthetic(catalog: Catalog, factors: Efficiency = TRUE) -> dict[str, Any]:
    """Measurements a 'real engine' with ``factors`` would give (what the planner predicts)."""
    base = cal.parse_calibration_input(
        {"hardware": "h100", "model": "llama-3.1-8b",
         "measurements": [{"phase": "decode", "batch": 1, "context": 1, "step_s": 1.0}]},
        catalog)
    rows = []
    for phase, batch, length in POINTS:
        m = cal.Measurement(phase, batch, length, 1.0)
        seconds = cal.predict(base, factors, m)
        rows.append({"phase": phase, "batch": batch, "context": length, "step_s": seconds}
                    if phase == "decode" else
                    {"phase": phase, "batch": batch, "prompt": length, "time_s": seconds})
    return {"hardware": "h100", "model": "llama-3.1-8b", "quant": "bf16", "source": "synthetic",
            "measurements": rows}


def test_fit_recovers_the_factors_that_made_the_data(catalog: Catalog) -> None:
    run = cal.parse_calibration_input(synthetic(catalog), catalog)
    fit = cal.fit(run)
    assert set(fit.fitted) == {"bandwidth_efficiency", "compute_efficiency", "step_overhead_s"}
    assert fit.factors.bandwidth == pytest.approx(TRUE.bandwidth, rel=0.02)
    assert fit.factors.compute == pytest.approx(TRUE.compute, rel=0.02)
    assert fit.factors.step_overhead_s == pytest.approx(TRUE.step_overhead_s, rel=0.1)
    assert fit.rms_rel_error < 0.01


def test_one_decode_point_fits_bandwidth_only(catalog: Catalog) -> None:
    run = cal.parse_calibration_input(synthetic(catalog), catalog)
    one = [m for m in run.measurements if (m.phase, m.batch, m.context) == ("decode", 8, 2048)]
    fit = cal.fit(run, one)
    assert fit.fitted == ("bandwidth_efficiency",)
    assert fit.residuals[0] == pytest.approx(0, abs=1e-3)
    assert fit.factors.compute == catalog.hardware["h100"].efficiency.compute


def test_tokens_per_second_is_accepted_for_decode(catalog: Catalog) -> None:
    run = cal.parse_calibration_input(
        {"hardware": "H100", "model": "llama-3-8b",
         "measurements": [{"phase": "decode", "batch": 8, "context": 1024,
                           "tokens_per_s": 1000}]}, catalog)
    assert run.measurements[0].seconds == pytest.approx(0.008)
    assert run.quant.name == "bf16" and run.hardware.id == "h100"


@pytest.mark.parametrize(("data", "message"), [
    ([], "expected a JSON object"),
    ({"hardware": "h100", "model": "llama-3.1-8b"}, "missing 'measurements'"),
    ({"hardware": "h100", "model": "llama-3.1-8b", "measurements": []}, "non-empty list"),
    ({"hardware": "h999", "model": "llama-3.1-8b", "measurements": [{}]}, "unknown hardware"),
    ({"hardware": "h100", "model": "llama-3.1-8b", "measurements": [{"phase": "x"}]},
     "'phase' must be"),
    ({"hardware": "h100", "model": "llama-3.1-8b",
      "measurements": [{"phase": "decode", "batch": 1, "context": 5}]}, "needs 'step_s'"),
    ({"hardware": "h100", "model": "llama-3.1-8b",
      "measurements": [{"phase": "prefill", "prompt": 5, "time_s": -1}]}, "positive number"),
])
def test_bad_inputs_give_one_line_errors(catalog: Catalog, data: Any, message: str) -> None:
    with pytest.raises(PlannerError, match=message) as info:
        cal.parse_calibration_input(data, catalog)
    assert "\n" not in info.value.message


def test_store_round_trip_and_apply(catalog: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "sub" / "calibration.json"
    assert cal.load_store(path) == {}
    fit = cal.fit(cal.parse_calibration_input(synthetic(catalog), catalog))
    entry = cal.stored(fit, "synthetic")
    cal.save(path, entry)
    cal.save(path, replace(entry, hardware="b200"))
    loaded = cal.load_store(path)
    assert set(loaded) == {"h100", "b200"}
    assert loaded["h100"].efficiency == pytest.approx(entry.efficiency) or \
        loaded["h100"].efficiency == entry.efficiency
    assert json.loads(path.read_text())["version"] == 1
    applied = cal.apply(catalog, loaded)
    assert applied.hardware["h100"].efficiency == loaded["h100"].efficiency
    assert catalog.hardware["h100"].efficiency != applied.hardware["h100"].efficiency


def test_a_corrupt_store_is_a_planner_error(tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("{not json")
    with pytest.raises(PlannerError, match="invalid calibration file"):
        cal.load_store(path)
