"""``inferplane audit checkpoint|verify|prove``: sign the audit log's tree head, check the whole
log against a checkpoint saved earlier (naming the first entry that differs), and print RFC
9162 proofs, reading the configured store directly."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from inferplane.audit.checkpoint import CheckpointError, SignedCheckpoint, parse
from inferplane.audit.log import AuditLog
from inferplane.audit.signer import Verifier, parse_verifier
from inferplane.cli.config_cmd import ConfigOption, load_or_exit
from inferplane.errors import ConfigError, InferplaneError
from inferplane.gateway import audit_key_file

app = typer.Typer(help="The tamper-evident audit log: checkpoints, verification, proofs.",
                  no_args_is_help=True)
err = Console(stderr=True, highlight=False)

KeyOption = Annotated[list[str] | None, typer.Option(
    "--key", help="A verifier key (<name>+<id>+<key>) or a file holding one; repeatable. "
                  "Default: the public half of the configured signing key.")]


def _fail(message: str) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(1)


@contextmanager
def open_log(config: Path | None, *, make_key: bool) -> Iterator[AuditLog]:
    cfg = load_or_exit(config)
    key = audit_key_file(cfg)
    try:
        log = AuditLog.open(cfg.store.url, key_file=key if make_key or key.exists() else None,
                            origin=cfg.audit.origin)
    except ConfigError as exc:
        raise _fail(exc.message) from None
    try:
        yield log
    except InferplaneError as exc:
        raise _fail(exc.message) from None
    finally:
        log.close()


def _verifiers(log: AuditLog, keys: list[str] | None) -> list[Verifier]:
    found: list[Verifier] = []
    for key in keys or []:
        text = Path(key).read_text() if Path(key).is_file() else key
        try:
            found.append(parse_verifier(text))
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--key") from None
    if not found and log.verifier is not None:
        found.append(log.verifier)
    if not found:
        raise _fail("no verifier key: pass --key, or run where the signing key is")
    return found


@app.command()
def checkpoint(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write it to FILE.")
                   ] = None,
    config: ConfigOption = None,
) -> None:
    """Sign the current tree head and print the checkpoint (a C2SP signed note); keep it to
    verify the log against later."""
    with open_log(config, make_key=True) as log:
        signed = log.checkpoint()
        verifier = log.verifier
    if out is not None:
        out.write_text(signed.text)
    sys.stdout.write(signed.text)
    vkey = verifier.text() if verifier is not None else "-"
    err.print(f"tree size {signed.checkpoint.size}; verifier key: {vkey}", soft_wrap=True)


@app.command()
def verify(
    since_checkpoint: Annotated[Path | None, typer.Option(
        "--since-checkpoint", help="A checkpoint saved earlier: the log must still hold "
                                   "exactly the tree it signed, and extend it.")] = None,
    key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    config: ConfigOption = None,
) -> None:
    """Recompute the tree from every entry and check it against the saved checkpoint, the
    checkpoints kept in the database and the tree head; exit 1 naming the first entry that
    differs when rows were edited, deleted, reordered or truncated; then every usage record
    against the digest of the ledger batch entry that covers it, naming the records edited,
    deleted or added."""
    saved: SignedCheckpoint | None = None
    if since_checkpoint is not None:
        try:
            saved = parse(since_checkpoint.read_text())
        except (OSError, CheckpointError) as exc:
            raise _fail(f"{since_checkpoint}: {exc}") from None
    with open_log(config, make_key=False) as log:
        report = log.verify(saved, _verifiers(log, key))
    if as_json:
        typer.echo(orjson.dumps({
            "ok": report.ok, "size": report.size, "root_hash": report.root.hex(),
            "first_bad_entry": report.first_bad, "problems": report.problems,
            "checkpoints_matched": report.checkpoints,
            "records": report.records}).decode())
    elif report.ok:
        typer.echo(f"OK: {report.size} entries, root {report.root.hex()}; "
                   f"{report.checkpoints} signed checkpoint(s) matched")
    else:
        where = "" if report.first_bad is None else f" (first entry that differs: " \
                                                    f"{report.first_bad})"
        typer.echo(f"FAILED{where}")
        for problem in report.problems:
            typer.echo(f"  - {problem}")
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def prove(
    leaf: Annotated[int | None, typer.Option(min=0, help="Prove this entry's inclusion.")
                    ] = None,
    first: Annotated[int | None, typer.Option("--from", min=0, help="Prove the tree of this "
                                              "size a prefix of the --size one.")] = None,
    size: Annotated[int | None, typer.Option(min=0, help="The tree size (default: now).")
                    ] = None,
    config: ConfigOption = None,
) -> None:
    """Print an RFC 9162 inclusion proof (--leaf N) or consistency proof (--from A) as JSON,
    hashes in base64, checked before it is printed."""
    if (leaf is None) == (first is None):
        raise typer.BadParameter("give --leaf N or --from A", param_hint="--leaf/--from")
    with open_log(config, make_key=False) as log:
        tree_size = size if size is not None else log.head().size
        proof = (log.inclusion(leaf, tree_size) if leaf is not None
                 else log.consistency(first or 0, tree_size))
    typer.echo(orjson.dumps(proof, option=orjson.OPT_INDENT_2).decode())
