"""``inferplane report``: cost, energy, carbon and water from the ledger, grouped, as a table,
JSON, CSV or PNGs. The window is filtered by the database; the folding is
:func:`inferplane.ledger.report.aggregate`."""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cli.config_cmd import ConfigOption
from inferplane.cli.ledger_cmd import query_ledger
from inferplane.cli.tables import show
from inferplane.ledger import plot
from inferplane.ledger.report import (
    COLUMNS,
    ENERGY_METHODS,
    J_PER_KWH,
    Key,
    Report,
    Tally,
    aggregate,
    parse_time,
)


class By(StrEnum):
    tenant = "tenant"
    model = "model"
    deployment = "deployment"
    provider = "provider"
    region = "region"
    day = "day"


TIME_HELP = "ISO date or date-time (UTC unless it has an offset), or a span before now: 7d, 24h."


def report(
    by: Annotated[By, typer.Option("--by", help="Group by this dimension (day: UTC date).")]
    = By.model,
    since: Annotated[
        str | None, typer.Option("--since", help=f"From this time (inclusive). {TIME_HELP}")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help=f"Before this time (exclusive). {TIME_HELP}")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the groups and totals as JSON.")
    ] = False,
    csv_path: Annotated[
        str | None,
        typer.Option("--csv", metavar="PATH|-", help="Write CSV (a row per group, then TOTAL)."),
    ] = None,
    png_dir: Annotated[
        Path | None,
        typer.Option("--png", metavar="DIR", file_okay=False,
                     help=f"Write {plot.OVER_TIME} and {plot.PER_MTOK} into DIR."),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Requests, tokens, cost (USD), energy, CO2 and water per group and per 1M tokens."""
    now = time.time()
    start, end = _bound(since, now, "--since"), _bound(until, now, "--until")
    if start is not None and end is not None and start >= end:
        raise typer.BadParameter("--since must come before --until", param_hint="--since")
    if as_json and csv_path == "-":
        raise typer.BadParameter("--json and --csv - both write to stdout", param_hint="--csv")
    dimensions = [by.value, *(["deployment"] if png_dir is not None else [])]
    result = query_ledger(
        config, lambda store: aggregate(store.records(start, end, COLUMNS), dimensions)
    )
    window = _window(start, end)
    err = Console(stderr=True, highlight=False)
    if as_json:
        data = {"since": _iso(start), "until": _iso(end), **result.to_dict(by.value)}
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
    if csv_path is not None:
        text = report_csv(result, by.value)
        if csv_path == "-":
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            Path(csv_path).write_text(text)
            err.print(f"wrote {escape(csv_path)}", soft_wrap=True)
    if not as_json and csv_path != "-":
        _print_tables(result, by.value, window)
    if png_dir is not None:
        _write_plots(result, png_dir, window, err)


def _print_tables(result: Report, by: str, window: str) -> None:
    console = Console(highlight=False)
    if result.totals.requests == 0:
        console.print(f"no usage records{window}", soft_wrap=True)
        return
    cost, footprint = report_tables(result, by)
    show(console, cost, COST_DROP)
    console.print()
    show(console, footprint, FOOTPRINT_DROP)
    console.print(energy_note(result.totals), soft_wrap=True)
    totals = result.totals
    if totals.cache_hits + totals.cache_misses + totals.cache_bypass:
        console.print("", cache_table(result, by))


def cache_table(result: Report, by: str) -> Table:
    """What the response caches did, and what their hits saved (groups with a cached model)."""
    table = _table(f"response cache by {by}", by, (
        "hits", "misses", "bypass", "hit\nrate", "saved\nUSD", "saved\nkWh", "saved\nCO2 g"))
    rows = [(escape(_key(key)), tally) for key, tally in result.grouped(by)
            if tally.cache_hits + tally.cache_misses + tally.cache_bypass]
    for name, tally in [*rows, ("[bold]total[/]", result.totals)]:
        if tally is result.totals:
            table.add_section()
        rate = tally.cache_hit_rate
        table.add_row(name, f"{tally.cache_hits:,}", f"{tally.cache_misses:,}",
                      f"{tally.cache_bypass:,}", "-" if rate is None else f"{rate:.0%}",
                      sig(tally.cache_saved_usd), sig(tally.cache_saved_energy_j / J_PER_KWH, 4),
                      sig(tally.cache_saved_co2_g, 4))
    return table


def _write_plots(result: Report, directory: Path, window: str, err: Console) -> None:
    if result.totals.requests == 0:
        err.print(f"no usage records{window}: no plots written", soft_wrap=True)
        return
    plot.write_over_time(result.series(), directory / plot.OVER_TIME)
    plot.write_cost_per_mtok(result.grouped("deployment"), directory / plot.PER_MTOK)
    for name in (plot.OVER_TIME, plot.PER_MTOK):
        err.print(f"wrote {escape(str(directory / name))}", soft_wrap=True)


def _bound(text: str | None, now: float, option: str) -> float | None:
    if text is None:
        return None
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from exc


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")


def _window(start: float | None, end: float | None) -> str:
    parts = ([f" since {_when(start)} UTC"] if start is not None else []) + (
        [f" until {_when(end)} UTC"] if end is not None else [])
    return "".join(parts) or " in the ledger"


def sig(value: float | None, digits: int = 6) -> str:
    """``value`` to ``digits`` significant digits, without exponent; "-" for None.

    >>> sig(0.0001234567), sig(1234.5678), sig(12_345_678.9), sig(0.0), sig(None)
    ('0.000123457', '1,234.57', '12,345,679', '0', '-')
    """
    if value is None:
        return "-"
    if value == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    return f"{value:,.{decimals}f}"


#: The columns a narrow terminal leaves out, first to last (``cli/tables.py``).
COST_DROP = ("errors", "tokens\nin", "tokens\nout")
FOOTPRINT_DROP = ("no\nenergy", "L/1M\ntokens", "water\nL", "CO2\ng", "energy\nkWh")


def report_tables(result: Report, by: str) -> list[Table]:
    """Two tables, each narrow enough for a terminal: requests and cost; energy, CO2, water."""
    span = ""
    if result.first_ts is not None and result.last_ts is not None:
        span = f": {_when(result.first_ts)} to {_when(result.last_ts)} UTC"
    cost = _table(f"cost by {by}{span}", by, (
        "requests", "errors", "tokens\nin", "tokens\nout", "cost\nUSD", "USD/1M\ntokens"))
    footprint = _table(f"energy, carbon and water by {by}", by, (
        "energy\nkWh", "kWh/1M\ntokens", "CO2\ng", "gCO2/1M\ntokens", "water\nL",
        "L/1M\ntokens", "no\nenergy"))
    rows = [(escape(_key(key)), tally) for key, tally in result.grouped(by)]
    for name, tally in [*rows, ("[bold]total[/]", result.totals)]:
        if tally is result.totals:
            cost.add_section()
            footprint.add_section()
        d = tally.to_dict()
        cost.add_row(name, f"{tally.requests:,}", f"{tally.errors:,}",
                     f"{tally.prompt_tokens:,}", f"{tally.completion_tokens:,}",
                     sig(tally.cost_usd), sig(d["cost_usd_per_mtok"]))
        footprint.add_row(name, sig(tally.energy_j / J_PER_KWH, 4),
                          sig(d["energy_kwh_per_mtok"], 4), sig(tally.co2_g, 4),
                          sig(d["co2_g_per_mtok"], 4), sig(tally.water_l, 4),
                          sig(d["water_l_per_mtok"], 4), f"{tally.energy_unknown_requests:,}")
    return [cost, footprint]


def _table(title: str, by: str, headers: tuple[str, ...]) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False,
                  pad_edge=False)
    table.add_column(by, overflow="fold")  # a narrow terminal folds the names, not the numbers
    for name in headers:
        table.add_column(name, justify="right", no_wrap=True)
    return table


def _key(key: Key) -> str:
    return "-" if key is None else key


def energy_note(totals: Tally) -> str:
    """Where the total energy comes from, by method, and how many records have none.

    >>> t = Tally(requests=4, energy_j=100.0, energy_unknown_requests=1)
    >>> t.energy_j_by_method.update(measured=75.0, modelled=25.0)
    >>> energy_note(t)
    'energy: measured 75%, modelled 25%; 1 of 4 requests without an energy figure'
    """
    shares = [f"{method} {joules / totals.energy_j:.0%}"
              for method, joules in totals.energy_j_by_method.items()
              if joules and totals.energy_j]
    note = "energy: " + (", ".join(shares) if shares else "none recorded")
    if totals.energy_unknown_requests:
        note += (f"; {totals.energy_unknown_requests:,} of {totals.requests:,} requests "
                 "without an energy figure")
    return note


def _csv_row(key: str, tally: Tally) -> dict[str, Any]:
    d = tally.to_dict()
    by_method = d.pop("energy_j_by_method")
    d.update({f"energy_j_{method}": by_method[method] for method in ENERGY_METHODS})
    return {"key": key, **{k: "" if v is None else v for k, v in d.items()}}


def report_csv(result: Report, by: str) -> str:
    """One row per group (no key: "-"), then a TOTAL row; the first column is named ``by``."""
    rows = [_csv_row(_key(key), tally) for key, tally in result.grouped(by)]
    rows.append(_csv_row("TOTAL", result.totals))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([by, *list(rows[0])[1:]])
    writer.writerows(row.values() for row in rows)
    return out.getvalue()
