"""``inferplane eval VERSION --suite FILE.jsonl``: run an evaluation suite through a running
gateway, pinned to one model version, store the result in the registry (the version's card
shows it in its ``model-index``; ``governance.require_evaluation`` reads it before approval),
and exit 1 when the score is below the suite's threshold, so a CI pipeline can gate on it."""

from __future__ import annotations

import asyncio
import getpass
import os
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import orjson
import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.config import Config
from inferplane.errors import InferplaneError
from inferplane.governance.registry import Registry

if TYPE_CHECKING:  # the suites' modules (jsonschema) load only when a suite runs
    from inferplane.governance.evaluation import EvaluationResult, Suite

BUILTIN_PREFIX = "builtin:"
API_KEY_ENV = "INFERPLANE_API_KEY"
err = Console(stderr=True, highlight=False)


def evaluate(
    version: Annotated[str, typer.Argument(help="The model version to evaluate.")],
    suite: Annotated[str, typer.Option(
        "--suite", help="A suite file (JSONL), or builtin:NAME for a shipped one "
                        "(builtin:builtin-smoke for the built-in model).")],
    config: ConfigOption = None,
    url: Annotated[str | None, typer.Option(
        help="The gateway, e.g. http://127.0.0.1:8080 (default: server.host and port).")] = None,
    judge: Annotated[str | None, typer.Option(
        help="The model that decides the suite's judge checks (default: "
             "governance.judge_model).")] = None,
    concurrency: Annotated[int, typer.Option(min=1, max=64)] = 4,
    record: Annotated[bool, typer.Option(help="Store the result in the registry.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Run a suite against VERSION through the gateway; exit 1 below its threshold.

    The gateway's key comes from $INFERPLANE_API_KEY; pinning a version needs a key with the
    approve or admin scope (or a gateway still in open mode)."""
    from inferplane.governance.eval_runner import Target, run_suite

    cfg = load_or_exit(config)
    model = _model_of(cfg, version)
    parsed = _suite(suite)
    base = url or f"http://{cfg.server.host}:{cfg.server.port}"
    target = Target(base, model, version, os.environ.get(API_KEY_ENV),
                    judge or cfg.governance.judge_model)
    result = asyncio.run(run_suite(parsed, target, concurrency))
    if record:
        _record(cfg, result)
    if as_json:
        typer.echo(orjson.dumps({**result.summary(), "items": [
            {"id": r.id, "passed": r.passed, "answer": r.answer, "error": r.error,
             "checks": [{"check": o.check.describe(), "passed": o.passed, "detail": o.detail}
                        for o in r.outcomes]} for r in result.items]},
            option=orjson.OPT_INDENT_2).decode())
    else:
        _print(result)
    if not result.gate_passed:
        raise typer.Exit(1)


def _model_of(config: Config, version: str) -> str:
    models = {d.model for d in config.deployments if d.version_name == version}
    if not models:
        known = sorted({d.version_name for d in config.deployments})
        _fail(f"no deployment in the configuration has the version '{version}' "
              f"(versions: {', '.join(known)})")
    return models.pop()


def _suite(name: str) -> Suite:
    from inferplane.governance.evaluation import parse_suite

    try:
        if name.startswith(BUILTIN_PREFIX):
            resource = files("inferplane").joinpath(
                f"data/evals/{name.removeprefix(BUILTIN_PREFIX)}.jsonl")
            return parse_suite(resource.read_text(encoding="utf-8"), name)
        return parse_suite(Path(name).read_text(encoding="utf-8"), name)
    except FileNotFoundError:
        _fail(f"no such suite: {name}")
    except InferplaneError as exc:
        _fail(exc.message)


def _record(config: Config, result: EvaluationResult) -> None:
    registry = Registry.open(config.store.url)
    try:
        registry.record_evaluation(
            result.version, f"{result.suite}@{result.suite_version}", "pass_rate", result.score,
            result.gate_passed, f"cli:{getpass.getuser()}", result.threshold, result.summary())
    except InferplaneError as exc:
        _fail(exc.message)
    finally:
        registry.close()


def _print(result: EvaluationResult) -> None:
    table = Table(box=box.SIMPLE_HEAD, title=f"{result.suite} v{result.suite_version} on "
                                            f"{result.version}")
    for column in ("item", "", "answer", "why"):
        table.add_column(column, overflow="fold")
    for r in result.items:
        why = r.error or "; ".join(f"{o.check.describe()}: {o.detail or 'failed'}"
                                   for o in r.outcomes if not o.passed)
        table.add_row(r.id, "pass" if r.passed else "[red]fail[/red]",
                      escape(" ".join(r.answer.split())[:60]), escape(why))
    Console().print(table)
    verdict = "[green]passed[/green]" if result.gate_passed else "[red]failed[/red]"
    Console().print(f"{result.passed}/{result.total} = {result.score:.0%} (threshold "
                    f"{result.threshold:.0%}): {verdict}", highlight=False)


def _fail(message: str) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(2)
