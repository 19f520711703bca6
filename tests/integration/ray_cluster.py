"""A local Ray cluster for the tests and benchmarks: ``ray start --head --block`` in a session of
its own (so its stop ends exactly this cluster's processes, none of another's), the engine
application deployed with ``inferplane ray serve``, and its ``/load`` route read."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from .gateway_proc import free_port

BIN = Path(sys.executable).parent
MAX_SOCKET_DIR = 40  # Ray's session sockets live under its temp dir: AF_UNIX paths are short


@dataclass
class RayCluster:
    address: str
    temp_dir: Path
    proc: subprocess.Popen[bytes]
    log: Path

    def serve(self, args: dict[str, Any], root: Path, port: int | None = None,
              timeout: float = 300.0) -> Engines:
        """Deploy the engine application with ``args`` through ``inferplane ray serve``."""
        port = port or free_port()
        config = root / "engines.yaml"
        config.write_text(yaml.safe_dump(args))
        out = subprocess.run(
            [str(BIN / "inferplane"), "ray", "serve", "--config", str(config),
             "--address", self.address, "--port", str(port)],
            capture_output=True, timeout=timeout, env=os.environ.copy(), check=False)
        if out.returncode != 0:
            raise RuntimeError(f"inferplane ray serve failed: {out.stderr.decode()[-3000:]}")
        return Engines(f"http://127.0.0.1:{port}")


@dataclass
class Engines:
    url: str

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def load(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/load", timeout=10).json())

    def wait_replicas(self, count: int, timeout: float, while_waiting: Any = None
                      ) -> dict[str, Any]:
        """The load once exactly ``count`` replicas report; ``while_waiting()`` runs between
        looks (to keep load on)."""
        deadline = time.monotonic() + timeout
        seen: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                seen = self.load()
            except (httpx.HTTPError, ValueError):
                seen = {}
            if seen.get("replicas") == count:
                return seen
            if while_waiting is not None:
                while_waiting()
            time.sleep(0.5)
        raise TimeoutError(f"not {count} replicas within {timeout}s: last {seen}")


def _temp_dir(root: Path) -> Path:
    if len(str(root)) <= MAX_SOCKET_DIR:
        return root / "ray"
    return Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))


@contextmanager
def ray_cluster(root: Path, cpus: int = 2) -> Iterator[RayCluster]:
    """A head node with ``cpus`` CPUs, its temp dir under ``root`` (or a short one in /tmp when
    ``root``'s path is too long for Ray's sockets); stopped at the end, whatever happened."""
    temp_dir = _temp_dir(root)
    port = free_port()
    log = root / "ray.log"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(BIN / "ray"), "start", "--head", "--block", f"--num-cpus={cpus}",
             f"--port={port}", f"--temp-dir={temp_dir}", "--include-dashboard=false",
             "--disable-usage-stats", "--node-ip-address=127.0.0.1",
             "--object-store-memory=100000000"],  # 100 MB: nothing large is passed
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    cluster = RayCluster(f"127.0.0.1:{port}", temp_dir, proc, log)
    try:
        _wait_up(cluster)
        yield cluster
    finally:
        _stop(proc)
        if not temp_dir.is_relative_to(root):  # the short one made in /tmp
            shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_up(cluster: RayCluster, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cluster.proc.poll() is not None:
            raise RuntimeError(f"ray start exited: {cluster.log.read_text()[-3000:]}")
        if b"Ray runtime started" in cluster.log.read_bytes():
            return
        time.sleep(0.5)
    raise TimeoutError(f"Ray did not start: {cluster.log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """``ray start --block`` stops its node's processes when it is terminated; what is left of
    its process group after that is killed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
