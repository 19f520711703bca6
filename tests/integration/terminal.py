"""Commands run on a pseudo-terminal, as a user at a terminal runs them."""

from __future__ import annotations

import os
import pty
import re
import select
import time
from collections.abc import Sequence
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn(argv: Sequence[str], *, cwd: Path | None = None,
          env: dict[str, str] | None = None) -> tuple[int, int]:
    """Start ``argv`` on a new terminal; its process id and the terminal's controlling end."""
    pid, terminal = pty.fork()
    if pid == 0:  # the child: the terminal is its stdin, stdout and stderr
        if cwd is not None:
            os.chdir(cwd)
        os.execvpe(argv[0], list(argv), {**os.environ, **(env or {})})
    return pid, terminal


def read_until(terminal: int, wanted: bytes | None, timeout: float) -> bytes:
    """What the terminal shows until ``wanted`` appears (None: until every process on it
    exited), or ``timeout`` passes."""
    out = b""
    deadline = time.monotonic() + timeout
    while (wanted is None or wanted not in out) and time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.2)[0]:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # the terminal closed: every process on it exited
                break
            if not chunk:
                break
            out += chunk
    return out


def run_on_terminal(argv: Sequence[str], *, cwd: Path | None = None,
                    env: dict[str, str] | None = None, timeout: float = 60
                    ) -> tuple[int, str]:
    """Run ``argv`` to its end on a terminal: its exit status and the text it showed, without
    colours and with plain line ends."""
    pid, terminal = spawn(argv, cwd=cwd, env=env)
    out = read_until(terminal, None, timeout)
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    text = ANSI.sub("", out.decode(errors="replace")).replace("\r\n", "\n")
    return os.waitstatus_to_exitcode(status), text
