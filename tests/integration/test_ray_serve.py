"""Engines on Ray Serve, on a real local Ray cluster (2 CPUs), behind a real gateway: the
embedded engine as Serve replicas, scaled from 1 to 2 under load and back when idle, one
replica killed mid-load and replaced with no client request failing beyond those it held, and
the gateway reading every replica's load (``provider: ray``). Skipped without ``ray[serve]``."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

if importlib.util.find_spec("ray") is None:
    pytest.skip("needs the ray extra (ray[serve])", allow_module_level=True)

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway
from .ray_cluster import Engines, ray_cluster

pytestmark = pytest.mark.slow

# Small on purpose (a 2-core machine, shared): one engine thread and two slots per replica,
# one ongoing request per replica as Serve's target, and short scaling delays.
ARGS: dict[str, Any] = {
    "deployment": "chat-ray", "model": "gemma",
    "engine": {"model": "builtin:gemma-3-270m", "parallel": 2, "threads": 1, "context": 512},
    "num_cpus": 1,
    "autoscaling": {"min_replicas": 1, "max_replicas": 2, "target_ongoing_requests": 1,
                    "upscale_delay_s": 1, "downscale_delay_s": 4, "metrics_interval_s": 0.5,
                    "look_back_period_s": 2},
    "report_interval_s": 0.25,
}
MAX_TOKENS = 8


def gateway_config(root: Path, engines: Engines) -> str:
    return (ledger_yaml(root)
            + "models:\n  - name: chat\n"
            "    routing: {retry: {max_attempts: 3, per_deployment: 3, backoff_base_s: 0.05}}\n"
            "deployments:\n"
            f"  - {{name: chat-ray, model: chat, provider: ray, upstream_model: gemma, "
            f"base_url: '{engines.base_url}'}}\n")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engines]:
    root = Path(tmp_path_factory.mktemp("ray"))
    with ray_cluster(root, cpus=2) as cluster:
        yield cluster.serve(ARGS, root)


@pytest.fixture(scope="module")
def gateway(engines: Engines, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("gateway"))
    with running_gateway(root, gateway_config(root, engines)) as gw:
        yield gw


@dataclass
class Load:
    """Client threads sending chat requests (half of them streamed) through the gateway until
    stopped; every outcome kept with when it ended."""

    url: str
    clients: int
    stop: threading.Event = field(default_factory=threading.Event)
    outcomes: list[tuple[float, bool, str]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Load:
        for i in range(self.clients):
            thread = threading.Thread(target=self._client, args=(i,), daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def _client(self, i: int) -> None:
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0,
                               timeout=60)
        n = 0
        while not self.stop.is_set():
            n += 1
            messages: Any = [{"role": "user", "content": f"Count to {n} please, client {i}."}]
            try:
                if n % 2:
                    stream = client.chat.completions.create(
                        model="chat", messages=messages, max_tokens=MAX_TOKENS, stream=True,
                        stream_options={"include_usage": True})
                    usage = [c.usage for c in stream if c.usage is not None]
                    ok = len(usage) == 1 and usage[0].completion_tokens > 0
                    detail = "" if ok else "stream without usage"
                else:
                    answer = client.chat.completions.create(
                        model="chat", messages=messages, max_tokens=MAX_TOKENS)
                    ok = answer.usage is not None and answer.usage.completion_tokens > 0
                    detail = "" if ok else "no usage"
            except (openai.APIError, httpx.HTTPError) as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            self.outcomes.append((time.monotonic(), ok, detail))

    def finish(self) -> list[tuple[float, bool, str]]:
        self.stop.set()
        for thread in self.threads:
            thread.join(90)
        return self.outcomes


def test_answers_through_the_gateway_with_usage_and_load(gateway: GatewayProc,
                                                         engines: Engines) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="unused", max_retries=0)
    answer = client.completions.create(model="chat", prompt="Once upon", max_tokens=MAX_TOKENS)
    assert answer.usage is not None and answer.usage.completion_tokens == MAX_TOKENS
    assert answer.usage.prompt_tokens > 0
    row = gateway.ledger_row(answer.id)
    assert row["deployment"] == "chat-ray" and row["completion_tokens"] == MAX_TOKENS
    # the gateway reads the replicas' own load: in /readyz, and as the engine gauges
    status = gateway.readyz().json()["deployments"]["chat-ray"]
    assert status["ready"] and status["replicas"] == 1 and status["capacity"] == 2
    assert len(status["per_replica"]) == 1
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    assert 'inferplane_engine_num_requests_running{deployment="chat-ray"}' in metrics


def test_scales_up_survives_a_killed_replica_and_scales_down(gateway: GatewayProc,
                                                             engines: Engines) -> None:
    assert engines.load()["replicas"] == 1
    load = Load(gateway.url, clients=4).start()
    try:
        up = engines.wait_replicas(2, timeout=120)
        # the gateway sees both replicas' slots as the deployment's capacity
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = gateway.readyz().json()["deployments"]["chat-ray"]
            if status.get("replicas") == 2:
                break
            time.sleep(0.25)
        assert status["replicas"] == 2 and status["capacity"] == 4
        time.sleep(2)  # requests on both replicas
        victim = max(engines.load()["per_replica"], key=lambda r: r["running"] + r["waiting"])
        killed_at = time.monotonic()
        os.kill(victim["pid"], signal.SIGKILL)
        # replaced: a second replica again, not the one killed
        deadline = time.monotonic() + 120
        replaced: dict[str, Any] = {}
        while time.monotonic() < deadline:
            replaced = engines.load()
            names = {r["replica"] for r in replaced["per_replica"]}
            if replaced["replicas"] == 2 and victim["replica"] not in names:
                break
            time.sleep(0.5)
        assert replaced["replicas"] == 2, replaced
        assert victim["replica"] not in {r["replica"] for r in replaced["per_replica"]}
        assert {r["replica"] for r in up["per_replica"]} != {
            r["replica"] for r in replaced["per_replica"]}
        time.sleep(3)  # the new replica serves
    finally:
        outcomes = load.finish()
    failed = [o for o in outcomes if not o[1]]
    after_kill = [o for o in outcomes if o[0] > killed_at]
    # nothing fails but what the killed replica held when it died: Serve gives a replica at most
    # max_ongoing_requests (twice its slots); requests not yet sent to it went elsewhere, and
    # those it failed before their first byte the gateway retried
    print(f"killed replica held ~{victim['running'] + victim['waiting']}; "
          f"{len(failed)} of {len(outcomes)} requests failed: {failed}")
    assert len(failed) <= 2 * ARGS["engine"]["parallel"], failed
    assert sum(ok for _, ok, _ in after_kill) >= 8, len(after_kill)
    # idle: back to one replica
    down = engines.wait_replicas(1, timeout=120)
    assert down["replicas"] == 1


def test_ray_serve_refuses_wrong_arguments_naming_them(tmp_path: Path) -> None:
    """Checked before it connects to any cluster: the problem, where, and the fix."""
    config = tmp_path / "engines.yaml"
    config.write_text("backend: llamacpp\ntensor_parallel_size: 2\n")
    out = subprocess.run(
        [str(Path(sys.executable).parent / "inferplane"), "ray", "serve", "--config",
         str(config), "--address", "127.0.0.1:9"], capture_output=True, timeout=120,
        check=False)
    assert out.returncode == 2, out.stderr.decode()[-2000:]
    err = out.stderr.decode()
    assert "tensor_parallel_size" in err and "backend: vllm" in err
