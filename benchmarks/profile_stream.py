"""Where one stream's time goes: the embedded engine behind the gateway, one request at a time.

On a machine whose cores all run llama.cpp's compute threads, every bit of other CPU work per
token (the engine worker's Python around ``llama_decode``, the gateway's parsing, rendering and
metering, the client) delays the next decode step. This script streams chat completions one
after the other through ``inferplane up`` (the default embedded model, as ``bench_engine.py``
runs it) and reports per output token:

- the inter-token latency the client saw (ms),
- CPU time (ms) of the client (this process), the gateway's own process and its engine worker,
- with ``--py-spy`` (py-spy on the worker's main thread, idle samples included): the share of
  the worker's wall time inside ``llama_decode`` and outside it, as ms per token; and the
  gateway's busiest functions.

    python benchmarks/profile_stream.py                       # 8 streams x 128 tokens
    python benchmarks/profile_stream.py --requests 16 --py-spy

Results: ``benchmarks/results/profile-stream.{json,md}`` (``--name`` to change), and with
``--py-spy`` its raw stacks (``profile-stream-worker.txt``, ``-gateway.txt``). CPU time per
token is far less disturbed by a busy machine than latency is; compare latencies only from
runs on a quiet machine.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import inspect
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI

from bench_engine import gateway_process, prompt
from common import RequestResult, RequestSettings, machine_info, process_cpu_s, stream_chat

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def worker_pid(gateway: int) -> int:
    """The engine worker: the gateway's child running ``inferplane.engines.worker``."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        if ppid == gateway and b"inferplane.engines.worker" in cmdline:
            return int(entry.name)
    raise RuntimeError("no engine worker under the gateway")


def decode_frame() -> str:
    """The end of py-spy's name for the worker's frame while llama.cpp decodes
    (``LlamaModel.decode (inferplane/engines/llama.py:LINE)``)."""
    from inferplane.engines import llama

    lines, first = inspect.getsourcelines(llama.LlamaModel.decode)
    line = next(first + i for i, text in enumerate(lines) if "lc.llama_decode(" in text)
    return f"engines/llama.py:{line})"


def spy(pid: int, out: Path, *, idle: bool) -> subprocess.Popen[bytes]:
    """py-spy on ``pid`` until it is interrupted (SIGINT: it then writes ``out``)."""
    argv = [str(BIN / "py-spy"), "record", "--pid", str(pid), "--rate", "400", "--format",
            "raw", "--threads", "--nonblocking", "--output", str(out)]
    if idle:
        argv.append("--idle")
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


WAITING = ("Queue.get", "Condition.wait", "Event.wait")  # the worker waits for a command


def main_thread_split(raw: Path, frame: str) -> dict[str, int]:
    """Samples of the worker's main thread: inside ``frame`` (llama_decode), waiting for a
    command (no request running), and the rest (its own Python work between decodes)."""
    split = {"in_llama_decode": 0, "waiting": 0, "python": 0}
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "MainThread" not in stack.split(";", 1)[0]:
            continue
        last = stack.rsplit(";", 1)[-1]
        key = ("in_llama_decode" if stack.endswith(frame)
               else "waiting" if last.startswith(WAITING) else "python")
        split[key] += int(count)
    return split


def hottest(raw: Path, n: int = 12) -> list[tuple[str, float]]:
    """The functions with the most samples in their own frame (share of all samples)."""
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        own[stack.rsplit(";", 1)[-1]] += int(count)
        total += int(count)
    return [(name, count / total) for name, count in own.most_common(n)] if total else []


async def run(url: str, requests: int, max_tokens: int, first: int = 0
              ) -> list[RequestResult]:
    """``requests`` streams, one after the other, with prompts ``first``, ``first + 1``..."""
    settings = RequestSettings("default", max_tokens, 0.0, 1234)
    out = []
    async with AsyncOpenAI(base_url=url + "/v1", api_key="profile", max_retries=0) as client:
        for i in range(first, first + requests):
            out.append(await stream_chat(client, prompt(i), settings, RequestResult(1, 0)))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--requests", type=int, default=8)
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--threads", type=int, default=0, help="engine threads (default: all cores)")
    p.add_argument("--py-spy", action="store_true", help="sample the worker and the gateway")
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--name", default="profile-stream")
    a = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="inferplane-profile-"))
    server = gateway_process(tmp, a.threads or os.cpu_count() or 1)
    report: dict[str, Any] = {"benchmark": "profile-stream", "machine": machine_info(),
                              "requests": a.requests, "max_tokens": a.max_tokens}
    try:
        server.start()
        assert server.proc is not None
        gw = server.proc.pid
        worker = worker_pid(gw)
        asyncio.run(run(server.url, 2, a.max_tokens, first=20_000))  # warm-up, not measured
        spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        cpu0 = (time.process_time(), process_cpu_s(gw), process_cpu_s(worker))
        wall0 = time.perf_counter()
        if a.py_spy:
            spies = [(name, tmp / f"{name}.txt", spy(pid, tmp / f"{name}.txt",
                                                     idle=name == "worker"))
                     for name, pid in (("worker", worker), ("gateway", gw))]
        results = asyncio.run(run(server.url, a.requests, a.max_tokens))
        wall = time.perf_counter() - wall0
        cpu1 = (time.process_time(), process_cpu_s(gw), process_cpu_s(worker))
        for _, _, proc in spies:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
    finally:
        server.stop()
    tokens = sum(r.completion_tokens for r in results)
    itls = [r.itl_s for r in results if r.itl_s is not None]
    per_token = {name: (b - a_) * 1000 / tokens for name, a_, b in
                 zip(("client", "gateway", "worker"), cpu0, cpu1, strict=True)}
    report.update(tokens=tokens, errors=[r.error for r in results if r.error],
                  itl_ms=sum(itls) / len(itls) * 1000 if itls else None,
                  cpu_ms_per_token=per_token, wall_s=wall)
    a.out.mkdir(parents=True, exist_ok=True)
    for name, path, _ in spies:
        if not path.exists():
            continue
        shutil.copy(path, a.out / f"{a.name}-{name}.txt")  # py-spy's raw stacks
        if name == "worker":
            report["worker_main_thread"] = main_thread_split(path, decode_frame())
        report[f"{name}_hottest"] = hottest(path)
    shutil.rmtree(tmp, ignore_errors=True)
    (a.out / f"{a.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    (a.out / f"{a.name}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    c = r["cpu_ms_per_token"]
    itl = r["itl_ms"]
    m = r["machine"]
    load = ", ".join(f"{x:.2f}" for x in m["load_average_at_start"])
    lines = [
        "# One stream, per output token", "",
        f"{m['date']} · {m['cpu_model']}, {m['cpu_cores']} cores · load average {load}",
        "", f"{r['requests']} streams one after the other, {r['tokens']} tokens; ITL "
        f"{itl:.2f} ms." if itl else "", "",
        "| CPU per output token (ms) | client | gateway | engine worker |", "|---|---|---|---|",
        f"| | {c['client']:.2f} | {c['gateway']:.2f} | {c['worker']:.2f} |",
    ]
    split = r.get("worker_main_thread")
    if split and sum(split.values()):
        total = sum(split.values())
        per_token = {k: v / total * r["wall_s"] * 1000 / r["tokens"] for k, v in split.items()}
        lines += ["", "Worker main thread (py-spy, wall time over the run, per output token): "
                  f"{per_token['in_llama_decode']:.2f} ms inside llama_decode (prefill "
                  f"included), {per_token['python']:.2f} ms in its own Python between decodes, "
                  f"{per_token['waiting']:.2f} ms waiting for a request (between streams)."]
    for name in ("worker", "gateway"):
        hot = r.get(f"{name}_hottest")
        if hot:
            lines += ["", f"{name} (py-spy, own frame):", ""]
            lines += [f"- {share:.1%} {frame}" for frame, share in hot]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
