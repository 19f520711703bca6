"""Process lifecycle: engine crash and recovery, graceful SIGTERM, SIGKILL under load."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import openai
from openai.types.chat import ChatCompletionMessageParam

from .gateway_proc import BIN, alive, running_gateway

MSG: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Tell me a long story about a lighthouse."}
]



def _stream_lines(client: httpx.Client, url: str, max_tokens: int) -> httpx.Response:
    body = {"model": "default", "messages": MSG, "max_tokens": max_tokens, "stream": True}
    return client.send(client.build_request("POST", url, json=body), stream=True)


def test_engine_crash_fails_cleanly_then_recovers(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw, httpx.Client(timeout=60) as http:
        before = gw.engine()
        response = _stream_lines(http, gw.url + "/v1/chat/completions", max_tokens=400)
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        os.kill(before["pid"], signal.SIGKILL)
        rest = [line for line in lines if line]
        assert rest[-1] != "data: [DONE]"
        error = json.loads(rest[-1].removeprefix("data: "))["error"]
        assert error["code"] == "engine_unavailable"
        request_id = response.headers["x-request-id"]

        r = http.post(gw.url + "/v1/chat/completions", json={"model": "default", "messages": MSG})
        assert r.status_code == 503 and r.json()["error"]["type"] == "service_unavailable"
        assert gw.readyz().status_code in (200, 503)

        after = gw.wait_ready(60)["deployments"]["local-gemma"]
        assert after["pid"] != before["pid"] and after["restarts"] >= 1
        c = openai.OpenAI(base_url=gw.url + "/v1", api_key="x", max_retries=0)
        ok = c.chat.completions.create(model="default", messages=MSG, max_tokens=4)
        assert ok.usage is not None and ok.usage.completion_tokens > 0
        assert gw.ledger_row(request_id)["status"] == 503
        assert gw.ledger_row(r.headers["x-request-id"])["status"] == 503


def test_sigterm_lets_the_stream_in_flight_finish(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gw, httpx.Client(timeout=60) as http:
        engine_pid = gw.engine()["pid"]
        response = _stream_lines(http, gw.url + "/v1/chat/completions", max_tokens=40)
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")
        assert gw.proc is not None
        gw.proc.send_signal(signal.SIGTERM)
        rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        assert gw.proc.wait(60) == 0
        deadline = time.monotonic() + 10
        while alive(engine_pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not alive(engine_pid)
        assert gw.ledger_row(response.headers["x-request-id"])["status"] == 200


def test_sigkill_under_load_loses_no_completed_record(tmp_path: Path) -> None:
    """Clients hammer the gateway, whose committer is set never to run before the kill (every
    10 minutes); it is killed with SIGKILL; after a restart, every response a client received
    in full is in the ledger: recovery replayed them from the write-ahead file."""
    completed: list[str] = []
    stop = threading.Event()

    def client_loop(worker: int, url: str) -> None:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=30)
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if n % 2:
                    r = c.chat.completions.create(model="default", messages=MSG,
                                                  max_tokens=4 + worker)
                    completed.append(r.id)
                else:
                    chunks = list(c.chat.completions.create(
                        model="default", messages=MSG, max_tokens=4 + worker, stream=True))
                    completed.append(chunks[0].id)  # the SDK saw [DONE]
            except (openai.APIError, httpx.HTTPError):
                return

    with running_gateway(tmp_path, commit_interval_ms=600_000) as gw:
        started = time.monotonic()
        threads = [threading.Thread(target=client_loop, args=(i, gw.url)) for i in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 120
        while len(completed) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        gw.stop(signal.SIGKILL)
        stop.set()
        for t in threads:
            t.join(30)
        received = set(completed)
        assert len(received) >= 40
        in_store_before = {row["id"] for row in gw.ledger_rows()} if gw.db.exists() else set()
        assert received - in_store_before, (
            f"the store should lag behind at the kill: {len(in_store_before)} row(s) in it, "
            f"{len(received)} received, killed after {time.monotonic() - started:.1f} s")

        gw.start()  # recovery replays the write-ahead file into the store
        rows = gw.ledger_rows()
        ids = [row["id"] for row in rows]
        assert received <= set(ids)
        assert len(ids) == len(set(ids))

        out = subprocess.run(
            [str(BIN / "inferplane"), "ledger", "stats", "--json", "--config", str(gw.config)],
            capture_output=True, text=True, check=True,
        )
        stats = json.loads(out.stdout)
        assert json.dumps(stats).count(str(len(rows))) >= 1
