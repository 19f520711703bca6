"""``inferplane keys create|list|rotate|revoke`` and ``inferplane tenants create|set|list``:
manage API keys and tenants in the configured store (the running gateways see each change
within ``tenancy.poll_interval_ms``). Every change is recorded as an admin event whose actor
is ``cli:<user>``."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
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
from inferplane.errors import InferplaneError
from inferplane.tenancy.budget import MAX_RPM, MAX_TPM, Budget, parse_budget, parse_duration
from inferplane.tenancy.keys import Scope, key_id
from inferplane.tenancy.records import ApiKey, Tenant
from inferplane.tenancy.store import TenancyStore, describe

app = typer.Typer(help="Create, list, rotate and revoke API keys.", no_args_is_help=True)
tenants_app = typer.Typer(help="Create, change and list tenants.", no_args_is_help=True)
err = Console(stderr=True)
T = TypeVar("T")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
RpmOption = Annotated[int | None, typer.Option("--rpm", min=1, max=MAX_RPM,
                                               help="Requests per minute.")]
TpmOption = Annotated[float | None, typer.Option("--tpm", min=1, max=MAX_TPM,
                                                 help="Tokens per minute.")]
BudgetOption = Annotated[str | None, typer.Option(
    "--budget", help="Spend per period, e.g. 100usd/month, 5usd/day, 50usd/total.")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _store(config_path: Path | None) -> Iterator[TenancyStore]:
    store = TenancyStore.open(load_or_exit(config_path).store.url)
    try:
        yield store
    except InferplaneError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        raise typer.Exit(1) from None
    finally:
        store.close()


def _parsed(parse: Callable[[str], T], value: str, option: str) -> T:
    try:
        return parse(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _budget(value: str | None) -> Budget | None:
    return None if value is None else _parsed(parse_budget, value, "--budget")


def _key_ref(value: str) -> str:
    """A key named by its id or given whole (its id is read from it)."""
    return key_id(value) or value


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(p.strip() for p in (value or "").split(",") if p.strip())


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_key(secret: str, key: ApiKey) -> None:
    typer.echo(secret)  # stdout: only the key, for scripts
    err.print(f"key [bold]{key.id}[/] for tenant [green]{escape(key.tenant)}[/]: shown once, "
              "only its hash is stored", highlight=False)


@app.command()
def create(
    tenant: Annotated[str, typer.Option(help="The tenant the key belongs to (created if new).")],
    name: Annotated[str | None, typer.Option(help="A label for the key.")] = None,
    scopes: Annotated[str, typer.Option(
        help="Comma-separated: inference, read:ledger, viewer, admin, approve.")] = "inference",
    models: Annotated[str | None, typer.Option(
        help="Comma-separated model name patterns it may use, e.g. 'chat-*' (default: all).")
    ] = None,
    residency: Annotated[str | None, typer.Option(
        help="Comma-separated regions/jurisdictions its requests must stay in, e.g. eu.")
    ] = None,
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    budget: BudgetOption = None,
    expires: Annotated[str | None, typer.Option(help="Lifetime, e.g. 90d, 12h.")] = None,
    config: ConfigOption = None,
) -> None:
    """Create a key and print it once (on stdout)."""
    try:
        scope_set = frozenset(Scope(s) for s in _split(scopes))
    except ValueError:
        raise typer.BadParameter(f"known scopes: {', '.join(Scope)}",
                                 param_hint="--scopes") from None
    if not scope_set:
        raise typer.BadParameter("give at least one scope", param_hint="--scopes")
    lifetime = None if expires is None else _parsed(parse_duration, expires, "--expires")
    spec = ApiKey(
        id="", tenant=tenant, name=name, scopes=scope_set, models=_split(models),
        residency=_split(residency) or None, rpm=rpm, tpm=None if tpm is None else int(tpm),
        budget=_budget(budget),
        expires_at=None if lifetime is None else time.time() + lifetime)
    with _store(config) as store:
        store.ensure_tenant(tenant, _actor())
        key, secret = store.create_key(spec, _actor())
    _print_key(secret, key)


@app.command("list")
def list_keys(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's keys.")] = None,
    json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """List keys (never their secrets)."""
    with _store(config) as store:
        keys = store.keys(tenant)
    if json:
        typer.echo(orjson.dumps([describe(k) for k in keys], option=orjson.OPT_INDENT_2))
        return
    table = Table(box=box.SIMPLE)
    for column in ("id", "tenant", "name", "scopes", "models", "limits", "expires", "state"):
        table.add_column(column, no_wrap=column in ("id", "state"), overflow="fold")
    now = time.time()
    for k in keys:
        limits = ", ".join(x for x in (f"{k.rpm} rpm" if k.rpm else "",
                                       f"{k.tpm} tpm" if k.tpm else "",
                                       str(k.budget) if k.budget else "") if x)
        state = ("revoked" if k.revoked_at is not None
                 else "expired" if not k.active(now) else "active")
        table.add_row(k.id, escape(k.tenant), escape(k.name or ""), ",".join(sorted(k.scopes)),
                      escape(",".join(k.models) or "*"), limits, _when(k.expires_at), state)
    show(Console(), table, ("name", "scopes", "expires", "limits"))


@app.command()
def rotate(
    key: Annotated[str, typer.Argument(help="The key's id (or the whole key).")],
    grace: Annotated[str | None, typer.Option(
        help="How long the old key keeps working, e.g. 1h (default: it stops now).")] = None,
    config: ConfigOption = None,
) -> None:
    """Replace a key with a new one of the same settings; print the new one once."""
    grace_s = 0.0 if grace is None else _parsed(parse_duration, grace, "--grace")
    with _store(config) as store:
        new, secret = store.rotate_key(_key_ref(key), _actor(), grace_s)
    _print_key(secret, new)


@app.command()
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id (or the whole key).")],
    config: ConfigOption = None,
) -> None:
    """Revoke a key: every gateway refuses it within a second."""
    with _store(config) as store:
        revoked = store.revoke_key(_key_ref(key), _actor())
    err.print(f"key [bold]{revoked.id}[/] revoked", highlight=False)


def _limits(rpm: int | None, tpm: float | None, budget: str | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if rpm is not None:
        changes["rpm"] = rpm
    if tpm is not None:
        changes["tpm"] = int(tpm)
    if budget is not None:
        changes["budget"] = None if budget == "none" else _budget(budget)
    return changes


@tenants_app.command("create")
def create_tenant(
    name: Annotated[str, typer.Argument()],
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    budget: BudgetOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a tenant with limits shared by all its keys."""
    with _store(config) as store:
        store.create_tenant(Tenant(name, **_limits(rpm, tpm, budget)), _actor())
    err.print(f"tenant [green]{escape(name)}[/] created", highlight=False)


@tenants_app.command("set")
def set_tenant(
    name: Annotated[str, typer.Argument()],
    rpm: RpmOption = None,
    tpm: TpmOption = None,
    budget: BudgetOption = None,
    config: ConfigOption = None,
) -> None:
    """Change a tenant's limits (``--budget none`` removes its budget)."""
    with _store(config) as store:
        tenant = store.update_tenant(name, _limits(rpm, tpm, budget), _actor())
    err.print(f"tenant [green]{escape(name)}[/]: {describe(tenant)}", highlight=False)


@tenants_app.command("list")
def list_tenants(json: JsonOption = False, config: ConfigOption = None) -> None:
    """List tenants and their limits."""
    with _store(config) as store:
        tenants = store.tenants()
    if json:
        typer.echo(orjson.dumps([describe(t) for t in tenants], option=orjson.OPT_INDENT_2))
        return
    table = Table(box=box.SIMPLE)
    for column in ("tenant", "rpm", "tpm", "budget", "created"):
        table.add_column(column)
    for t in tenants:
        table.add_row(escape(t.name), str(t.rpm or ""), str(t.tpm or ""),
                      str(t.budget or ""), _when(t.created_at))
    show(Console(), table, ("created",))
