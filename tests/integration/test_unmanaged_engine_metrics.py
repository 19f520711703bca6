"""Engines Inferplane does not start, read for routing (`engine_metrics`): a real llama-server
started here, and the stand-in vLLM server (tests/engine_standin.py) started here too, both
reached as plain OpenAI-compatible deployments. The gateway scrapes both, shows their gauges,
and least-busy sends new work away from the llama-server once its queue is full of requests
sent to it directly (not through the gateway: only its own metrics can tell). Skipped where
llama-server is not built (`make` builds it)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.services import stop_process

from .gateway_proc import free_port, ledger_yaml, running_gateway
from .test_managed_llama_server import _binary
from .test_managed_standin import STANDIN

pytestmark = pytest.mark.skipif(_binary() is None, reason="llama-server is not built "
                                "(make .venv/.installed-llama-server)")
HOST = "127.0.0.1"
SLOTS = 1


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"{proc.args!r} exited with {proc.returncode}"
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise TimeoutError(f"{url} not healthy")


@contextlib.contextmanager
def server(argv: list[str], url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_healthy(url, proc)
        yield proc
    finally:
        stop_process(proc)


def deployment(name: str, kind: str, url: str) -> str:
    return (f"  - {{name: {name}, model: default, provider: openai, base_url: '{url}/v1',"
            f" engine_metrics: {{kind: {kind}, url: '{url}', interval_s: 0.2}}}}\n")


def gauge(metrics: str, name: str, deployment: str) -> float | None:
    prefix = f'inferplane_engine_{name}{{deployment="{deployment}"}} '
    return next((float(line[len(prefix):]) for line in metrics.splitlines()
                 if line.startswith(prefix)), None)


def served_by(http: httpx.Client, gateway: str) -> str:
    r = http.post(gateway + "/v1/chat/completions", json={
        "model": "default", "max_tokens": 4,
        "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    return r.headers["x-inferplane-version"]


def test_least_busy_reads_unmanaged_engines(tmp_path: Path) -> None:
    from inferplane.engines.model_files import resolve_model

    binary = _binary()
    assert binary is not None
    llama_url, vllm_url = f"http://{HOST}:{free_port()}", f"http://{HOST}:{free_port()}"
    llama = [binary, "--model", str(resolve_model("builtin:gemma-3-270m")), "--host", HOST,
             "--port", llama_url.rsplit(":", 1)[1], "--alias", "default",
             "--parallel", str(SLOTS), "--ctx-size", "1024", "--threads", "2",
             "--metrics", "--slots", "--no-webui"]
    vllm = [sys.executable, str(STANDIN), "--kind", "vllm", "--record",
            str(tmp_path / "vllm.jsonl"), "--model", "org/tiny-model", "--served-model-name",
            "default", "--host", HOST, "--port", vllm_url.rsplit(":", 1)[1]]
    # "a-llama" comes first among equals (least-busy's tie-break is the name)
    text = (ledger_yaml(tmp_path) + "models:\n  - name: default\n    routing: {policy: "
            "least-busy}\ndeployments:\n" + deployment("a-llama", "llama-server", llama_url)
            + deployment("b-vllm", "vllm", vllm_url))
    with server(llama, llama_url, tmp_path / "llama.log"), \
            server(vllm, vllm_url, tmp_path / "vllm.log"), \
            running_gateway(tmp_path, text) as gw, httpx.Client(timeout=60) as http:
        # both are read: their gauges are the gateway's
        deadline = time.monotonic() + 15
        metrics = ""
        while time.monotonic() < deadline:
            metrics = http.get(gw.url + "/metrics").text
            if all(gauge(metrics, "num_requests_running", d) is not None
                   for d in ("a-llama", "b-vllm")):
                break
            time.sleep(0.2)
        for d in ("a-llama", "b-vllm"):
            assert gauge(metrics, "num_requests_running", d) == 0.0, (d, metrics)
            assert gauge(metrics, "num_requests_waiting", d) == 0.0, (d, metrics)
        assert gauge(metrics, "kv_cache_usage_perc", "b-vllm") == 0.1
        assert gauge(metrics, "kv_cache_usage_perc", "a-llama") == 0.0  # from /slots

        # idle, the llama-server wins the tie
        assert served_by(http, gw.url) == "a-llama"

        # another client fills its slot and queue, behind the gateway's back
        direct = {"model": "default", "max_tokens": 400, "ignore_eos": True,
                  "messages": [{"role": "user", "content": "Tell me a long story."}]}

        def busy() -> None:
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(llama_url + "/v1/chat/completions", json=direct, timeout=120)

        workers = [threading.Thread(target=busy, daemon=True) for _ in range(SLOTS + 2)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            metrics = http.get(gw.url + "/metrics").text
            if (gauge(metrics, "num_requests_waiting", "a-llama") or 0) >= 2:
                break
            time.sleep(0.1)
        assert gauge(metrics, "num_requests_running", "a-llama") == SLOTS, metrics
        assert gauge(metrics, "num_requests_waiting", "a-llama") == 2, metrics

        served = [served_by(http, gw.url) for _ in range(6)]
        assert served == ["b-vllm"] * 6
        r = http.post(gw.url + "/v1/chat/completions", json={
            "model": "default", "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]})
        reason = gw.ledger_row(r.headers["x-request-id"])["routing_reason"]
        assert "engine reports 0 running, 0 waiting" in reason, reason
        # its /slots said how many it runs at once: a queue that long is a full one
        assert "saturated, ranked last: a-llama" in reason, reason
