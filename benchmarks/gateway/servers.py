"""The servers compared: one fake OpenAI upstream, and each gateway in front of it.

Every gateway runs as one process (one worker), pinned to a core with ``taskset``, and is
configured to forward the model ``bench`` (or, for Portkey, whatever model the request names)
to the same upstream with the same API key.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from common import ServerProcess, free_port

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
LITELLM_VENV = BENCH / ".venvs" / "litellm"
PORTKEY_DIR = BENCH / ".portkey"
PORTKEY_JS = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
UPSTREAM_MODEL = "gpt-4o-mini"
KEY_ENV = "BENCH_UPSTREAM_KEY"
GATEWAYS = ("inferplane", "litellm", "portkey")
PROMPT = "Say hello in eight words please now"


@dataclass
class Endpoint:
    """Where the load generator sends requests, and the process tree behind it (None: the
    upstream itself, no gateway)."""

    name: str
    port: int
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    server: ServerProcess | None = None

    @property
    def pid(self) -> int | None:
        return None if self.server is None or self.server.proc is None else self.server.proc.pid

    def body(self, stream: bool, max_tokens: int = 16) -> bytes:
        """The one request every run sends: a short chat completion, streamed or not."""
        return json.dumps({"model": self.model, "stream": stream, "max_tokens": max_tokens,
                           "messages": [{"role": "user", "content": PROMPT}]}).encode()

    def stop(self) -> None:
        if self.server is not None:
            started = time.monotonic()
            code = self.server.stop()
            print(f"{self.name} stopped (exit {code}) in {time.monotonic() - started:.1f} s",
                  flush=True)


@dataclass(frozen=True)
class Upstream:
    port: int
    key: str


def pinned(core: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(core), *argv]


def direct(upstream: Upstream) -> Endpoint:
    return Endpoint("direct", upstream.port, UPSTREAM_MODEL,
                    {"Authorization": f"Bearer {upstream.key}"})


def inferplane(upstream: Upstream, core: int, tmp: Path, src: Path | None = None,
               ledger: str = "", keys: bool = False) -> Endpoint:
    """``inferplane up`` with one model, one ``provider: openai`` deployment, its ledger on
    (the default) in ``tmp``. ``src``: run the package from that source tree instead of the
    installed one (``PYTHONPATH``; to compare two versions side by side). ``ledger``: more
    settings of the ledger section, as YAML flow items (``commit_interval_ms: 250``).
    ``keys``: as in production, every request carries an API key (``tenancy.auth:
    required``) whose key and tenant both have RPM, TPM and monthly budget limits, set high
    enough never to refuse, so that each request is authenticated, admitted (in memory: one
    process) and settled."""
    port = free_port()
    config = tmp / "inferplane.yaml"
    more = f", {ledger}" if ledger else ""
    config.write_text(
        f"server: {{host: 127.0.0.1, port: {port}}}\n"
        f"store: {{url: 'sqlite:///{tmp}/inferplane.db'}}\n"
        f"ledger: {{dir: '{tmp}/ledger'{more}}}\n"
        "models:\n  - name: bench\n"
        "deployments:\n"
        "  - name: upstream\n    model: bench\n    provider: openai\n"
        f"    base_url: http://127.0.0.1:{upstream.port}/v1\n"
        f"    api_key: env:{KEY_ENV}\n    upstream_model: {UPSTREAM_MODEL}\n"
        "    price: {input_per_mtok: 0.15, output_per_mtok: 0.60}\n"
        + ("tenancy: {auth: required}\n" if keys else ""))
    cli = [str(Path(sys.executable).parent / "inferplane")]
    env = {KEY_ENV: upstream.key}
    if src is not None:
        cli = [sys.executable, "-c", "from inferplane.cli.main import app; app()"]
        env["PYTHONPATH"] = str(src.resolve())
    headers = {}
    if keys:
        limits = ["--rpm", "10000000", "--tpm", "1e11", "--budget", "1000000usd/month"]
        subprocess.run([*cli, "tenants", "create", "bench", *limits, "--config", str(config)],
                       check=True, capture_output=True, env={**os.environ, **env})
        secret = subprocess.run(
            [*cli, "keys", "create", "--tenant", "bench", *limits, "--config", str(config)],
            check=True, capture_output=True, text=True, env={**os.environ, **env}).stdout
        headers["Authorization"] = f"Bearer {secret.strip()}"
    server = ServerProcess("inferplane", pinned(core, [*cli, "up", "--config", str(config)]),
                           port, "/readyz", tmp / "inferplane.log", env=env)
    return Endpoint("inferplane", port, "bench", headers, server)


def litellm(upstream: Upstream, core: int, tmp: Path) -> Endpoint:
    """The LiteLLM proxy as its production guide sets it up (a strong master key, debug and
    info logs off, ``request_timeout``), one worker, and no database: without the Prisma
    engines (downloaded at run time) it cannot keep spend logs, so it keeps none."""
    port = free_port()
    master_key = "sk-" + secrets.token_urlsafe(32)
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n  - model_name: bench\n    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n"
        f"      api_base: http://127.0.0.1:{upstream.port}/v1\n"
        f"      api_key: os.environ/{KEY_ENV}\n"
        "general_settings:\n  master_key: os.environ/LITELLM_MASTER_KEY\n"
        "litellm_settings:\n  request_timeout: 600\n  set_verbose: false\n  json_logs: true\n")
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config),
            "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1",
            "--telemetry", "False"]
    env = {KEY_ENV: upstream.key, "LITELLM_MASTER_KEY": master_key, "LITELLM_LOG": "ERROR",
           "LITELLM_LOCAL_MODEL_COST_MAP": "True"}  # no fetch of the price list at start
    server = ServerProcess("litellm", pinned(core, argv), port, "/health/liveliness",
                           tmp / "litellm.log", env=env)
    return Endpoint("litellm", port, "bench", {"Authorization": f"Bearer {master_key}"},
                    server)


def portkey(upstream: Upstream, core: int, tmp: Path) -> Endpoint:
    """Portkey's open-source gateway on Node, headless (no log console), with the upstream
    chosen per request by its ``x-portkey-provider`` and ``x-portkey-custom-host`` headers."""
    port = free_port()
    argv = ["node", str(PORTKEY_JS), f"--port={port}", "--headless"]
    server = ServerProcess("portkey", pinned(core, argv), port, "/", tmp / "portkey.log",
                           env={"NODE_ENV": "production"})
    headers = {"Authorization": f"Bearer {upstream.key}", "x-portkey-provider": "openai",
               "x-portkey-custom-host": f"http://127.0.0.1:{upstream.port}/v1"}
    return Endpoint("portkey", port, UPSTREAM_MODEL, headers, server)


def floor(upstream: Upstream, core: int, tmp: Path) -> Endpoint:
    """``floor_proxy.py``: the least a proxy on uvicorn and aiohttp can do (a reference, not a
    gateway: no auth, routing, metering or ledger)."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "uvicorn"), "--app-dir", str(BENCH / "gateway"),
            "floor_proxy:app", "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop",
            "--http", "httptools", "--no-access-log", "--log-level", "warning"]
    env = {"UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}", "UPSTREAM_KEY": upstream.key,
           "MODEL": UPSTREAM_MODEL}
    server = ServerProcess("floor", pinned(core, argv), port, "/", tmp / "floor.log", env=env)
    return Endpoint("floor", port, "bench", {}, server)


def rawfloor(upstream: Upstream, core: int, tmp: Path) -> Endpoint:
    """``raw_floor.py``: the least any Python proxy on uvloop and httptools can do (asyncio
    protocols on both sides; a reference, not a gateway)."""
    port = free_port()
    argv = [sys.executable, str(BENCH / "gateway" / "raw_floor.py"), str(port)]
    env = {"UPSTREAM_URL": f"http://127.0.0.1:{upstream.port}", "UPSTREAM_KEY": upstream.key,
           "MODEL": UPSTREAM_MODEL}
    server = ServerProcess("rawfloor", pinned(core, argv), port, "/", tmp / "rawfloor.log",
                           env=env)
    return Endpoint("rawfloor", port, "bench", {}, server)


LAUNCHERS: dict[str, Callable[[Upstream, int, Path], Endpoint]] = {
    "inferplane": inferplane, "litellm": litellm, "portkey": portkey, "floor": floor,
    "rawfloor": rawfloor,
}


def start(name: str, upstream: Upstream, core: int, tmp: Path) -> Endpoint:
    """A fresh gateway process, ready to serve (``direct``: the upstream itself)."""
    if name == "direct":
        return direct(upstream)
    workdir = tmp / f"{name}-{secrets.token_hex(3)}"
    workdir.mkdir(parents=True)
    endpoint = LAUNCHERS[name](upstream, core, workdir)
    assert endpoint.server is not None
    took = endpoint.server.start(timeout=180)
    print(f"{name} (pid {endpoint.pid}) ready in {took:.1f} s", flush=True)
    return endpoint


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60,
                              check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def _package_version(package_json: Path) -> str:
    try:
        return str(json.loads(package_json.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def versions() -> dict[str, str]:
    """What each compared server ran on."""
    modules = PORTKEY_DIR / "node_modules"
    try:
        inferplane_version = metadata.version("inferplane")
    except metadata.PackageNotFoundError:
        inferplane_version = "not installed"
    return {
        "inferplane": inferplane_version,
        "inferplane_commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
        "litellm": _run([str(LITELLM_VENV / "bin" / "python"), "-c",
                         "from importlib.metadata import version; print(version('litellm'))"]),
        "litellm_python": _run([str(LITELLM_VENV / "bin" / "python"), "--version"]),
        "portkey_gateway": _package_version(modules / "@portkey-ai" / "gateway" / "package.json"),
        "hono_node_server": _package_version(modules / "@hono" / "node-server" / "package.json"),
        "node": _run(["node", "--version"]),
        "python": sys.version.split()[0],
        "uvloop": metadata.version("uvloop"),
        "httptools": metadata.version("httptools"),
    }
