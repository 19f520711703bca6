"""What the Responses API costs the gateway beside chat completions: latency, requests per
second and gateway CPU per request, for the same question through ``/v1/chat/completions``
and ``/v1/responses`` (``store: false``, stored, and chained on a 10-response conversation by
``previous_response_id``).

    python benchmarks/bench_responses.py [--rounds 3] [--seconds 5] [--out benchmarks/results]

One gateway (SQLite store, the default ledger) in front of a fake OpenAI upstream that answers
at once (``tests/upstream``), so the gateway's own time is what shows; everything shares this
machine's cores. Each round measures every kind in turn:

- latency: sequential requests over one keep-alive connection, plain and streamed;
- throughput: ``--concurrency`` clients sending as fast as answers come, for ``--seconds``,
  with the gateway process's CPU time per request (``/proc/PID/stat``).

Writes responses.json and responses.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common
from tests.integration.gateway_proc import ledger_yaml, running_gateway
from tests.upstream.process import UpstreamProcess

from common import (
    closed_loop_ms,
    machine_info,
    percentile,
    process_cpu_s,
    sequential_ms,
    write_results,
)

QUESTION = "What does a lighthouse keeper do all night?"
KINDS = ("chat", "responses-unstored", "responses-stored", "responses-chained")
CHAIN = 10  # responses in the conversation the chained kind continues


def bodies(chain_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Each kind's path and body."""
    chat = {"model": "small", "max_tokens": 16, "temperature": 0,
            "messages": [{"role": "user", "content": QUESTION}]}
    resp = {"model": "small", "max_output_tokens": 16, "temperature": 0, "input": QUESTION}
    return {"chat": ("/v1/chat/completions", chat),
            "responses-unstored": ("/v1/responses", {**resp, "store": False}),
            "responses-stored": ("/v1/responses", resp),
            "responses-chained": ("/v1/responses", {**resp, "store": False,
                                                    "previous_response_id": chain_id})}


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 3),
            "p95_ms": round(percentile(values, 95), 3)}


def chain(client: httpx.Client, url: str) -> str:
    """A stored conversation of ``CHAIN`` responses; the last one's id."""
    previous = ""
    for i in range(CHAIN):
        body = {"model": "small", "input": f"Turn {i}: {QUESTION}", "max_output_tokens": 16,
                **({"previous_response_id": previous} if previous else {})}
        previous = str(client.post(url + "/v1/responses", json=body).json()["id"])
    return previous


def measure(args: argparse.Namespace, url: str, pid: int) -> dict[str, Any]:
    latency: dict[str, dict[str, list[float]]] = {k: {"plain": [], "stream": []} for k in KINDS}
    rps: dict[str, list[float]] = {k: [] for k in KINDS}
    cpu_ms: dict[str, list[float]] = {k: [] for k in KINDS}
    with httpx.Client(timeout=30) as client:
        kinds = bodies(chain(client, url))
        for path, body in kinds.values():  # warm-up
            sequential_ms(client, url + path, body, 30, False)
        for _ in range(args.rounds):
            for kind, (path, body) in kinds.items():
                for mode in ("plain", "stream"):
                    latency[kind][mode] += sequential_ms(client, url + path, body, args.requests,
                                                      mode == "stream")
            for kind, (path, body) in kinds.items():
                before = process_cpu_s(pid)
                count, _ = asyncio.run(closed_loop_ms(url + path, body, args.concurrency,
                                                  args.seconds))
                cpu_ms[kind].append((process_cpu_s(pid) - before) * 1000 / count)
                rps[kind].append(count / args.seconds)
    return {kind: {"sequential": {m: summary(v) for m, v in latency[kind].items()},
                   "rps_per_round": [round(r, 1) for r in rps[kind]],
                   "rps": round(statistics.median(rps[kind]), 1),
                   "cpu_ms_per_request_per_round": [round(c, 3) for c in cpu_ms[kind]],
                   "cpu_ms_per_request": round(statistics.median(cpu_ms[kind]), 3)}
            for kind in KINDS}


def markdown(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = ["| | " + " | ".join(KINDS) + " |", "|---" * (len(KINDS) + 1) + "|"]
    for mode, label in (("plain", "sequential, p50 latency (ms)"),
                        ("stream", "sequential streamed, p50 latency (ms)")):
        rows.append(f"| {label} | " + " | ".join(
            f"{r[k]['sequential'][mode]['p50_ms']:.2f}" for k in KINDS) + " |")
    rows.append(f"| {data['concurrency']} clients, requests/s (median of rounds) | "
                + " | ".join(f"{r[k]['rps']:.0f}" for k in KINDS) + " |")
    rows.append(f"| {data['concurrency']} clients, gateway CPU per request (ms) | "
                + " | ".join(f"{r[k]['cpu_ms_per_request']:.3f}" for k in KINDS) + " |")
    m = data["machine"]
    return (
        "# The Responses API beside chat completions\n\n"
        "`python benchmarks/bench_responses.py`: one gateway (SQLite store) in front of a fake "
        "upstream that answers at once, the same question through each kind of request; "
        f"{data['rounds']} rounds of {data['requests']} sequential requests per kind and mode "
        f"and {data['seconds']:.0f} s at {data['concurrency']} clients per kind. "
        "`responses-stored` writes each response to the store before it answers (one SQLite "
        "transaction, in a thread); `responses-chained` reads a conversation of "
        f"{CHAIN} stored responses before routing (`store: false`, so it stays {CHAIN}).\n\n"
        + "\n".join(rows) + "\n\n"
        f"Machine: {m['cpu_model']}, {m['cpu_cores']} cores, load average at the "
        f"start {data['load_before']}; everything (clients, gateway, upstream) shares it.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp, UpstreamProcess("up", api_key="k",
                                                               args=["--no-log"]) as up:
        root = Path(tmp)
        config = (ledger_yaml(root, 250) + "models:\n  - {name: small}\ndeployments:\n"
                  f"  - {{name: up1, model: small, provider: openai, base_url: '{up.url}/v1', "
                  "api_key: 'env:UP_KEY'}\n")
        with running_gateway(root, config, env={"UP_KEY": "k"}) as gateway:
            assert gateway.proc is not None
            results = measure(args, gateway.url, gateway.proc.pid)
    data = {"rounds": args.rounds, "requests": args.requests, "seconds": args.seconds,
            "concurrency": args.concurrency, "load_before": round(load, 2),
            "machine": machine_info(), "results": results}
    write_results(args.out, "responses", data, markdown(data))


if __name__ == "__main__":
    main()
