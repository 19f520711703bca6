"""``inferplane incidents open|list|report|export``: serious incidents and their Art. 73
reporting deadlines, each change an audit-log entry."""

from __future__ import annotations

import getpass
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from inferplane.cli.audit_cmd import open_log
from inferplane.cli.compliance_cmd import parse_time
from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.cli.tables import show
from inferplane.compliance import export
from inferplane.compliance.annex_iv import when
from inferplane.compliance.deadlines import IncidentKind
from inferplane.compliance.incidents import Incidents
from inferplane.compliance.scope import scope_of
from inferplane.ledger.store import make_engine

app = typer.Typer(help="Serious incidents and their reporting deadlines (EU AI Act Art. 73).",
                  no_args_is_help=True)


def _incidents(config: Path | None) -> Incidents:
    """The store's incidents (``open_log`` has migrated it)."""
    return Incidents(make_engine(load_or_exit(config).store.url))


def _left(seconds: float) -> str:
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    return f"{sign}{int(seconds // 86400)}d {int(seconds % 86400 // 3600)}h"


@app.command("open")
def open_incident(
    system: Annotated[str, typer.Option("--system", help="A name under `systems:`.")],
    kind: Annotated[IncidentKind, typer.Option(help="What happened (sets the deadline).")],
    detected: Annotated[str, typer.Option(help="When you became aware of it (ISO 8601).")],
    summary: Annotated[str, typer.Option(help="What happened, in a line.")],
    config: ConfigOption = None,
) -> None:
    """Open a serious incident and start its reporting clock: 2 days (widespread infringement,
    critical infrastructure), 10 (a death) or 15 (otherwise) from awareness."""
    with open_log(config, make_key=False):
        scope_of(load_or_exit(config), system)
        found = _incidents(config).open(
            system, kind, parse_time(detected, "--detected"), summary,
            f"cli:{getpass.getuser()}")
    typer.echo(f"incident {found.id} opened; initial report due {when(found.due_at)}")


@app.command("list")
def list_incidents(
    system: Annotated[str | None, typer.Option("--system")] = None,
    config: ConfigOption = None,
) -> None:
    """Every incident, the soonest deadline first: its state and the time left."""
    now = time.time()
    table = Table("id", "system", "kind", "aware since", "report due", "left", "state",
                  "summary")
    with open_log(config, make_key=False):
        for i in _incidents(config).all(system):
            table.add_row(str(i.id), i.system, str(i.kind), when(i.detected_at),
                          when(i.due_at),
                          _left(i.due_at - now) if i.clock.pending_deadline() else "-",
                          i.clock.state(now), i.summary)
    show(Console(), table, drop=("summary",))


@app.command()
def report(
    incident: Annotated[int, typer.Option("--id", help="The incident.")],
    initial: Annotated[Path | None, typer.Option("--initial", help="The initial report.")
                       ] = None,
    final: Annotated[Path | None, typer.Option("--final", help="The final report.")] = None,
    config: ConfigOption = None,
) -> None:
    """Record the initial or the final report (its text is kept; its hash is logged)."""
    if (initial is None) == (final is None):
        raise typer.BadParameter("give --initial FILE or --final FILE")
    path = initial or final
    assert path is not None
    with open_log(config, make_key=False):
        found = _incidents(config).report(incident, "initial" if initial else "final",
                                          path.read_text(), f"cli:{getpass.getuser()}")
    typer.echo(f"incident {found.id}: {found.clock.state(time.time())}")


@app.command("export")
def export_incident(
    incident: Annotated[int, typer.Option("--id", help="The incident.")],
    out: Annotated[Path, typer.Option("--out", help="The directory to write into.")],
    since: Annotated[str | None, typer.Option("--from", help="Window start (default: a day "
                                              "before awareness).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Window end (default: now).")
                     ] = None,
    config: ConfigOption = None,
) -> None:
    """Write a report draft with the facts of the affected window from the ledger and the
    audit log."""
    window = (None if since is None else parse_time(since, "--from"),
              None if until is None else parse_time(until, "--to"))
    with open_log(config, make_key=False) as log:
        path = export.incident_files(load_or_exit(config), incident, log, out, window)
    typer.echo(str(path))
