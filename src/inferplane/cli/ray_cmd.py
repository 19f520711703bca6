"""``inferplane ray serve --config FILE``: a deployment's engine as Ray Serve replicas on a
running Ray cluster (``inferplane.ray``; needs the ``ray`` extra). FILE holds the application's
arguments, the same mapping as the Helm chart's ``rayService.config`` (docs/deploy.md)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Engines on Ray Serve.", no_args_is_help=True)
console = Console(stderr=True)


@app.command()
def serve(
    config: Annotated[Path, typer.Option("--config", "-c", help="The application's arguments "
                                         "(YAML).")],
    address: Annotated[str, typer.Option(help="The Ray cluster (ray.init's address).")] = "auto",
    name: Annotated[str, typer.Option(help="The Serve application's name.")] = "engines",
    route_prefix: Annotated[str, typer.Option(help="Where the app's routes start.")] = "/",
    host: Annotated[str, typer.Option(help="Serve's HTTP host, where Serve is not running "
                                      "yet.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Serve's HTTP port, likewise.")] = 8000,
) -> None:
    """Deploy the application and return once its replicas are up; it keeps running on the
    cluster (``serve shutdown`` or ``ray stop`` ends it)."""
    if importlib.util.find_spec("ray") is None:
        console.print("[red]Ray is not installed[/]: pip install 'inferplane[ray]'")
        raise typer.Exit(2)
    # a fresh process that loads Ray first (inferplane/ray/deploy.py says why)
    argv = [sys.executable, "-m", "inferplane.ray.deploy", str(config), address, name,
            route_prefix, host, str(port)]
    os.execv(sys.executable, argv)
