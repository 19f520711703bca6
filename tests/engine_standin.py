"""A stand-in for a vLLM or SGLang server, for the tests of the managed-engine contract on a
machine without a GPU: it takes their command lines, serves their health endpoint, their
OpenAI-compatible chat completions and their real metric names, and exits on SIGTERM.

    python tests/engine_standin.py --kind vllm --record FILE [the server's own arguments]

Each start appends ``{"argv": [...], "pid": N}`` to ``--record``, and a clean SIGTERM exit
``{"stopped": N}``. ``--waiting N`` and ``--kv X`` set the queue and KV-cache share it reports
(another client's load, which the gateway cannot see but in the metrics).

A request with ``max_tokens`` gets that many tokens (one stream chunk each, ``--token-s`` apart)
and its prompt's words as its prompt tokens; one without gets a fixed short answer.
``--energy-file`` makes it a GPU's power draw too: the file (read by the stand-in NVML library,
tests/nvml_standin/) holds one energy counter per GPU (``--tensor-parallel-size``), in
millijoules, which it advances by ``--mj-per-token`` for every prompt and output token and by
``--idle-watts`` over time, continuing from what the file held. It stands in for the engine;
it is not the thing under test.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# vLLM's and SGLang's names for: running, waiting, KV-cache share, prefix-cache figures
METRICS = {
    "vllm": ("vllm:num_requests_running", "vllm:num_requests_waiting",
             "vllm:kv_cache_usage_perc",
             "vllm:prefix_cache_queries_total 1000\nvllm:prefix_cache_hits_total 250\n"),
    "sglang": ("sglang:num_running_reqs", "sglang:num_queue_reqs", "sglang:token_usage",
               "sglang:cache_hit_rate 0.25\n"),
}


def own_args(kind: str, argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--served-model-name", default="standin")
    p.add_argument("--model" if kind == "vllm" else "--model-path", dest="model", required=True)
    p.add_argument("--tensor-parallel-size" if kind == "vllm" else "--tp-size", dest="tp",
                   type=int, default=1)
    return p.parse_known_args(argv)[0]


class Gpu:
    """The energy counters of the GPUs the engine runs on, advanced by its work as it happens
    and by time every ``TICK_S``, written (atomically) to the file the stand-in NVML library
    reads at each change."""

    TICK_S = 0.01

    def __init__(self, path: Path, gpus: int, mj_per_token: float, idle_watts: float) -> None:
        self.path, self.gpus = path, gpus
        self.mj_per_token, self.idle_watts = mj_per_token, idle_watts
        try:
            self.mj = sum(int(line) for line in path.read_text().split())
        except (OSError, ValueError):
            self.mj = 0
        self.lock = threading.Lock()
        self.last = time.monotonic()

    def tokens(self, count: int) -> None:
        self.advance(count * self.mj_per_token)

    def run(self) -> None:
        while True:
            time.sleep(self.TICK_S)
            self.advance(0.0)

    def advance(self, work_mj: float) -> None:
        with self.lock:
            now = time.monotonic()
            self.mj += round(work_mj + self.idle_watts * (now - self.last) * 1000)
            self.last = now
            share, rest = divmod(self.mj, self.gpus)  # split evenly; GPU 0 takes the rest
            lines = [share + rest] + [share] * (self.gpus - 1)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text("".join(f"{n}\n" for n in lines))
            os.replace(tmp, self.path)


class State:
    def __init__(self, kind: str, name: str, waiting: float, kv: float,
                 delay_s: float, token_s: float = 0.0, gpu: Gpu | None = None) -> None:
        self.kind, self.name, self.waiting, self.kv, self.delay_s = kind, name, waiting, kv, \
            delay_s
        self.token_s, self.gpu = token_s, gpu
        self.running = 0
        self.lock = threading.Lock()

    def metrics(self) -> str:
        running, waiting, kv, extra = METRICS[self.kind]
        label = f'{{model_name="{self.name}"}}'
        return (f"# HELP {running} Running requests.\n# TYPE {running} gauge\n"
                f"{running}{label} {self.running}\n{waiting}{label} {self.waiting}\n"
                f"{kv}{label} {self.kv}\n{extra}")


def handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("content-type", kind)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self.send(200, b"")
            elif self.path == "/metrics":
                self.send(200, state.metrics().encode(), "text/plain; version=0.0.4")
            elif self.path == "/v1/models":
                self.send(200, json.dumps({"data": [{"id": state.name}]}).encode())
            else:
                self.send(404, b"{}")

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path != "/v1/chat/completions":
                self.send(404, b"{}")
                return
            with state.lock:
                state.running += 1
            try:
                time.sleep(state.delay_s)
                self.answer(body)
            finally:
                with state.lock:
                    state.running -= 1

        def answer(self, body: dict[str, Any]) -> None:
            if body.get("max_tokens"):
                self.generate(body)
                return
            text = f"served by {state.name}"
            usage = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
            if not body.get("stream"):
                self.send(200, json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": state.name,
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": text}}],
                    "usage": usage}).encode())
                return
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunks: list[dict[str, Any]] = [
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": text},
                              "finish_reason": None}]},
                {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
                {"choices": [], "usage": usage}]
            for chunk in chunks:
                data = json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0,
                                   "model": state.name, **chunk})
                self.chunk(f"data: {data}\n\n".encode())
            self.chunk(b"data: [DONE]\n\n")
            self.chunk(b"")

        def generate(self, body: dict[str, Any]) -> None:
            """``max_tokens`` tokens, ``--token-s`` apart, each one on the GPU's counter."""
            prompt = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
            count = int(body["max_tokens"])
            usage = {"prompt_tokens": prompt, "completion_tokens": count,
                     "total_tokens": prompt + count}
            if state.gpu is not None:
                state.gpu.tokens(prompt)
            stream = bool(body.get("stream"))
            if stream:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
            for _ in range(count):
                time.sleep(state.token_s)
                if state.gpu is not None:
                    state.gpu.tokens(1)
                if stream:
                    self.event({"choices": [{"index": 0, "delta": {"content": "tok "},
                                             "finish_reason": None}]})
            if not stream:
                self.send(200, json.dumps({
                    "id": "c1", "object": "chat.completion", "created": 0, "model": state.name,
                    "choices": [{"index": 0, "finish_reason": "length",
                                 "message": {"role": "assistant", "content": "tok " * count}}],
                    "usage": usage}).encode())
                return
            self.event({"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
            self.event({"choices": [], "usage": usage})
            self.chunk(b"data: [DONE]\n\n")
            self.chunk(b"")

        def event(self, chunk: dict[str, Any]) -> None:
            data = json.dumps({"id": "c1", "object": "chat.completion.chunk", "created": 0,
                               "model": state.name, **chunk})
            self.chunk(f"data: {data}\n\n".encode())

        def chunk(self, data: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    return Handler


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--kind", choices=sorted(METRICS), required=True)
    p.add_argument("--record", type=Path, required=True)
    p.add_argument("--waiting", type=float, default=0.0)
    p.add_argument("--kv", type=float, default=0.1)
    p.add_argument("--delay-s", type=float, default=0.0)  # each answer's wait
    p.add_argument("--token-s", type=float, default=0.0)  # each generated token's time
    p.add_argument("--energy-file", type=Path)  # the GPUs' counters (the stand-in NVML's)
    p.add_argument("--mj-per-token", type=float, default=0.0)
    p.add_argument("--idle-watts", type=float, default=0.0)
    ours, rest = p.parse_known_args()
    server_args = own_args(ours.kind, rest)
    with ours.record.open("a") as f:
        f.write(json.dumps({"argv": sys.argv[1:], "pid": os.getpid()}) + "\n")
    gpu = None
    if ours.energy_file is not None:
        gpu = Gpu(ours.energy_file, server_args.tp, ours.mj_per_token, ours.idle_watts)
        threading.Thread(target=gpu.run, daemon=True).start()
    state = State(ours.kind, server_args.served_model_name, ours.waiting, ours.kv, ours.delay_s,
                  ours.token_s, gpu)
    server = ThreadingHTTPServer((server_args.host, server_args.port), handler(state))
    server.daemon_threads = True

    def stop(signum: int, frame: object) -> None:
        with ours.record.open("a") as f:
            f.write(json.dumps({"stopped": os.getpid()}) + "\n")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()


if __name__ == "__main__":
    main()
