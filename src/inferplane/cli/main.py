"""The ``inferplane`` command: thin wrappers that parse arguments and call the library."""

from __future__ import annotations

import logging
import os
import signal
from typing import Annotated

import typer
import uvicorn
from rich.console import Console
from rich.markup import escape

from inferplane import __version__
from inferplane.api.app import WORKER_CONFIG_ENV, build_app, worker_app
from inferplane.cli import (
    audit_cmd,
    cache_cmd,
    compliance_cmd,
    config_cmd,
    drift_cmd,
    eval_cmd,
    incidents_cmd,
    keys_cmd,
    ledger_cmd,
    models_cmd,
    plan_cmd,
    ray_cmd,
    report_cmd,
)
from inferplane.cli.config_cmd import ConfigOption
from inferplane.cli.lifecycle import DrainingServer, announce_start, announce_stop, own_ctrl_c
from inferplane.errors import ConfigError
from inferplane.ledger.store import migrate
from inferplane.ledger.waldir import wal_root
from inferplane.secrets import missing_secrets

app = typer.Typer(help="Inferplane: one endpoint in front of every model.", no_args_is_help=True)
app.add_typer(config_cmd.app, name="config")
app.add_typer(ledger_cmd.app, name="ledger")
app.add_typer(plan_cmd.app, name="plan")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(keys_cmd.tenants_app, name="tenants")
app.add_typer(models_cmd.app, name="models")
app.add_typer(cache_cmd.app, name="cache")
app.add_typer(audit_cmd.app, name="audit")
app.add_typer(compliance_cmd.app, name="compliance")
app.add_typer(incidents_cmd.app, name="incidents")
app.add_typer(drift_cmd.app, name="drift")
app.add_typer(ray_cmd.app, name="ray")
app.command("report")(report_cmd.report)
app.command("kill")(models_cmd.kill)
app.command("unkill")(models_cmd.unkill)
app.command("eval")(eval_cmd.evaluate)
console = Console(stderr=True)


@app.command()
def up(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Listen address (server.host)")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (server.port)")] = None,
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="Gateway processes sharing the port; more than 1 needs redis.url."
    )] = 1,
) -> None:
    """Start the gateway and the engines it supervises; Ctrl-C or SIGTERM stops it cleanly."""
    cfg = config_cmd.load_or_exit(config)
    if workers > 1 and cfg.redis.url is None:
        console.print("[bold red]error:[/] --workers > 1 needs `redis: {url: ...}` in the "
                      "configuration: rate limits and budgets must be shared by the processes, "
                      "or each would allow the whole limit.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    server_cfg = cfg.server.model_copy(
        update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    )
    cfg = cfg.model_copy(update={"server": server_cfg})
    missing = missing_secrets(cfg.deployments)
    if missing:
        for problem in missing:
            console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        application = build_app(cfg, on_start=announce_start, on_stop=announce_stop)
    except ConfigError as exc:  # e.g. an unknown accounting.intensity_source
        console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    settings = {"host": server_cfg.host, "port": server_cfg.port, "loop": "uvloop",
                "http": "httptools", "lifespan": "on", "access_log": False,
                "log_level": "warning",
                "timeout_graceful_shutdown": int(server_cfg.shutdown_grace_s)}
    if workers > 1:  # each worker builds its own app from the same configuration
        migrate(cfg.store.url)  # once, here: workers migrating at once would race
        os.environ[WORKER_CONFIG_ENV] = cfg.model_dump_json()
        console.print(f"[bold]Inferplane {__version__}[/bold]: {workers} workers on "
                      f"[cyan]http://{server_cfg.host}:{server_cfg.port}/v1[/cyan], limits "
                      f"shared through Redis; ledger WALs in "
                      f"{wal_root(cfg.ledger.dir, cfg.store.url)}/worker-N")
        uvicorn.run(f"{worker_app.__module__}:{worker_app.__name__}", factory=True,
                    workers=workers, **settings)  # type: ignore[arg-type]
        return
    server = DrainingServer(uvicorn.Config(application, **settings))  # type: ignore[arg-type]
    # uvicorn re-raises the signal that stopped it once shutdown is complete; after a clean
    # drain, exit with status 0 instead of dying by that signal.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    with own_ctrl_c():
        server.run()
    if not server.started:  # start-up failed (the cause is logged above)
        raise typer.Exit(1)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)

