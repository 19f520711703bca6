"""The vLLM and SGLang launch, metrics and shutdown contract, with a stand-in server that takes
their command lines and serves their endpoints and metric names (tests/engine_standin.py), and
least-busy routing by an engine's own queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from .gateway_proc import BIN, alive, free_port, ledger_yaml, running_gateway

STANDIN = Path(__file__).resolve().parents[1] / "engine_standin.py"


def standin_deployment(root: Path, name: str, kind: str, *, model: str = "default",
                       extra: str = "", standin: tuple[str, ...] = ()) -> str:
    command = [sys.executable, str(STANDIN), "--kind", kind,
               "--record", str(root / f"{name}.jsonl"), *standin]
    return (f"  - name: {name}\n    model: {model}\n"
            f"    engine: {{kind: {kind}, model: org/tiny-model, parallel: 4, context: 1024,"
            f" command: {json.dumps(command)}, log_file: '{root}/{name}.log',"
            f" metrics_interval_s: 0.2, stop_timeout_s: 5{extra}}}\n")


def config(root: Path, deployments: str, policy: str = "least-busy") -> str:
    return (ledger_yaml(root) +
            f"models:\n  - name: default\n    routing: {{policy: {policy}}}\n"
            "deployments:\n" + deployments)


def records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]



@pytest.mark.parametrize("kind", ["vllm", "sglang"])
def test_launch_serve_metrics_and_stop(tmp_path: Path, kind: str) -> None:
    extra = ", tensor_parallel: 2, gpu_memory_share: 0.5, quantization: fp8"
    text = config(tmp_path, standin_deployment(tmp_path, "gpu", kind, extra=extra))
    with running_gateway(tmp_path, text) as gw:
        (start,) = records(tmp_path / "gpu.jsonl")
        argv = start["argv"]
        flags = {"vllm": ["--model", "org/tiny-model", "--served-model-name", "default",
                          "--max-num-seqs", "4", "--max-model-len", "1024",
                          "--tensor-parallel-size", "2", "--gpu-memory-utilization", "0.5",
                          "--quantization", "fp8"],
                 "sglang": ["--model-path", "org/tiny-model", "--served-model-name", "default",
                            "--max-running-requests", "4", "--context-length", "1024",
                            "--tp-size", "2", "--mem-fraction-static", "0.5",
                            "--quantization", "fp8"]}[kind]
        for flag, value in zip(flags[::2], flags[1::2], strict=True):
            assert argv[argv.index(flag) + 1] == value, (flag, argv)
        assert kind == "vllm" or "--enable-metrics" in argv
        status = gw.readyz().json()["deployments"]["gpu"]
        assert status["kind"] == kind and status["pid"] == start["pid"]
        printed = " ".join(gw.log.read_text().split())  # what `inferplane up` printed
        assert f"-> gpu: {kind} default (4 parallel x 1024 tokens), log {tmp_path}/gpu.log" \
            in printed

        client = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        answer = client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content == "served by default"
        assert answer.usage is not None and answer.usage.completion_tokens == 3
        chunks = list(client.chat.completions.create(
            model="default", messages=[{"role": "user", "content": "hi"}], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) \
            == "served by default"

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            metrics = httpx.get(gw.url + "/metrics").text
            if 'inferplane_engine_kv_cache_usage_perc{deployment="gpu"} 0.1' in metrics:
                break
            time.sleep(0.2)
        assert 'inferplane_engine_kv_cache_usage_perc{deployment="gpu"} 0.1' in metrics
        assert 'inferplane_engine_num_requests_waiting{deployment="gpu"} 0.0' in metrics
    # the gateway stopped: the server had its SIGTERM and exited
    assert records(tmp_path / "gpu.jsonl")[-1] == {"stopped": start["pid"]}
    assert not alive(start["pid"])


def test_least_busy_sends_work_away_from_a_full_queue(tmp_path: Path) -> None:
    """Both engines are idle as far as the gateway knows (nothing of its own in flight); one
    reports a queue as long as its slots (another client's load): every request goes to the
    other, and the routing reason says why."""
    deployments = (standin_deployment(tmp_path, "busy", "vllm", standin=("--waiting", "6"))
                   + standin_deployment(tmp_path, "idle", "vllm", standin=("--kv", "0.2")))
    with running_gateway(tmp_path, config(tmp_path, deployments)) as gw, \
            httpx.Client(timeout=30) as http:
        time.sleep(1.0)  # a few scrapes
        served = []
        for _ in range(8):
            r = http.post(gw.url + "/v1/chat/completions", json={
                "model": "default", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            served.append(r.headers["x-inferplane-version"])
        assert served == ["idle"] * 8
        reason = json.loads(gw.ledger_row(r.headers["x-request-id"])["routing_reason"])
        text = reason["decisions"][0]["reason"]
        assert "saturated, ranked last: busy" in text, text


def test_a_killed_engine_answers_503_then_comes_back(tmp_path: Path) -> None:
    text = config(tmp_path, standin_deployment(tmp_path, "gpu", "vllm",
                                               standin=("--delay-s", "2")))
    with running_gateway(tmp_path, text) as gw, httpx.Client(timeout=30) as http:
        (start,) = records(tmp_path / "gpu.jsonl")
        body = {"model": "default", "messages": [{"role": "user", "content": "hi"}]}
        pending = http.build_request("POST", gw.url + "/v1/chat/completions", json=body)
        with httpx.Client(timeout=30) as other:
            import threading

            result: list[httpx.Response] = []
            thread = threading.Thread(target=lambda: result.append(other.send(pending)))
            thread.start()
            time.sleep(0.5)
            os.kill(start["pid"], signal.SIGKILL)
            thread.join()
        assert result[0].status_code == 503, result[0].text
        assert result[0].json()["error"]["code"] == "engine_unavailable"
        after = gw.wait_ready(30)["deployments"]["gpu"]
        assert after["pid"] != start["pid"] and after["restarts"] >= 1
        r = http.post(gw.url + "/v1/chat/completions", json=body)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]


@pytest.mark.parametrize(("engine", "error"), [
    ("{kind: vllm, model: org/m, command: [/nonexistent/vllm]}",
     "engine.command: /nonexistent/vllm is not an executable program"),
    ("{kind: llama-server, model: /nonexistent/m.gguf, command: [/bin/true]}",
     "model file /nonexistent/m.gguf does not exist"),
    ("{kind: vllm, model: org/m, command: [/bin/true], port: PORT}", "is in use"),
])
def test_a_bad_start_is_one_line(tmp_path: Path, engine: str, error: str) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        engine = engine.replace("PORT", str(held.getsockname()[1]))
        path = tmp_path / "inferplane.yaml"
        path.write_text(config(tmp_path, f"  - {{name: e, model: default, engine: {engine}}}\n"))
        done = subprocess.run([str(BIN / "inferplane"), "up", "--config", str(path),
                               "--port", str(free_port())], capture_output=True, text=True,
                              timeout=120, cwd=tmp_path)
    assert done.returncode != 0
    assert error in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
