"""vLLM managed by Inferplane on one GPU: a short sweep through the gateway, the energy check
(per-request measured joules against NVML's own counter) and the decode step times the gateway
observed (the planner's live calibration input).

    python benchmarks/gpu/vllm_managed.py --model /models/Qwen2.5-0.5B-Instruct \\
        --planner-model qwen3-8b --hardware h100

Steps: installs Inferplane with the ``vllm`` and ``nvml`` extras into the running Python unless
``--no-install`` (a machine without a package registry needs vLLM there already); writes a
configuration with one ``engine: {kind: vllm}`` deployment; starts ``inferplane up``; streams
chat completions through it at each concurrency of ``--concurrency``; reads NVML's
total-energy counter of the engine's GPU before and after, and the engine's charged and idle
joules from ``/readyz``; compares the ledger's per-request energy with them; copies the
gateway's step-time file and fits it (``inferplane plan calibrate``). Results:
``benchmarks/results/gpu-vllm.{json,md}``.

The energy check passes when the requests' joules plus the idle joules are within 2% of the
counter's delta over the sweep (the issue's bar), and the requests' joules equal the engine's
charged joules.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
INFERPLANE = str(Path(sys.executable).parent / "inferplane")


def install() -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e",
                    f"{ROOT}[vllm,nvml]"], check=True)


def nvml_joules(index: int) -> float:
    import pynvml  # type: ignore[import-not-found, unused-ignore]

    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(index)
    return float(pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)) / 1000.0


def config(tmp: Path, model: str, planner_model: str, hardware: str, parallel: int) -> Path:
    path = tmp / "inferplane.yaml"
    path.write_text(
        f"store: {{url: 'sqlite:///{tmp}/ledger.db'}}\nledger: {{dir: '{tmp}/wal'}}\n"
        "models: [{name: default}]\n"
        "deployments:\n  - name: vllm\n    model: default\n"
        f"    hardware: {{accelerator: {hardware}, count: 1}}\n"
        f"    engine: {{kind: vllm, model: '{model}', parallel: {parallel}, context: 4096,"
        f" gpu_memory_share: 0.85, gpus: [0], planner_model: {planner_model},"
        f" log_file: '{tmp}/vllm.log', startup_timeout_s: 900}}\n")
    return path


async def sweep(url: str, concurrency: list[int], requests_per_level: int,
                max_tokens: int) -> list[dict[str, Any]]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=600)
    levels = []
    for c in concurrency:
        sem = asyncio.Semaphore(c)

        async def one(i: int, sem: asyncio.Semaphore = sem) -> tuple[float, int]:
            async with sem:
                start = time.perf_counter()
                ttft = None
                tokens = 0
                stream = await client.chat.completions.create(
                    model="default", max_tokens=max_tokens, stream=True,
                    stream_options={"include_usage": True},
                    messages=[{"role": "user", "content": f"Story {i}: a lighthouse."}])
                async for chunk in stream:
                    if ttft is None and chunk.choices and chunk.choices[0].delta.content:
                        ttft = time.perf_counter() - start
                    if chunk.usage is not None:
                        tokens = chunk.usage.completion_tokens
                return ttft or 0.0, tokens

        started = time.perf_counter()
        results = await asyncio.gather(*(one(i) for i in range(requests_per_level)))
        wall = time.perf_counter() - started
        ttfts = sorted(r[0] for r in results)
        levels.append({"concurrency": c, "requests": len(results),
                       "tokens_per_s": sum(r[1] for r in results) / wall,
                       "ttft_p50_ms": 1000 * ttfts[len(ttfts) // 2]})
        print(levels[-1], flush=True)
    await client.close()
    return levels


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="a model directory (or a name the machine "
                   "can load without a download)")
    p.add_argument("--planner-model", default="qwen3-8b",
                   help="the planner catalog's model for the step-time calibration")
    p.add_argument("--hardware", default="h100", help="the planner catalog's accelerator")
    p.add_argument("--concurrency", default="1,4,16")
    p.add_argument("--requests", type=int, default=32, help="requests per concurrency")
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--no-install", action="store_true")
    a = p.parse_args()
    if not a.no_install:
        install()
    import httpx

    tmp = Path(tempfile.mkdtemp(prefix="inferplane-gpu-"))
    env = {**os.environ, "INFERPLANE_CACHE_DIR": str(tmp / "cache")}
    port = 18080
    gateway = subprocess.Popen(
        [INFERPLANE, "up", "--config",
         str(config(tmp, a.model, a.planner_model, a.hardware, 64)), "--port", str(port)],
        stdout=(tmp / "gateway.log").open("wb"), stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if gateway.poll() is not None:
                raise RuntimeError((tmp / "gateway.log").read_text()[-3000:])
            time.sleep(1)
        status0 = httpx.get(url + "/readyz").json()["deployments"]["vllm"]
        counter0 = nvml_joules(0)
        levels = asyncio.run(sweep(url, [int(c) for c in a.concurrency.split(",")],
                                   a.requests, a.max_tokens))
        time.sleep(2)  # the last interval read
        counter1 = nvml_joules(0)
        status1 = httpx.get(url + "/readyz").json()["deployments"]["vllm"]
    finally:
        gateway.terminate()
        gateway.wait(120)
    with sqlite3.connect(tmp / "ledger.db") as db:
        rows = db.execute("SELECT energy_j, energy_method FROM usage_records").fetchall()
    requests_j = sum(r[0] or 0.0 for r in rows if r[1] == "measured")
    charged = status1.get("energy_charged_j", 0.0) - status0.get("energy_charged_j", 0.0)
    idle = status1.get("energy_idle_j", 0.0) - status0.get("energy_idle_j", 0.0)
    delta = counter1 - counter0
    error = abs(charged + idle - delta) / delta if delta else None
    steps_file = tmp / "cache" / "calibration" / "vllm.json"
    steps = json.loads(steps_file.read_text()) if steps_file.exists() else None
    fit = None
    if steps is not None:
        done = subprocess.run([INFERPLANE, "plan", "calibrate",
                               "--calibration", str(tmp / "fit.json"), "--json"], env=env,
                              capture_output=True, text=True)
        fit = json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}
    report = {
        "benchmark": "gpu-vllm", "model": a.model, "levels": levels,
        "energy": {"nvml_delta_j": delta, "engine_charged_j": charged, "engine_idle_j": idle,
                   "ledger_requests_j": requests_j, "measured_records": len(rows),
                   "relative_error": error, "within_2_percent": error is not None
                   and error <= 0.02},
        "step_times": steps, "calibration": fit,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu-vllm.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["# vLLM managed by Inferplane (GPU)", "", f"Model `{a.model}`.", "",
             "| Streams | tok/s | TTFT p50 (ms) |", "|---|---|---|"]
    lines += [f"| {lv['concurrency']} | {lv['tokens_per_s']:.1f} | {lv['ttft_p50_ms']:.0f} |"
              for lv in levels]
    e = report["energy"]
    lines += ["", f"Energy: NVML delta {delta:.1f} J; engine charged {charged:.1f} J + idle "
              f"{idle:.1f} J; ledger {requests_j:.1f} J over {len(rows)} records; error "
              f"{(error or 0):.2%} (within 2%: {e['within_2_percent']}).", ""]
    (RESULTS / "gpu-vllm.md").write_text("\n".join(lines))
    print("\n".join(lines))
    shutil.copy(tmp / "gateway.log", RESULTS / "gpu-vllm-gateway.log")
    return 0 if e["within_2_percent"] else 1


if __name__ == "__main__":
    sys.exit(main())
