"""``inferplane config check [FILE]``: validate a configuration file, every problem at once."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from inferplane.config import Config, Problem, check_config, find_config_file, load_config
from inferplane.errors import ConfigError
from inferplane.providers.base import provider_names
from inferplane.text import plural

app = typer.Typer(help="Inspect and validate the configuration (inferplane.yaml).")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="inferplane.yaml (default: ./inferplane.yaml if present)"),
]


@app.callback()
def _config() -> None:
    """Inspect and validate the configuration (inferplane.yaml)."""


def fail_on_problems(problems: Sequence[Problem | str]) -> None:
    """Print each problem to stderr and exit with status 1; return when there is none."""
    if not problems:
        return
    console = Console(stderr=True, highlight=False)
    console.print(f"[bold red]{plural(len(problems), 'problem')} in the configuration:[/]")
    for problem in problems:
        # Text, not markup: a location like deployments[1] must not be read as a style tag.
        console.print(Text(f"  {problem}"), soft_wrap=True)
    raise typer.Exit(1)


def load_or_exit(path: Path | None) -> Config:
    """The configuration every command runs with, or its problems printed and exit 1."""
    try:
        return load_config(path, known_providers=provider_names())
    except ConfigError as exc:
        fail_on_problems(exc.problems or [exc.message])
        raise typer.Exit(1) from exc


@app.command()
def check(
    file: Annotated[
        Path | None,
        typer.Argument(
            help="The file to check. Default: $INFERPLANE_CONFIG, else ./inferplane.yaml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Report every problem in FILE with its line and a fix; exit 1 if there is any."""
    found = find_config_file(file)
    known = provider_names()  # a file may name every installed adapter
    if found is not None:
        fail_on_problems(check_config(found, known_providers=known))
    config = load_config(found, known_providers=known)
    note = "" if found is not None else " (no file: the built-in defaults)"
    typer.echo(f"OK: {plural(len(config.models), 'model')}, "
               f"{plural(len(config.deployments), 'deployment')}{note}")
