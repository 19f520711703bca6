"""What ``inferplane up`` tells its terminal over the gateway's life, and who gets Ctrl-C.

It says where the gateway listens once it has started (:func:`announce_start`); that it is
draining when a signal asks it to stop (:class:`DrainingServer`); and that it stopped, with
how many records this run wrote to the ledger and whether the store has every one of them
(:func:`announce_stop`).

Under ``make run``, Ctrl-C reaches make as well as the gateway, and make dies of it whatever
the gateway's exit status. :func:`own_ctrl_c` moves the gateway into its own process group in
the terminal's foreground, so Ctrl-C reaches the gateway (and the processes it started) only,
and make exits with the gateway's status: 0 after a clean stop.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType

import uvicorn
from rich.console import Console

from inferplane import __version__
from inferplane.gateway import Gateway
from inferplane.text import plural

console = Console(stderr=True)


async def announce_start(gateway: Gateway) -> None:
    cfg = gateway.config
    url = f"http://{cfg.server.host}:{cfg.server.port}/v1"
    console.print(f"[bold]Inferplane {__version__}[/bold] listening on [cyan]{url}[/cyan]")
    for model in cfg.models:
        names = ", ".join([model.name, *model.aliases])
        for d in cfg.deployments_of(model.name):
            console.print(f"  model [green]{names}[/green] -> {d.name}: "
                          f"{gateway.providers[d.name].describe()}")
    console.print(f"  ledger: {gateway.ledger.wal_path} -> {gateway.ledger.store_url}")
    access = gateway.access
    if access.open:
        console.print("  auth: [yellow]open[/yellow] — no API key exists yet, so only clients "
                      "on this machine (loopback) are served; `inferplane keys create` ends this")
    else:
        console.print("  auth: API keys required; limits and budgets "
                      + ("shared through Redis" if access.shared else "kept in this process"))
    console.print("  engines are loading; GET /readyz answers 200 once they serve")


async def announce_stop(gateway: Gateway) -> None:
    console.print(f"Inferplane {gateway.stopped()}", highlight=False, soft_wrap=True)


class DrainingServer(uvicorn.Server):
    """uvicorn's server, saying that it drains when a signal asks it to stop."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.should_exit:
            open_now = len(self.server_state.connections)
            grace = self.config.timeout_graceful_shutdown
            console.print(
                f"Inferplane stopping ({signal.Signals(sig).name}): no new connections; "
                f"draining {plural(open_now, 'open connection')} for up to {grace}s, then the "
                "engines stop and the ledger is flushed (Ctrl-C again: stop at once)",
                highlight=False, soft_wrap=True)
        super().handle_exit(sig, frame)


@contextlib.contextmanager
def own_ctrl_c() -> Iterator[None]:
    """Under make (``MAKELEVEL`` is set) on a terminal, hold the terminal's foreground with a
    process group of this process's own while the block runs, then give it back."""
    restore = _take_foreground() if "MAKELEVEL" in os.environ else None
    try:
        yield
    finally:
        if restore is not None:
            restore()


def _take_foreground() -> Callable[[], None] | None:
    try:
        fd = sys.stdin.fileno()
        if not os.isatty(fd) or os.tcgetpgrp(fd) != os.getpgrp() or os.getpgrp() == os.getpid():
            return None  # not in the foreground, or already leading its own group
        previous = os.tcgetpgrp(fd)
        os.setpgid(0, 0)
        _set_foreground(fd, os.getpgrp())
    except (OSError, ValueError):
        return None
    return lambda: _set_foreground(fd, previous)


def _set_foreground(fd: int, group: int) -> None:
    """Make ``group`` the terminal's foreground process group; a process in the background
    may do so only with SIGTTOU ignored."""
    old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    try:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(fd, group)
    finally:
        signal.signal(signal.SIGTTOU, old)
