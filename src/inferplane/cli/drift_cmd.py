"""``inferplane drift report [--model M] [--json]`` and ``inferplane drift reset [--model M]``:
the running gateway's drift verdicts (``GET /admin/v1/drift``), and making the current traffic
the reference (``POST /admin/v1/drift/reset``). The windows live in the gateway process, so
both ask its admin API."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.api.admin_drift import OFF
from inferplane.cli.admin_http import KEY_ENV, ask, gateway_url
from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.cli.tables import show

app = typer.Typer(help="Drift of each model's traffic from its reference window.",
                  no_args_is_help=True)

ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="One model (or alias).")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", help="The gateway (default: server.host and server.port of the configuration).")]
KeyOption = Annotated[str | None, typer.Option(
    "--key", help=f"An API key with the viewer (report) or admin (reset) scope; default "
                  f"${KEY_ENV}.", show_default=False)]
#: Left out first when the terminal is narrow.
DROP = ("threshold", "statistic", "test", "ref n")


def verdict(row: dict[str, Any]) -> str:
    """>>> verdict({"p_value": None, "drifted": False})
    'insufficient data'
    """
    if row["p_value"] is None:
        return "insufficient data"
    return "DRIFT" if row["drifted"] else "stable"


def _table(rows: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("model", "tenant", "feature", "test", "statistic", "p", "threshold", "ref n",
                 "cur n", "verdict"):
        table.add_column(name, justify="left" if name in ("model", "tenant", "feature", "test",
                                                          "verdict") else "right")
    for row in rows:
        p = row["p_value"]
        table.add_row(escape(row["model"]), escape(row["tenant"] or "all"), row["feature"],
                      row["test"], f"{row['statistic']:.3g}", "-" if p is None else f"{p:.2g}",
                      f"{row['threshold']:.2g}", str(row["reference_n"]), str(row["current_n"]),
                      verdict(row))
    return table


@app.command()
def report(model: ModelOption = None,
           as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
           url: UrlOption = None, key: KeyOption = None, config: ConfigOption = None) -> None:
    """Each feature's latest verdict, per model and per tenant with traffic enough."""
    cfg = load_or_exit(config)
    answer = ask("GET", gateway_url(cfg, url), "/drift", key,
                 {} if model is None else {"model": model}, absent=OFF)
    if as_json:
        typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
        return
    rows = answer["reports"]
    console = Console(highlight=False)
    if not rows:
        console.print("no drift verdicts yet: a model needs "
                      f"{cfg.drift.evaluate_every} sampled requests for its first")
        return
    show(console, _table(rows), DROP)
    drifted = sorted({(r["model"], r["tenant"] or "all") for r in rows if r["drifted"]})
    if drifted:
        names = ", ".join(f"{m} ({t})" for m, t in drifted)
        console.print(f"drift in {names}: look at what changed in its traffic (`inferplane "
                      "report`); once it is the new normal, `inferplane drift reset`",
                      soft_wrap=True)


@app.command()
def reset(model: ModelOption = None, url: UrlOption = None, key: KeyOption = None,
          config: ConfigOption = None) -> None:
    """Make the current window the reference: the traffic now is the new normal."""
    cfg = load_or_exit(config)
    answer = ask("POST", gateway_url(cfg, url), "/drift/reset", key,
                 {} if model is None else {"model": model}, absent=OFF)
    typer.echo(f"reset {answer['reset']} drift windows")
