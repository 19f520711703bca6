"""``inferplane cache stats|purge [--model M] [--tenant T]``: what the response caches hold, and
dropping entries.

Both ask the configured gateway's admin API (``GET`` / ``DELETE /admin/v1/cache``, with the key
in ``--key`` or ``$INFERPLANE_ADMIN_KEY``; none is needed from this machine while no key exists),
so a memory cache is read in the process that holds it. When no gateway answers, a memory cache
holds nothing, and the Redis caches are read or purged in Redis directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cache.service import ResponseCache
from inferplane.cli.admin_http import KEY_ENV, ask, gateway_url
from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.config import Config
from inferplane.errors import InferplaneError

app = typer.Typer(help="Inspect and purge the response caches.", no_args_is_help=True)
err = Console(stderr=True, highlight=False)
T = TypeVar("T")

ModelOption = Annotated[str | None, typer.Option("--model", "-m", help="One model (or alias).")]
TenantOption = Annotated[str | None, typer.Option(
    "--tenant", "-t", help="One tenant ('-': entries made without API keys).")]
UrlOption = Annotated[str | None, typer.Option(
    "--url", help="The gateway (default: server.host and server.port of the configuration).")]
KeyOption = Annotated[str | None, typer.Option(
    "--key", help=f"An API key with the viewer (stats) or admin (purge) scope; default ${KEY_ENV}.",
    show_default=False)]


def _params(model: str | None, tenant: str | None) -> dict[str, str]:
    return {k: v for k, v in {"model": model, "tenant": tenant}.items() if v is not None}


async def _direct_stats(config: Config, model: str | None, tenant: str | None
                        ) -> list[dict[str, Any]]:
    cache = ResponseCache.build(config)
    try:
        return [row for row in await cache.stats(model, tenant) if row["backend"] == "redis"]
    finally:
        await cache.close()


async def _direct_purge(config: Config, model: str | None, tenant: str | None) -> int:
    cache = ResponseCache.build(config)  # a memory store made here is empty: purging it is moot
    try:
        return await cache.purge(model, tenant)
    finally:
        await cache.close()


def _direct(url: str, work: Coroutine[Any, Any, T]) -> T:
    """``work`` on the Redis caches themselves, as no gateway answers at ``url``."""
    err.print(f"no gateway answers at {escape(url)}: memory caches hold nothing; "
              "Redis caches are read in Redis", soft_wrap=True)
    try:
        return asyncio.run(work)
    except InferplaneError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        raise typer.Exit(1) from None


@app.command()
def stats(model: ModelOption = None, tenant: TenantOption = None,
          as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
          url: UrlOption = None, key: KeyOption = None, config: ConfigOption = None) -> None:
    """Entries and bytes per cached model, with the backend and its limits."""
    cfg = load_or_exit(config)
    base = gateway_url(cfg, url)
    answer = ask("GET", base, "/cache", key, _params(model, tenant), offline_ok=True)
    rows = (_direct(base, _direct_stats(cfg, model, tenant)) if answer is None
            else answer["models"])
    if as_json:
        typer.echo(orjson.dumps({"models": rows}, option=orjson.OPT_INDENT_2).decode())
        return
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for name in ("model", "backend", "tenant", "entries", "bytes", "ttl s", "max entries"):
        table.add_column(name, justify="left" if name in ("model", "backend", "tenant")
                         else "right")
    for row in rows:
        table.add_row(escape(row["model"]), row["backend"], escape(row["tenant"] or "all"),
                      f"{row['entries']:,}", f"{row['bytes']:,}", f"{row['ttl_s']:g}",
                      f"{row['max_entries']:,}")
    Console(highlight=False).print(table if rows else "no cached models")


@app.command()
def purge(model: ModelOption = None, tenant: TenantOption = None, url: UrlOption = None,
          key: KeyOption = None, config: ConfigOption = None) -> None:
    """Drop the entries of one model or all, of one tenant or all."""
    cfg = load_or_exit(config)
    base = gateway_url(cfg, url)
    answer = ask("DELETE", base, "/cache", key, _params(model, tenant), offline_ok=True)
    purged = (_direct(base, _direct_purge(cfg, model, tenant)) if answer is None
              else answer["purged"])
    typer.echo(f"purged {purged} entries")
