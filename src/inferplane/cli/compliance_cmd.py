"""``inferplane compliance annex-iv|logs``: one AI system's technical documentation (EU AI Act
Annex IV, Markdown and PDF) and its Art. 12 event log for a period, from the configured store."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from inferplane.cli.audit_cmd import open_log
from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.compliance import export

app = typer.Typer(help="EU AI Act exports: Annex IV documentation, the Art. 12 event log.",
                  no_args_is_help=True)

SystemOption = Annotated[str, typer.Option("--system", help="A name under `systems:`.")]
DEFAULT_RULES = Path("deploy/prometheus/inferplane-rules.yml")


def parse_time(text: str, option: str) -> float:
    """An ISO 8601 time (UTC unless it says otherwise), or ``now``, as a Unix time."""
    if text == "now":
        return datetime.now(UTC).timestamp()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter("give an ISO 8601 time, e.g. 2026-05-01T12:00Z, or `now`",
                                 param_hint=option) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


@app.command("annex-iv")
def annex_iv(
    system: SystemOption,
    out: Annotated[Path, typer.Option("--out", help="The directory to write into.")],
    rules: Annotated[Path | None, typer.Option(
        help="The Prometheus rules of the post-market monitoring plan (default: "
             f"{DEFAULT_RULES} when it exists).")] = None,
    config: ConfigOption = None,
) -> None:
    """Write the system's technical documentation, filled from the live registry, ledger and
    audit log, with a signed checkpoint covering it; what only a person can write is marked
    TO BE COMPLETED."""
    rules = rules if rules is not None else (DEFAULT_RULES if DEFAULT_RULES.exists() else None)
    with open_log(config, make_key=False) as log:
        md, pdf, pages = export.annex_iv_files(load_or_exit(config), system, log, out, rules)
    typer.echo(f"{md}\n{pdf} ({pages} pages)")


@app.command()
def logs(
    system: SystemOption,
    out: Annotated[Path, typer.Option("--out", help="The JSON lines file to write.")],
    since: Annotated[str, typer.Option("--from", help="ISO 8601 time (UTC by default).")],
    until: Annotated[str, typer.Option("--to", help="ISO 8601 time, or `now`.")] = "now",
    config: ConfigOption = None,
) -> None:
    """Export the Art. 12 event log of a period: the system's usage records and audit entries,
    in time order, after a header with the checkpoint covering them."""
    start, end = parse_time(since, "--from"), parse_time(until, "--to")
    with open_log(config, make_key=False) as log:
        count = export.event_log_file(load_or_exit(config), system, log, start, end, out)
    typer.echo(f"{out}: {count} lines")
