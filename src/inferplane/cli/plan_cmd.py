"""``inferplane plan``: which accelerator and layout serves a model cheapest, and what binds it.

    inferplane plan --model llama-3.1-70b --rate 20 --isl 2000 --osl 300 --slo ttft=1s,tpot=50ms
    inferplane plan calibrate bench.json      # fit efficiency factors to measurements

Bad names, SLO strings and input files print one line and exit with status 2.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import yaml
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cli.ledger_cmd import JsonOption
from inferplane.cli.tables import show
from inferplane.engines.step_log import step_log_dir
from inferplane.planner import calibration as cal
from inferplane.planner.catalog import load_catalog
from inferplane.planner.deploy_values import rayservice_values
from inferplane.planner.errors import PlannerError
from inferplane.planner.export import UNCALIBRATED_ERROR, expected_error, plan_dict
from inferplane.planner.plan import CapacityPlan, PlanRequest, plan
from inferplane.planner.power import DEFAULT_GRID_G_PER_KWH, DEFAULT_PUE
from inferplane.planner.precision import KV_PRECISIONS, precision
from inferplane.planner.serving import Workload
from inferplane.planner.slo import format_seconds, parse_slo
from inferplane.planner.speculative import parse_speculation
from inferplane.text import plural

app = typer.Typer(
    help="Plan capacity: the cheapest accelerator and layout for a model under an SLO.",
    invoke_without_command=True,
)

CalibrationOption = Annotated[
    Path | None,
    typer.Option("--calibration", help="Calibration file (default ~/.inferplane/calibration.json)"),
]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True, highlight=False).print(f"[bold red]error:[/] {escape(message)}",
                                                soft_wrap=True)
    return typer.Exit(2)


def _write_helm_values(result: CapacityPlan, path: Path) -> None:
    if not result.options:
        raise _fail("no hardware serves this request: no values to write")
    try:
        values = rayservice_values(result.options[0])
    except PlannerError as exc:
        raise _fail(exc.message) from exc
    path.write_text(f"# inferplane plan: {result.request.title()}\n"
                    f"# {result.options[0].layout} on {result.options[0].hardware.name}\n"
                    + yaml.safe_dump(values, sort_keys=False))


def _print_json(doc: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()


ModelOpt = Annotated[
    str | None, typer.Option("--model", "-m", help="Model id (data/models.yaml).")]
RateOpt = Annotated[float, typer.Option(help="Requests per second.", min=0.0)]
IslOpt = Annotated[int, typer.Option(help="Input (prompt) tokens per request.", min=1)]
OslOpt = Annotated[int, typer.Option(help="Output tokens per request.", min=1)]
SloOpt = Annotated[str, typer.Option(help="Latency targets, e.g. ttft=1s,tpot=50ms[,p=99].")]
HardwareOpt = Annotated[
    str | None, typer.Option(help="Comma-separated hardware ids (default: all).")]
QuantOpt = Annotated[
    str | None, typer.Option(help="Weights: bf16, fp8, int8, int4, fp4 (default: the model's).")]
KvOpt = Annotated[str, typer.Option("--kv-quant", help=f"KV cache: {', '.join(KV_PRECISIONS)}.")]
SpecOpt = Annotated[
    str | None, typer.Option(help="Speculative decoding DRAFT:ACCEPT[:COST], e.g. 4:0.7.")]
ProviderOpt = Annotated[
    str | None, typer.Option(help="Use this provider's price (substring), not the median.")]
ChunkOpt = Annotated[int, typer.Option(help="Prefill chunk (tokens per iteration).", min=16)]
GridOpt = Annotated[float, typer.Option(help="Grid intensity, gCO2/kWh.", min=0.0)]
PueOpt = Annotated[float, typer.Option(help="Facility PUE applied to carbon.", min=1.0)]
PlotOpt = Annotated[Path | None, typer.Option("--plot", help="Write a cost-vs-latency PNG.")]
HelmValuesOpt = Annotated[Path | None, typer.Option(
    "--helm-values", help="Write the Helm chart's engine values (rayService) for the cheapest "
                          "option: replicas, chips per replica, node selector.")]


@app.callback()
def main(
    ctx: typer.Context,
    model: ModelOpt = None,
    rate: RateOpt = 1.0,
    isl: IslOpt = 1000,
    osl: OslOpt = 300,
    slo: SloOpt = "ttft=2s,tpot=100ms",
    hardware: HardwareOpt = None,
    quant: QuantOpt = None,
    kv_quant: KvOpt = "bf16",
    spec: SpecOpt = None,
    provider: ProviderOpt = None,
    chunk: ChunkOpt = 2048,
    grid: GridOpt = DEFAULT_GRID_G_PER_KWH,
    pue: PueOpt = DEFAULT_PUE,
    plot: PlotOpt = None,
    calibration: CalibrationOption = None,
    as_json: JsonOption = False,
    helm_values: HelmValuesOpt = None,
) -> None:
    """Rank accelerators by $ per 1M output tokens for a model, traffic and SLO."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None:
        raise _fail("--model is required (e.g. --model llama-3.1-70b)")
    cal_path = (calibration or cal.default_path()).expanduser()
    try:
        calibrations = cal.load_store(cal_path)
        catalog = cal.apply(load_catalog(), calibrations)
        m = catalog.find_model(model)
        hw_names = [h for h in (hardware or "").split(",") if h.strip()]
        hws = tuple(catalog.find_hardware(h) for h in hw_names) if hw_names \
            else tuple(catalog.hardware.values())
        kv = precision(kv_quant)
        if kv.name not in KV_PRECISIONS:
            raise PlannerError(f"--kv-quant must be one of {', '.join(KV_PRECISIONS)}")
        if rate <= 0:
            raise PlannerError("--rate must be > 0")
        request = PlanRequest(
            model=m, hardware=hws, workload=Workload(rate=rate, isl=isl, osl=osl),
            slo=parse_slo(slo), quant=precision(quant or m.native_quant), kv_quant=kv,
            speculation=parse_speculation(spec) if spec else None, chunk_tokens=chunk,
            grid_g_per_kwh=grid, pue=pue, provider=provider)
    except PlannerError as exc:
        raise _fail(exc.message) from exc
    result = plan(request)
    used = {k: v for k, v in calibrations.items() if any(h.id == k for h in hws)}
    if plot is not None:
        from inferplane.planner.plot import write_plot

        write_plot(result, plot)
    if helm_values is not None:
        _write_helm_values(result, helm_values)
    if as_json:
        _print_json(plan_dict(result, used, str(cal_path) if calibrations else None))
        return
    console = Console()
    show(console, plan_table(result), PLAN_DROP)
    for line in plan_notes(result, used, cal_path, plot):
        console.print(line, highlight=False, soft_wrap=not console.is_terminal)


def _money(value: float | None, digits: int = 2) -> str:
    return "n/p" if value is None else f"{value:,.{digits}f}"


def _maybe(value: float | None, fmt: str) -> str:
    return "-" if value is None or not math.isfinite(value) else format(value, fmt)


#: The columns a narrow terminal leaves out, first to last (``cli/tables.py``).
PLAN_DROP = ("gCO2/1M", "kW", "J/tok", "TTFT p50/p99", "tok/s", "#", "TPOT p50/p99")


def plan_table(result: CapacityPlan) -> Table:
    table = Table(title=escape(result.request.title()), title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("#", justify="right")
    table.add_column("hardware", no_wrap=True)
    for name in ("chips", "layout", "tok/s", "TTFT p50/p99", "TPOT p50/p99", "$/1M tok",
                 "J/tok", "kW", "gCO2/1M"):  # a layout and a p50 / p99 pair may wrap
        table.add_column(name, justify="left" if name == "layout" else "right",
                         no_wrap=" " not in name and name != "layout")
    table.add_column("binding constraint", min_width=16)
    for i, o in enumerate(result.options, 1):
        load = o.load
        table.add_row(
            str(i),
            escape(o.hardware.id) + (" (prelim.)" if o.hardware.status == "preliminary" else ""),
            f"{o.chips:,}",
            escape(o.layout),
            f"{o.capacity_tokens_s:,.0f}",
            f"{format_seconds(load.ttft.p50)} / {format_seconds(load.ttft.p99)}",
            f"{format_seconds(load.tpot.p50)} / {format_seconds(load.tpot.p99)}",
            _money(o.usd_per_mtok),
            _maybe(o.joules_per_token, ".3f"),
            _maybe(o.kw, ".1f"),
            _maybe(o.gco2_per_mtok, ",.0f"),
            escape(o.binding),
        )
    return table


def plan_notes(result: CapacityPlan, calibrations: dict[str, cal.StoredCalibration],
               cal_path: Path, plot: Path | None) -> list[str]:
    req = result.request
    notes = []
    if result.options:
        win = result.options[0]
        w = req.workload
        cost = "" if win.price is None or win.usd_per_hour is None else (
            f"{plural(win.chips, 'chip')} x ${win.price.usd_per_hour:.2f}/h "
            f"({win.price.provider}, "
            f"{win.price.date}) = ${win.usd_per_hour:,.2f}/h for {w.rate * w.osl:,.0f} output "
            "tok/s; ")
        notes.append(f"[bold]Cheapest:[/] {escape(win.hardware.name)}, {escape(win.layout)}: "
                     f"{escape(cost + win.detail)}.")
    for i in result.infeasible:
        notes.append(f"[yellow]not feasible[/] {escape(i.hardware.id)}: {escape(i.reason)}")
    notes.append(
        "tok/s: output-token capacity of the fleet; $/1M tok: per million output tokens at "
        "the requested rate (prefill included), median listed on-demand chip price unless "
        "--provider; n/p: no public price in the catalog; J/tok, kW: accelerators only; "
        f"gCO2 at {req.grid_g_per_kwh:g} g/kWh x PUE {req.pue:g}.")
    if calibrations:
        fits = ", ".join(
            f"{hw} (+/-{expected_error(hw, calibrations):.0%}, {plural(c.points, 'point')})"
            for hw, c in calibrations.items())
        notes.append(f"calibration: {escape(str(cal_path))}: {escape(fits)}; other hardware "
                     f"uncalibrated (expected error +/-{UNCALIBRATED_ERROR:.0%}).")
    else:
        notes.append(f"calibration: none; catalog defaults (expected error "
                     f"+/-{UNCALIBRATED_ERROR:.0%}, see docs/planner.md).")
    if plot is not None:
        notes.append(f"plot: {escape(str(plot))}")
    return notes


@app.command()
def calibrate(
    file: Annotated[Path | None, typer.Argument(
        help="Measurements JSON (schema: docs/planner.md); none: the step times the gateway "
        "observed on the engines it reads.")] = None,
    calibration: CalibrationOption = None,
    save: Annotated[bool, typer.Option("--save/--no-save", help="Store the fit.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Fit a hardware's efficiency factors to measured step times and store them."""
    cal_path = (calibration or cal.default_path()).expanduser()
    if file is not None:
        _calibrate(file, cal_path, save, as_json)
        return
    observed = sorted(step_log_dir().glob("*.json"))
    if not observed:
        raise _fail(f"no file given, and no engine's step times in {step_log_dir()} yet "
                    "(a gateway writes them for the engine servers it reads; docs/engines.md)")
    fitted = 0
    for path in observed:
        try:
            _calibrate(path, cal_path, save, as_json)
            fitted += 1
        except typer.Exit:
            continue  # its one-line reason is printed
    if not fitted:
        raise typer.Exit(1)


def _calibrate(file: Path, cal_path: Path, save: bool, as_json: bool) -> None:
    try:
        run = cal.read_calibration_input(file, load_catalog())
        fit = cal.fit(run)
        entry = cal.stored(fit, run.source or str(file))
        if save:
            cal.save(cal_path, entry)
    except PlannerError as exc:
        raise _fail(exc.message) from exc
    if as_json:
        doc = {
            **entry.to_dict(), "hardware": entry.hardware, "saved_to": str(cal_path) if save
            else None,
            "points": [
                {"phase": m.phase, "batch": m.batch, "context": m.context, "tp": m.tp,
                 "pp": m.pp, "measured_s": m.seconds, "predicted_s": fit.predict(m),
                 "rel_error": r}
                for m, r in zip(fit.run.measurements, fit.residuals, strict=True)],
        }
        _print_json(doc)
        return
    console = Console()
    table = Table(title=escape(f"calibration of {run.hardware.id} on {run.model.id} "
                               f"({run.quant.name})"), title_justify="left",
                  box=box.SIMPLE_HEAD)
    for name in ("phase", "batch", "context", "tp x pp", "measured", "predicted", "error"):
        table.add_column(name, justify="left" if name == "phase" else "right")
    for m, r in zip(fit.run.measurements, fit.residuals, strict=True):
        table.add_row(m.phase, str(m.batch), f"{m.context:,}", f"{m.tp}x{m.pp}",
                      format_seconds(m.seconds), format_seconds(fit.predict(m)), f"{r:+.1%}")
    console.print(table)
    f = fit.factors
    console.print(
        f"fitted {', '.join(fit.fitted)}: bandwidth efficiency {f.bandwidth:.3f}, compute "
        f"efficiency {f.compute:.3f}, step overhead {format_seconds(f.step_overhead_s)}; "
        f"RMS error {fit.rms_rel_error:.1%}, worst {fit.max_abs_rel_error:.1%} over "
        f"{len(fit.residuals)} points", highlight=False)
    console.print(f"saved to {escape(str(cal_path))}" if save else "not saved (--no-save)",
                  highlight=False)
