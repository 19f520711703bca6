"""Starting and stopping a real gateway process for the integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class GatewayProc:
    root: Path
    port: int
    config: Path
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)  # more `inferplane up` options
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.root / "gateway.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.root / "ledger.db"

    def start(self, timeout: float = 120.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(BIN / "inferplane"), "up", "--config", str(self.config),
                 "--port", str(self.port), *self.args],
                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited: {self.log.read_text()[-3000:]}")
            try:
                r = httpx.get(self.url + "/readyz", timeout=5)
                if r.status_code == 200:
                    return dict(r.json())
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"gateway not ready: {self.log.read_text()[-3000:]}")

    def readyz(self) -> httpx.Response:
        return httpx.get(self.url + "/readyz", timeout=5)

    def engine(self) -> dict[str, Any]:
        return dict(self.readyz().json()["deployments"]["local-gemma"])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def ledger_rows(self) -> list[dict[str, Any]]:
        engine = sa.create_engine(f"sqlite:///{self.db}")
        try:
            with engine.connect() as conn:
                rows = conn.execute(sa.text("SELECT * FROM usage_records")).mappings().all()
                return [dict(r) for r in rows]
        finally:
            engine.dispose()

    def ledger_row(self, request_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The record of ``request_id`` once the group commit has moved it into the store."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for row in self.ledger_rows() if self.db.exists() else []:
                if row["id"] == request_id:
                    return row
            time.sleep(0.1)
        raise AssertionError(f"no ledger record for {request_id}")


def write_config(root: Path, *, commit_interval_ms: int = 20) -> Path:
    path = root / "inferplane.yaml"
    path.write_text(
        "server: {max_body_bytes: 65536}\n" + ledger_yaml(root, commit_interval_ms) +
        "models:\n  - name: default\n    aliases: [gemma-3-270m]\n"
        "deployments:\n  - name: local-gemma\n    model: default\n    provider: llamacpp\n"
        "    engine: {model: 'builtin:gemma-3-270m', parallel: 8, context: 512}\n"
        "    hardware: {accelerator: cpu, count: 1, usd_per_hour: 0.10}\n"
    )
    return path


def ledger_yaml(root: Path, commit_interval_ms: int = 20) -> str:
    """The store and ledger sections for a test gateway living in ``root``."""
    return (f"store: {{url: 'sqlite:///{root}/ledger.db'}}\n"
            f"ledger: {{dir: '{root}/wal', commit_interval_ms: {commit_interval_ms}}}\n")


@contextmanager
def running_gateway(root: Path, config_text: str | None = None, *,
                    env: dict[str, str] | None = None, args: list[str] | None = None,
                    **config: int) -> Iterator[GatewayProc]:
    """A gateway on the default config (the embedded engine), or on ``config_text``."""
    root.mkdir(parents=True, exist_ok=True)
    if config_text is None:
        path = write_config(root, **config)
    else:
        path = root / "inferplane.yaml"
        path.write_text(config_text)
    gateway = GatewayProc(root, free_port(), path, env=env or {}, args=args or [])
    gateway.start()
    try:
        yield gateway
    finally:
        gateway.stop()


def alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists (a zombie counts until it is reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
