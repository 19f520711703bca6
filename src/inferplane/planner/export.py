"""A plan as plain JSON-ready data (``inferplane plan --json``)."""

from __future__ import annotations

import math
from typing import Any

from inferplane.planner.calibration import StoredCalibration
from inferplane.planner.plan import CapacityPlan, Infeasible, Option

# Expected relative error of uncalibrated predictions: the tolerance within which the catalog
# defaults reproduce the published ML.ENERGY figures (tests/unit/planner/test_validation.py).
UNCALIBRATED_ERROR = 0.25


def _num(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def expected_error(hardware_id: str, calibrations: dict[str, StoredCalibration]) -> float:
    cal = calibrations.get(hardware_id)
    if cal is None or not math.isfinite(cal.rms_rel_error):
        return UNCALIBRATED_ERROR
    return cal.rms_rel_error


def option_dict(o: Option, calibrations: dict[str, StoredCalibration]) -> dict[str, Any]:
    load, step = o.load, o.load.decode.step
    return {
        "hardware": o.hardware.id,
        "hardware_name": o.hardware.name,
        "chips": o.chips,
        "replicas": o.replicas,
        "chips_per_replica": o.replica.chips,
        "tp": o.replica.tp,
        "pp": o.replica.pp,
        "batch_limit": o.batch_limit,
        "layout": o.layout,
        "capacity_tokens_per_s": _num(o.capacity_tokens_s, 1),
        "concurrency_per_replica": _num(load.concurrency, 2),
        "ttft_s": {"p50": _num(load.ttft.p50), "p99": _num(load.ttft.p99)},
        "tpot_s": {"p50": _num(load.tpot.p50), "p99": _num(load.tpot.p99)},
        "prefill_share": _num(load.prefill_share, 4),
        "decode_step_s": _num(step.total_s),
        "decode_step_breakdown_s": {part: _num(s) for part, s in step.parts.items()},
        "usd_per_hour": _num(o.usd_per_hour, 4),
        "usd_per_mtok": _num(o.usd_per_mtok, 4),
        "price": None if o.price is None else {
            "provider": o.price.provider, "usd_per_chip_hour": o.price.usd_per_hour,
            "date": o.price.date, "source": o.price.source},
        "joules_per_token": _num(o.joules_per_token, 5),
        "kw": _num(o.kw, 3),
        "gco2_per_mtok": _num(o.gco2_per_mtok, 2),
        "binding": o.binding,
        "detail": o.detail,
        "expected_error": expected_error(o.hardware.id, calibrations),
        "calibrated": o.hardware.id in calibrations,
        "hardware_status": o.hardware.status,
        "estimated_fields": list(o.hardware.estimated),
    }


def infeasible_dict(i: Infeasible) -> dict[str, Any]:
    return {"hardware": i.hardware.id, "reason": i.reason}


def plan_dict(plan: CapacityPlan, calibrations: dict[str, StoredCalibration],
              calibration_path: str | None) -> dict[str, Any]:
    """The whole plan: the request, ranked options, what cannot serve, and the assumptions."""
    req = plan.request
    w, slo = req.workload, req.slo
    return {
        "request": {
            "model": req.model.id,
            "quant": req.quant.name,
            "kv_quant": req.kv_quant.name,
            "rate_rps": w.rate,
            "isl": w.isl,
            "osl": w.osl,
            "slo": {"ttft_s": _num(slo.ttft_s), "tpot_s": _num(slo.tpot_s),
                    "percentile": slo.percentile},
            "speculation": None if req.speculation is None else {
                "draft_tokens": req.speculation.draft_tokens,
                "acceptance": req.speculation.acceptance,
                "draft_cost": req.speculation.draft_cost},
            "chunk_tokens": req.chunk_tokens,
            "grid_g_per_kwh": req.grid_g_per_kwh,
            "pue": req.pue,
            "provider": req.provider,
        },
        "options": [option_dict(o, calibrations) for o in plan.options],
        "infeasible": [infeasible_dict(i) for i in plan.infeasible],
        "calibration": {
            "path": calibration_path,
            "hardware": {k: v.to_dict() for k, v in calibrations.items()},
        },
        "assumptions": {
            "usd_per_mtok": "per million output tokens at the requested rate, prefill included",
            "joules_per_token": "accelerator energy per output token (no host, network, cooling)",
            "price": "median listed on-demand price per chip-hour unless a provider is given",
            "uncalibrated_expected_error": UNCALIBRATED_ERROR,
        },
    }
