"""Tokens per second of the embedded engine on Ray Serve: one replica against two, on a local
Ray cluster (``ray start --head --num-cpus 2``), the shipped gemma 3 270M.

    python benchmarks/bench_ray.py [--seconds 30] [--clients 4] [--out benchmarks/results]

Each layout is deployed with ``inferplane ray serve`` (autoscaling pinned: min = max replicas)
and driven straight at the application's OpenAI route by ``--clients`` concurrent clients,
each sending completions of exactly ``--max-tokens`` tokens (``ignore_eos``) back to back for
``--seconds`` after a warm-up. Layouts: one replica with one engine thread, two replicas with
one thread each, and one replica with two threads (the same two cores as two replicas). Writes
ray.json and ray.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.integration
from tests.integration.ray_cluster import Engines, ray_cluster

from common import machine_info, write_results

LAYOUTS = (  # name, replicas, engine threads per replica, slots per replica
    ("1 replica x 1 thread", 1, 1, 4),
    ("2 replicas x 1 thread", 2, 1, 2),
    ("1 replica x 2 threads", 1, 2, 4),
)


def args_for(replicas: int, threads: int, slots: int) -> dict[str, Any]:
    return {
        "deployment": "bench", "model": "gemma", "num_cpus": 1 if replicas > 1 else 2,
        "engine": {"model": "builtin:gemma-3-270m", "parallel": slots, "threads": threads,
                   "context": 512},
        "autoscaling": {"min_replicas": replicas, "max_replicas": replicas,
                        "target_ongoing_requests": 2},
    }


async def drive(engines: Engines, clients: int, seconds: float, max_tokens: int
                ) -> dict[str, Any]:
    """Completions back to back from ``clients`` clients for ``seconds``."""
    tokens = 0
    requests = 0
    errors = 0
    latencies: list[float] = []
    end = time.monotonic() + seconds

    async def client(http: httpx.AsyncClient, i: int) -> None:
        nonlocal tokens, requests, errors
        n = 0
        while time.monotonic() < end:
            n += 1
            started = time.monotonic()
            body = {"model": "gemma", "prompt": f"Story {i}.{n}: once upon a time",
                    "max_tokens": max_tokens, "ignore_eos": True, "temperature": 0.8}
            try:
                r = await http.post(f"{engines.base_url}/completions", json=body)
                r.raise_for_status()
                tokens += int(r.json()["usage"]["completion_tokens"])
                requests += 1
                latencies.append(time.monotonic() - started)
            except httpx.HTTPError:
                errors += 1

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120) as http:
        await asyncio.gather(*(client(http, i) for i in range(clients)))
    elapsed = time.monotonic() - started
    latencies.sort()
    return {"tokens": tokens, "requests": requests, "errors": errors,
            "seconds": round(elapsed, 1), "tokens_per_s": round(tokens / elapsed, 1),
            "p50_latency_s": round(latencies[len(latencies) // 2], 2) if latencies else None}


def measure(engines: Engines, clients: int, seconds: float, max_tokens: int
            ) -> dict[str, Any]:
    asyncio.run(drive(engines, clients, 5, max_tokens))  # warm-up
    load_before = os.getloadavg()[0]
    result = asyncio.run(drive(engines, clients, seconds, max_tokens))
    result["loadavg_1m_before"] = round(load_before, 2)
    return result


def markdown(data: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {r['layout']} | {r['replicas']} | {r['tokens_per_s']} | {r['requests']} | "
        f"{r['p50_latency_s']} | {r['errors']} | {r['loadavg_1m_before']} |"
        for r in data["runs"])
    base = data["runs"][0]["tokens_per_s"]
    two = data["runs"][1]["tokens_per_s"]
    return (
        "# Engines on Ray Serve: one replica against two\n\n"
        f"{data['machine']['cpu']} ({data['machine']['cores']} cores), Python "
        f"{data['machine']['python']}, Ray {data['ray']}; {data['date']}. "
        "`python benchmarks/bench_ray.py` (`make bench-ray`).\n\n"
        f"gemma 3 270M (Q4_K_M), {data['clients']} clients sending completions of exactly "
        f"{data['max_tokens']} tokens back to back for {data['seconds']} s straight at the "
        "Serve application's route, on a local Ray cluster with 2 CPUs.\n\n"
        "| layout | replicas | tokens/s | requests | p50 latency (s) | errors | "
        "load avg before |\n|---|---|---|---|---|---|---|\n"
        f"{rows}\n\n"
        f"Two replicas give {two / base:.2f}x one replica's tokens per second with one engine "
        "thread each. The machine has two cores, shared with other work (the load average "
        "column): a second replica adds a second engine thread, which is all it can add here, "
        "and one replica with two threads uses the same two cores. Decoding a 270M model is "
        "bound by the cores' arithmetic and memory bandwidth, so on one box replicas only "
        "split the same cores; Serve's replicas pay off when each lands on its own node (or "
        "GPU).\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    opts = parser.parse_args()
    import ray

    runs = []
    with tempfile.TemporaryDirectory(prefix="bray-", dir="/tmp") as tmp, \
            ray_cluster(Path(tmp), cpus=2) as cluster:
        port = None
        for layout, replicas, threads, slots in LAYOUTS:
            engines = cluster.serve(args_for(replicas, threads, slots), Path(tmp), port)
            port = int(engines.url.rsplit(":", 1)[1])
            engines.wait_replicas(replicas, timeout=180)
            time.sleep(3)  # the replaced replicas' reports age out
            engines.wait_replicas(replicas, timeout=60)
            result = measure(engines, opts.clients, opts.seconds, opts.max_tokens)
            runs.append({"layout": layout, "replicas": replicas, "threads": threads,
                         "slots": slots, **result})
            print(runs[-1], flush=True)
    info = machine_info()
    data = {"date": time.strftime("%Y-%m-%d"), "ray": ray.__version__,
            "machine": {"cpu": info["cpu_model"], "cores": info["cpu_cores"],
                        "python": info["python"], "load_average_at_start":
                        info["load_average_at_start"]},
            "clients": opts.clients, "max_tokens": opts.max_tokens, "seconds": opts.seconds,
            "runs": runs}
    write_results(opts.out, "ray", data, markdown(data))


if __name__ == "__main__":
    main()
