"""Tokens per second of the embedded engine on Ray Serve: one replica against two, on a local
Ray cluster (``ray start --head --num-cpus 2``), the shipped gemma 3 270M.

    python benchmarks/bench_ray.py [--seconds 20] [--rounds 2] [--clients 4] [--out DIR]

Each layout is deployed with ``inferplane ray serve`` (autoscaling pinned: min = max replicas)
and driven straight at the application's OpenAI route by ``--clients`` concurrent clients,
each sending completions of exactly ``--max-tokens`` tokens (``ignore_eos``) back to back for
``--seconds`` after a warm-up; the layouts in turn, for ``--rounds`` rounds. Layouts: one
replica with one engine thread, two replicas with one thread each, and one replica with two
threads (the same two cores as two replicas). Writes ray.json and ray.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.integration
from tests.integration.ray_cluster import Engines, ray_cluster

from common import CpuMonitor, machine_info, write_results

LAYOUTS = (  # name, replicas, engine threads per replica, slots per replica
    ("1 replica x 1 thread", 1, 1, 4),
    ("2 replicas x 1 thread", 2, 1, 2),
    ("1 replica x 2 threads", 1, 2, 4),
)


def args_for(replicas: int, threads: int, slots: int) -> dict[str, Any]:
    return {
        "deployment": "bench", "model": "gemma", "num_cpus": 1,  # 2 CPUs: room to roll
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


def measure(engines: Engines, cluster_pid: int, clients: int, seconds: float,
            max_tokens: int) -> dict[str, Any]:
    asyncio.run(drive(engines, clients, 5, max_tokens))  # warm-up
    monitor = CpuMonitor(cluster_pid)
    result = asyncio.run(drive(engines, clients, seconds, max_tokens))
    use = monitor.stop()
    if use is not None:  # in cores: the cluster (engines, Serve), and everything else
        result["cluster_cores"] = round(use.server, 2)
        result["other_cores"] = round(use.other_processes, 2)
    return result


def median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def markdown(data: dict[str, Any]) -> str:
    by_layout: dict[str, list[dict[str, Any]]] = {}
    for run in data["runs"]:
        by_layout.setdefault(run["layout"], []).append(run)
    rows = []
    for layout, runs in by_layout.items():
        rates = [r["tokens_per_s"] for r in runs]
        rows.append(
            f"| {layout} | {median(rates):.1f} | {' / '.join(f'{x:.1f}' for x in rates)} | "
            f"{' / '.join(str(r['p50_latency_s']) for r in runs)} | "
            f"{' / '.join(str(r.get('cluster_cores', '?')) for r in runs)} | "
            f"{' / '.join(str(r.get('other_cores', '?')) for r in runs)} | "
            f"{sum(r['errors'] for r in runs)} |")
    medians = {k: median([r["tokens_per_s"] for r in v]) for k, v in by_layout.items()}
    one, two = medians[LAYOUTS[0][0]], medians[LAYOUTS[1][0]]
    return (
        "# Engines on Ray Serve: one replica against two\n\n"
        f"{data['machine']['cpu']} ({data['machine']['cores']} cores), Python "
        f"{data['machine']['python']}, Ray {data['ray']}; {data['date']}. "
        "`python benchmarks/bench_ray.py` (`make bench-ray`).\n\n"
        f"gemma 3 270M (Q4_K_M), {data['clients']} clients sending completions of exactly "
        f"{data['max_tokens']} tokens back to back for {data['seconds']:g} s straight at the "
        "Serve application's route, on a local Ray cluster with 2 CPUs; the layouts in turn, "
        f"{data['rounds']} rounds. Cores: CPU time per second of the Ray cluster's processes "
        "(engines, Serve) and of every other process on the machine.\n\n"
        "| layout | tokens/s, median | tokens/s, each round | p50 latency (s) | "
        "cluster cores | other cores | errors |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n\n"
        f"Two replicas with one engine thread each gave {two / one:.2f}x the tokens per second "
        "of one replica with one thread (medians). This machine has two cores and shares them "
        "with other work (the other cores column): a second replica can add no more than a "
        "second core, and only where that core is free, so on one box replicas mostly split the "
        "same cores. Decoding this model is bound by the cores' arithmetic and memory "
        "bandwidth; Serve's replicas pay off when each lands on a node (or GPU) of its own. "
        "One replica with two threads is the worst here: llama.cpp's threads wait for each "
        "other at every step, and on cores taken by other processes each step waits for the "
        "slowest thread.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    opts = parser.parse_args()
    import ray

    runs = []
    with tempfile.TemporaryDirectory(prefix="bray-", dir="/tmp") as tmp, \
            ray_cluster(Path(tmp), cpus=2) as cluster:
        port = None
        for round_ in range(opts.rounds):
            for layout, replicas, threads, slots in LAYOUTS:
                engines = cluster.serve(args_for(replicas, threads, slots), Path(tmp), port)
                port = int(engines.url.rsplit(":", 1)[1])
                engines.wait_replicas(replicas, timeout=180)
                time.sleep(3)  # the replaced replicas' reports age out
                engines.wait_replicas(replicas, timeout=60)
                result = measure(engines, cluster.proc.pid, opts.clients, opts.seconds,
                                 opts.max_tokens)
                runs.append({"round": round_ + 1, "layout": layout, "replicas": replicas,
                             "threads": threads, "slots": slots, **result})
                print(runs[-1], flush=True)
    info = machine_info()
    data = {"date": time.strftime("%Y-%m-%d"), "ray": ray.__version__,
            "machine": {"cpu": info["cpu_model"], "cores": info["cpu_cores"],
                        "python": info["python"], "load_average_at_start":
                        info["load_average_at_start"]},
            "clients": opts.clients, "max_tokens": opts.max_tokens, "seconds": opts.seconds,
            "rounds": opts.rounds,
            "runs": runs}
    write_results(opts.out, "ray", data, markdown(data))


if __name__ == "__main__":
    main()
