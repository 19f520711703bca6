"""``inferplane models list|show|card|approve|rollout|rollback|retire|history`` and
``inferplane kill|unkill``: the model registry and the kill switch, straight on the configured
store (every gateway process applies a change within ``governance.poll_interval_ms``). Each
change is recorded with the actor ``cli:<user>``; the CLI acts with the store's credentials,
so for four eyes that the store enforces, approve through the admin API with ``approve`` keys
(docs/governance.md)."""

from __future__ import annotations

import getpass
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.config import Config
from inferplane.errors import InferplaneError
from inferplane.governance import views
from inferplane.governance.kills import KillKind, check_target
from inferplane.governance.registry import Registry, Version
from inferplane.governance.rollout import Move
from inferplane.governance.stages import BY_HAND, Stage
from inferplane.ledger.report import parse_time

app = typer.Typer(help="The model registry: versions, cards, approvals, rollout, history.",
                  no_args_is_help=True)
err = Console(stderr=True, highlight=False)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ReasonOption = Annotated[str | None, typer.Option("--reason", help="Why (recorded).")]


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _registry(config_path: Path | None) -> Iterator[tuple[Registry, Config]]:
    config = load_or_exit(config_path)
    registry = Registry.open(config.store.url)
    try:
        yield registry, config
    except InferplaneError as exc:
        err.print(f"[bold red]error:[/] {escape(exc.message)}")
        raise typer.Exit(1) from None
    finally:
        registry.close()


def _json(value: Any) -> None:
    typer.echo(orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))


def _when(ts: float | None) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _print_moves(moves: list[Move]) -> None:
    for m in moves:
        err.print(f"{escape(m.version)}: {m.from_stage} -> [bold]{m.to_stage}[/]")


@app.command("list")
def list_versions(
    model: Annotated[str | None, typer.Option(help="Only this model's versions.")] = None,
    json: JsonOption = False, config: ConfigOption = None,
) -> None:
    """Every registered version, its stage, approvals and card."""
    with _registry(config) as (registry, _cfg):
        versions = [registry.version(v.version) for v in registry.versions(model)]
    if json:
        _json([v.to_dict() for v in versions])
        return
    table = Table(box=box.SIMPLE)
    for column in ("version", "model", "stage", "approvals", "card", "registered", "gate"):
        table.add_column(column)
    for v in versions:
        table.add_row(escape(v.version), escape(v.model), _stage(v), str(len(v.approvals)),
                      "yes" if v.card else "no", _when(v.registered_at), escape(_gate(v)))
    Console().print(table)


def _stage(v: Version) -> str:
    """The stage, with the percent of a shadow or canary."""
    percent = (v.rollout or {}).get("percent")
    if v.stage in (Stage.SHADOW, Stage.CANARY) and percent is not None:
        return f"{v.stage} {percent:g}%"
    return str(v.stage)


def _gate(v: Version) -> str:
    """The latest verdict of its rollout's gates, with the reasons."""
    gate = (v.rollout or {}).get("gate")
    if not gate:
        return ""
    return f"{gate['outcome']}: {'; '.join(gate['reasons'])}" if gate["reasons"] else (
        gate["outcome"])


@app.command()
def show(version: str, config: ConfigOption = None) -> None:
    """A version: its stage, approvals, evaluations and every lifecycle event (JSON)."""
    with _registry(config) as (registry, _cfg):
        _json({**registry.version(version).to_dict(),
               "events": registry.events(target=version, limit=None)})


@app.command()
def card(
    version: str,
    edit: Annotated[Path | None, typer.Option(
        "--edit", help="Store this file (Hugging Face model card Markdown) as the card.")] = None,
    config: ConfigOption = None,
) -> None:
    """Print the version's card (environmental impact from the ledger), or store one."""
    with _registry(config) as (registry, cfg):
        if edit is not None:
            registry.store_card(version, edit.read_text(encoding="utf-8"), _actor())
            err.print(f"card of [bold]{escape(version)}[/] stored")
        shown = views.card(registry, version, cfg.governance.card_fields)
    if edit is None:
        typer.echo(shown["card"], nl=False)
    if shown["missing"]:
        err.print(f"missing for approval: {escape(', '.join(shown['missing']))}")


@app.command()
def approve(
    version: str,
    comment: Annotated[str | None, typer.Option(help="Recorded with the approval.")] = None,
    config: ConfigOption = None,
) -> None:
    """Approve a version (not its proposer's; its card complete)."""
    with _registry(config) as (registry, cfg):
        found, verdict = registry.approve(version, _actor(), cfg.governance, comment)
    err.print(f"{escape(version)}: {verdict.count} of {verdict.required} approvals; "
              f"stage [bold]{found.stage}[/]")


@app.command()
def rollout(
    model: str,
    to: Annotated[str, typer.Option("--to", help="The version to roll out.")],
    stage: Annotated[str, typer.Option(
        help="shadow (mirrored requests), canary (a share of them) or production (all).")
                     ] = "production",
    percent: Annotated[float | None, typer.Option(
        help="Shadow: the share of requests mirrored (default 100); canary: the share served, "
             "sticky per session or user (default 5). Rolling a canary out again changes it.")
                       ] = None,
    promote_after: Annotated[str | None, typer.Option(
        help="Canary: promote it to production once its gates have passed for this long "
             "(30m, 2h).")] = None,
    reason: ReasonOption = None, config: ConfigOption = None,
) -> None:
    """Put a version of MODEL in shadow, canary or production (the current production steps
    down). Shadow and canary are judged against production on live traffic and rolled back
    automatically when a gate fails."""
    if stage not in {str(s) for s in BY_HAND}:
        raise typer.BadParameter(f"'{stage}' is not one of shadow, canary, production",
                                 param_hint="--stage")
    after = None if promote_after is None else _duration(promote_after, "--promote-after")
    with _registry(config) as (registry, cfg):
        if registry.version(to).model != model:
            raise typer.BadParameter(f"'{to}' is not a version of '{model}'", param_hint="--to")
        _print_moves(registry.rollout(to, Stage(stage), _actor(), reason, cfg.governance,
                                      percent, after))
        shown = registry.version(to).rollout
    if stage != Stage.PRODUCTION and shown is not None:
        err.print(f"{escape(to)} takes {shown['percent']:g}% of '{escape(model)}'"
                  + ("'s requests" if stage == Stage.CANARY else " requests, mirrored"))


def _duration(text: str, option: str) -> float:
    """A span such as 30m or 2h, in seconds."""
    now = time.time()
    if text.strip()[-1:].lower() not in tuple("smhdw"):  # not a moment: a span
        raise typer.BadParameter(f"'{text}' is not a span such as 30m or 2h", param_hint=option)
    seconds = now - _parsed_time(text, now, option)
    if seconds <= 0:
        raise typer.BadParameter(f"'{text}' is not a span such as 30m or 2h", param_hint=option)
    return seconds


@app.command()
def rollback(model: str, reason: ReasonOption = None, config: ConfigOption = None) -> None:
    """Take MODEL's shadow or canary version out of its rollout; without one, give production
    back to the versions its latest rollout replaced."""
    with _registry(config) as (registry, cfg):
        _print_moves(registry.rollback(model, _actor(), reason, cfg.governance))


@app.command()
def retire(
    version: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded).")],
    config: ConfigOption = None,
) -> None:
    """Retire a version: it never serves again."""
    with _registry(config) as (registry, cfg):
        registry.retire(version, _actor(), reason, cfg.governance)
    err.print(f"{escape(version)} retired")


@app.command()
def history(
    model: str,
    at: Annotated[str | None, typer.Option(
        help="The moment: ISO date-time (UTC unless it has an offset), Unix seconds, or a span "
             "before now (10m). Left out: every event of the model.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's requests.")] = None,
    window: Annotated[str, typer.Option(help="Requests counted before --at.")] = "5m",
    config: ConfigOption = None,
) -> None:
    """Which version(s) of MODEL served at a moment (JSON), or its whole lifecycle."""
    now = time.time()
    with _registry(config) as (registry, _cfg):
        if at is None:
            _json(registry.events(model=model, limit=None))
            return
        moment = _moment(at, now)
        window_s = now - _parsed_time(window, now, "--window")
        _json(views.history(registry, model, moment, tenant, window_s))


def _parsed_time(text: str, now: float, option: str) -> float:
    try:
        return parse_time(text, now)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=option) from None


def _moment(text: str, now: float) -> float:
    try:
        return float(text)
    except ValueError:
        return _parsed_time(text, now, "--at")


def kill(
    kind: KillKind, name: str,
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded, and told to clients).")],
    config: ConfigOption = None,
) -> None:
    """Stop all traffic to a deployment, model or provider on every gateway process."""
    with _registry(config) as (registry, cfg):
        check_target(kind, name, cfg.deployments)
        registry.kill(kind, name, reason, _actor())
    err.print(f"{kind} [bold]{escape(name)}[/] killed: {escape(reason)}")


def unkill(kind: KillKind, name: str, reason: ReasonOption = None,
           config: ConfigOption = None) -> None:
    """Lift a kill."""
    with _registry(config) as (registry, _cfg):
        registry.unkill(kind, name, _actor(), reason)
    err.print(f"{kind} [bold]{escape(name)}[/]: kill lifted")
