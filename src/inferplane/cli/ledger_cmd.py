"""``inferplane ledger tail|stats``: read the usage ledger.

Both commands open the ledger as the gateway does (recovering records still only in the WAL,
e.g. after a crash); while a gateway holds the WAL they read the store, which that gateway's
committer keeps no more than ``commit_interval_ms`` behind.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.cli.tables import show
from inferplane.gateway import open_ledger
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store
from inferplane.ledger.wal import LedgerLocked, WalDirRefused
from inferplane.ledger.waldir import wal_root

app = typer.Typer(help="Read the usage ledger: one record per request.", no_args_is_help=True)

T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def query_ledger(config_path: Path | None, query: Callable[[Store], T]) -> T:
    """Run ``query`` on the store of the configured ledger (its WAL replayed first, unless a
    running gateway holds it); what ``query`` returns must not need the store any more."""
    config = load_or_exit(config_path)
    try:
        ledger = open_ledger(config, wal_root(config.ledger.dir, config.store.url))
    except LedgerLocked:  # a running gateway holds the WAL and commits it itself
        return _query_store(config.store.url, query)
    except WalDirRefused as exc:  # not this store's records: read the store alone
        Console(stderr=True).print(f"[bold yellow]warning:[/] {escape(str(exc))}",
                                   highlight=False, soft_wrap=True)
        return _query_store(config.store.url, query)
    try:
        return query(ledger.store)
    finally:
        ledger.close()


def _query_store(url: str, query: Callable[[Store], T]) -> T:
    store = Store.open(url)
    try:
        return query(store)
    finally:
        store.close()


@app.command()
def tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many records.")] = 20,
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The newest records, newest last."""
    records = query_ledger(config, lambda store: store.tail(n, model))
    if as_json:
        sys.stdout.buffer.write(b"".join(_json_line(r.to_dict()) for r in records))
        sys.stdout.flush()
    else:
        show(Console(), tail_table(records), TAIL_DROP)


@app.command()
def stats(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Requests, errors, tokens, cost and latency percentiles, per model and overall."""
    summary = query_ledger(config, lambda store: store.stats())
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2) + b"\n")
        sys.stdout.flush()
        return
    console = Console()
    show(console, stats_table(summary), STATS_DROP)
    errors = errors_table(summary)
    if errors.row_count:
        show(console, errors)


def _json_line(data: dict[str, Any]) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_APPEND_NEWLINE)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


#: The columns a narrow terminal leaves out, first to last (``cli/tables.py``).
TAIL_DROP = ("ttft", "in", "$", "deploy", "time")
STATS_DROP = ("engine s", "p95 ms", "ttft p99", "2xx", "4xx", "5xx", "in tokens", "p99 ms",
              "ttft p50", "errors")


def tail_table(records: list[UsageRecord]) -> Table:
    table = Table(title=f"last {len(records)} requests", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("time", no_wrap=True)
    table.add_column("model", min_width=5, overflow="fold")
    table.add_column("deploy", overflow="fold")
    for name in ("status", "in", "out", "ttft", "ms", "$"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("outcome", overflow="fold")
    for r in records:
        when = datetime.fromtimestamp(r.ts).strftime("%m-%d %H:%M:%S")
        style = "red" if r.status >= 500 else "yellow" if r.status >= 400 else "green"
        table.add_row(
            when,
            escape(r.model),
            escape(r.deployment or "-"),
            f"[{style}]{r.status}[/]",
            f"{r.prompt_tokens:,}",
            f"{r.completion_tokens:,}",
            _ms(r.ttft_ms),
            _ms(r.latency_ms),
            f"{r.cost_usd:.6f}",
            escape(r.error_type or r.finish_reason or ""),
        )
    return table


def stats_table(summary: dict[str, Any]) -> Table:
    table = Table(title="usage by model", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("model", overflow="fold")
    for name in ("requests", "errors", "2xx", "4xx", "5xx", "in tokens", "out tokens", "cost $",
                 "engine s", "p50 ms", "p95 ms", "p99 ms", "ttft p50", "ttft p99"):
        table.add_column(name, justify="right", no_wrap=True)
    rows = [(escape(m), s) for m, s in summary["models"].items()]
    rows.append(("[bold]all[/]", summary["overall"]))
    for name, s in rows:
        latency, ttft = s["latency_ms"], s["ttft_ms"]
        table.add_row(
            name,
            f"{s['requests']:,}",
            f"{s['errors']:,}",
            *(f"{s['status'].get(c, 0):,}" for c in ("2xx", "4xx", "5xx")),
            f"{s['prompt_tokens']:,}",
            f"{s['completion_tokens']:,}",
            f"{s['cost_usd']:.4f}",
            f"{s['engine_seconds']:,.1f}",
            *(_ms(latency[p]) for p in ("p50", "p95", "p99")),
            *(_ms(ttft[p]) for p in ("p50", "p99")),
        )
    return table


def errors_table(summary: dict[str, Any]) -> Table:
    table = Table(title="errors by type", title_justify="left", box=box.SIMPLE_HEAD)
    for name in ("model", "error type", "requests"):
        table.add_column(name, justify="right" if name == "requests" else "left",
                         overflow="fold")
    for model, s in summary["models"].items():
        for error_type, count in s["error_types"].items():
            table.add_row(escape(model), escape(error_type), f"{count:,}")
    return table
