"""Fit a hardware's efficiency factors to measured step times, and keep the fits in a JSON file.

Input (a benchmark run's JSON; ``docs/planner.md`` has the full schema)::

    {"hardware": "h100", "model": "llama-3.1-8b", "quant": "bf16", "kv_quant": "bf16",
     "source": "what produced it",
     "measurements": [
        {"phase": "decode", "batch": 8, "context": 2048, "step_s": 0.0071, "tp": 1, "pp": 1},
        {"phase": "decode", "batch": 64, "context": 512, "tokens_per_s": 7900},
        {"phase": "prefill", "batch": 1, "prompt": 2048, "time_s": 0.12}]}

A decode point gives the time of one step at ``batch`` sequences of ``context`` cached tokens
(``step_s``, or ``tokens_per_s`` = batch / step); a prefill point the time of ``batch`` prompts of
``prompt`` tokens. Which factors are fitted depends on the data: decode points fit the
bandwidth efficiency, and with three or more the per-step overhead too; prefill points fit the
compute efficiency. The rest keep the catalog's defaults. The fit minimises the squared log
error (coordinate descent, golden-section per factor); its residuals are the planner's expected
error for that hardware.

Stored fits (``~/.inferplane/calibration.json`` by default)::

    {"version": 1, "hardware": {"h100": {"bandwidth_efficiency": 0.81, "compute_efficiency": 0.6,
       "step_overhead_s": 0.0005, "fitted": ["bandwidth_efficiency"], "rms_rel_error": 0.04,
       "max_abs_rel_error": 0.07, "points": 13, "model": "llama-3.1-8b", "source": "...",
       "fitted_at": "2026-11-23T12:00:00+00:00"}}}
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inferplane.planner.catalog import Catalog, Efficiency, Hardware, Model
from inferplane.planner.errors import PlannerError
from inferplane.planner.layout import Replica
from inferplane.planner.precision import Precision, precision
from inferplane.planner.roofline import decode_step, prefill

DEFAULT_PATH = Path("~/.inferplane/calibration.json")
STORE_VERSION = 1
BOUNDS = {"bandwidth_efficiency": (0.05, 1.0), "compute_efficiency": (0.05, 1.0),
          "step_overhead_s": (0.0, 0.05)}


@dataclass(frozen=True)
class Measurement:
    """One measured time: a decode step or a prefill, at a batch and length, on tp x pp chips."""

    phase: str
    batch: int
    context: int  # decode: tokens already cached per sequence; prefill: prompt tokens
    seconds: float
    tp: int = 1
    pp: int = 1


@dataclass(frozen=True)
class CalibrationRun:
    """A parsed calibration input: what was measured, on what, and the measurements."""

    hardware: Hardware
    model: Model
    quant: Precision
    kv_quant: Precision
    measurements: tuple[Measurement, ...]
    source: str


@dataclass(frozen=True)
class Fit:
    """Fitted factors for one hardware and how well they reproduce the measurements."""

    run: CalibrationRun
    factors: Efficiency
    fitted: tuple[str, ...]
    residuals: tuple[float, ...]  # predicted / measured - 1, per measurement

    @property
    def rms_rel_error(self) -> float:
        if not self.residuals:
            return math.nan
        return math.sqrt(sum(r * r for r in self.residuals) / len(self.residuals))

    @property
    def max_abs_rel_error(self) -> float:
        return max((abs(r) for r in self.residuals), default=math.nan)

    def predict(self, m: Measurement) -> float:
        return predict(self.run, self.factors, m)


def predict(run: CalibrationRun, factors: Efficiency, m: Measurement) -> float:
    """The planner's time for measurement ``m`` with efficiency ``factors``."""
    hw = replace(run.hardware, efficiency=factors)
    replica = Replica(run.model, hw, run.quant, run.kv_quant, tp=m.tp, pp=m.pp)
    if m.phase == "decode":
        return decode_step(replica, m.batch, m.context).total_s
    return prefill(replica, m.context, batch=m.batch).total_s


def _number(raw: dict[str, Any], key: str, where: str) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise PlannerError(f"{where}: '{key}' must be a positive number")
    return float(value)


def _measurement(raw: Any, i: int) -> Measurement:
    where = f"measurements[{i}]"
    if not isinstance(raw, dict):
        raise PlannerError(f"{where}: expected an object")
    phase = raw.get("phase")
    batch = int(_number(raw, "batch", where)) if "batch" in raw else 1
    tp, pp = (int(_number(raw, k, where)) if k in raw else 1 for k in ("tp", "pp"))
    if phase == "decode":
        context = int(_number(raw, "context", where))
        if "step_s" in raw:
            seconds = _number(raw, "step_s", where)
        elif "tokens_per_s" in raw:
            seconds = batch / _number(raw, "tokens_per_s", where)
        else:
            raise PlannerError(f"{where}: a decode point needs 'step_s' or 'tokens_per_s'")
    elif phase == "prefill":
        context = int(_number(raw, "prompt", where))
        seconds = _number(raw, "time_s", where)
    else:
        raise PlannerError(f"{where}: 'phase' must be 'decode' or 'prefill'")
    return Measurement(phase, batch, context, seconds, tp, pp)


def parse_calibration_input(data: Any, catalog: Catalog) -> CalibrationRun:
    """A :class:`CalibrationRun` from a decoded JSON document, or a one-line PlannerError."""
    if not isinstance(data, dict):
        raise PlannerError("calibration input: expected a JSON object")
    for key in ("hardware", "model", "measurements"):
        if key not in data:
            raise PlannerError(f"calibration input: missing '{key}'")
    model = catalog.find_model(str(data["model"]))
    hardware = catalog.find_hardware(str(data["hardware"]))
    quant = precision(str(data.get("quant", model.native_quant)))
    kv_quant = precision(str(data.get("kv_quant", "bf16")))
    raw = data["measurements"]
    if not isinstance(raw, list) or not raw:
        raise PlannerError("calibration input: 'measurements' must be a non-empty list")
    measurements = tuple(_measurement(m, i) for i, m in enumerate(raw))
    return CalibrationRun(hardware, model, quant, kv_quant, measurements,
                          str(data.get("source", "")))


def read_calibration_input(path: Path, catalog: Catalog) -> CalibrationRun:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PlannerError(f"cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise PlannerError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from exc
    return parse_calibration_input(data, catalog)


def _golden(f: Callable[[float], float], lo: float, hi: float, iters: int = 40) -> float:
    ratio = (math.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = f(c), f(d)
    for _ in range(iters):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = f(d)
    return (a + b) / 2


def _log_loss(base: Sequence[float], measured: Sequence[float], overhead: float) -> float:
    """Squared log error of predictions made without an overhead, once ``overhead`` is added."""
    return sum(math.log((b + overhead) / m) ** 2 for b, m in zip(base, measured, strict=True))


def _best_overhead(base: Sequence[float], measured: Sequence[float]) -> float:
    """The step overhead minimising the log error, given predictions made without one."""
    return _golden(lambda o: _log_loss(base, measured, o), *BOUNDS["step_overhead_s"])


def fit(run: CalibrationRun, measurements: Sequence[Measurement] | None = None) -> Fit:
    """Fit the factors the measurements can tell apart; ``measurements`` defaults to all.

    The step overhead adds to every predicted time, so for each trial of the two efficiencies
    it is solved for directly (a profile over the cheap sums), which keeps the strongly
    correlated bandwidth / overhead pair from stalling the coordinate descent.
    """
    points = tuple(run.measurements if measurements is None else measurements)
    decode = sum(1 for m in points if m.phase == "decode")
    fit_bw, fit_compute, fit_overhead = decode >= 1, decode < len(points), decode >= 3
    defaults = run.hardware.efficiency
    measured = [m.seconds for m in points]

    def profile(bw: float, compute: float) -> tuple[float, float]:
        """(loss, overhead) at these efficiencies, the overhead fitted or left at default."""
        base = [predict(run, Efficiency(bw, compute, 0.0), m) for m in points]
        o = _best_overhead(base, measured) if fit_overhead else defaults.step_overhead_s
        return _log_loss(base, measured, o), o

    bw, compute = defaults.bandwidth, defaults.compute

    def loss_of_bandwidth(x: float) -> float:
        return profile(x, compute)[0]

    def loss_of_compute(x: float) -> float:
        return profile(bw, x)[0]

    for _ in range(4 if fit_bw and fit_compute else 1):
        if fit_bw:
            bw = _golden(loss_of_bandwidth, *BOUNDS["bandwidth_efficiency"])
        if fit_compute:
            compute = _golden(loss_of_compute, *BOUNDS["compute_efficiency"])
    overhead = profile(bw, compute)[1] if points else defaults.step_overhead_s
    eff = Efficiency(bandwidth=bw, compute=compute, step_overhead_s=overhead)
    names = tuple(n for n, wanted in (("bandwidth_efficiency", fit_bw),
                                      ("compute_efficiency", fit_compute),
                                      ("step_overhead_s", fit_overhead)) if wanted)
    residuals = tuple(predict(run, eff, m) / m.seconds - 1 for m in points)
    return Fit(run=replace(run, measurements=points), factors=eff, fitted=names,
               residuals=residuals)


@dataclass(frozen=True)
class StoredCalibration:
    """One hardware's stored fit, as the plan uses it."""

    hardware: str
    efficiency: Efficiency
    fitted: tuple[str, ...]
    rms_rel_error: float
    max_abs_rel_error: float
    points: int
    model: str
    source: str
    fitted_at: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.efficiency.to_dict(), "fitted": list(self.fitted),
                "rms_rel_error": self.rms_rel_error, "max_abs_rel_error": self.max_abs_rel_error,
                "points": self.points, "model": self.model, "source": self.source,
                "fitted_at": self.fitted_at}


def stored(f: Fit, source: str) -> StoredCalibration:
    return StoredCalibration(
        hardware=f.run.hardware.id, efficiency=f.factors, fitted=f.fitted,
        rms_rel_error=f.rms_rel_error, max_abs_rel_error=f.max_abs_rel_error,
        points=len(f.residuals), model=f.run.model.id, source=source,
        fitted_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


def default_path() -> Path:
    """``$INFERPLANE_CALIBRATION`` if set, else ``~/.inferplane/calibration.json``."""
    env = os.environ.get("INFERPLANE_CALIBRATION")
    return Path(env).expanduser() if env else DEFAULT_PATH.expanduser()


def load_store(path: Path) -> dict[str, StoredCalibration]:
    """Stored fits by hardware id; empty when the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["hardware"]
        return {
            hw_id: StoredCalibration(
                hardware=hw_id,
                efficiency=Efficiency.from_dict(e),
                fitted=tuple(e.get("fitted", [])),
                rms_rel_error=float(e.get("rms_rel_error", math.nan)),
                max_abs_rel_error=float(e.get("max_abs_rel_error", math.nan)),
                points=int(e.get("points", 0)), model=str(e.get("model", "")),
                source=str(e.get("source", "")), fitted_at=str(e.get("fitted_at", "")))
            for hw_id, e in entries.items()
        }
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PlannerError(f"invalid calibration file {path}: {exc!r}") from exc


def save(path: Path, calibration: StoredCalibration) -> None:
    """Add or replace one hardware's fit in the store at ``path`` (atomic replace)."""
    entries = {k: v.to_dict() for k, v in load_store(path).items()}
    entries[calibration.hardware] = calibration.to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"version": STORE_VERSION, "hardware": entries}, indent=2) + "\n",
                   encoding="utf-8")
    tmp.replace(path)


def apply(catalog: Catalog, calibrations: dict[str, StoredCalibration]) -> Catalog:
    """The catalog with each calibrated hardware's efficiency replaced by its fit."""
    for hw_id, cal in calibrations.items():
        if hw_id in catalog.hardware:
            catalog = catalog.with_efficiency(hw_id, cal.efficiency)
    return catalog
