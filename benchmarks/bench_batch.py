"""Interactive TTFT while a batch runs: the Batch API's low priority, measured.

    python benchmarks/bench_batch.py [--out benchmarks/results] [--quick]

Two setups, each a real gateway process driven with the openai SDK:

* hosted: a fake OpenAI upstream with latency (``--think-ms``, ``--token-delay-ms``) behind
  the gateway; a batch of 1,000 chat requests runs while interactive streaming requests
  measure their time to first token (TTFT). Baseline: the same interactive requests with
  nothing else running. Also the batch's completion time.
* engine: the embedded llama.cpp engine (gemma-3-270m on the CPU), a smaller batch (2 cores
  cannot run 1,000 in a reasonable time), where the engine's scheduler puts interactive
  sequences first. Compared with the same work sent as interactive requests (no priority).

Writes batch.json and batch.md.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI, OpenAI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.*
from tests.integration.gateway_proc import GatewayProc, ledger_yaml, running_gateway
from tests.upstream.process import UpstreamProcess

from common import (
    RequestResult,
    RequestSettings,
    machine_info,
    percentile,
    stream_chat,
    write_results,
)

UPSTREAM_KEY = "sk-bench-batch"
PROMPT = "Tell me about the weather in a few words."


def batch_file(n: int, model: str, max_tokens: int) -> bytes:
    return b"".join(json.dumps({
        "custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
        "body": {"model": model, "max_tokens": max_tokens, "temperature": 0,
                 "messages": [{"role": "user", "content": f"Item {i}: {PROMPT}"}]},
    }).encode() + b"\n" for i in range(n))


async def interactive(url: str, settings: RequestSettings, until: Callable[[], bool],
                      least: int, width: int = 1) -> list[float]:
    """Streamed requests, ``width`` at a time, until ``until()`` and at least ``least``
    done; their TTFTs (seconds)."""
    client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    ttfts: list[float] = []
    errors = 0

    async def one_client() -> None:
        nonlocal errors
        while len(ttfts) < least or not until():
            result = await stream_chat(client, PROMPT, settings, RequestResult(width, 0))
            if result.ttft_s is None:
                errors += 1
                if errors > 20:
                    raise RuntimeError(f"interactive requests fail: {result.error}")
                continue
            ttfts.append(result.ttft_s)

    await asyncio.gather(*(one_client() for _ in range(width)))
    await client.close()
    return ttfts


def summary(ttfts: list[float]) -> dict[str, Any]:
    ms = [t * 1000 for t in ttfts]
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2),
            "p95_ms": round(percentile(ms, 95), 2), "mean_ms": round(statistics.fmean(ms), 2)}


async def during_batch(gateway: GatewayProc, n: int, model: str, max_tokens: int,
                       settings: RequestSettings, width: int) -> dict[str, Any]:
    """Submit a batch of ``n`` lines; stream interactive requests until it completes."""
    client = OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
    file_id = client.files.create(file=("in.jsonl", io.BytesIO(batch_file(n, model,
                                                                          max_tokens))),
                                  purpose="batch").id
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    started = time.perf_counter()
    state: dict[str, Any] = {"done": False, "batch": None}

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=30) as http:
            while True:
                got = (await http.get(f"{gateway.url}/v1/batches/{batch.id}")).json()
                if got["status"] in ("completed", "failed", "expired", "cancelled"):
                    state["done"], state["batch"] = True, got
                    state["wall_s"] = time.perf_counter() - started
                    return
                await asyncio.sleep(0.2)

    await asyncio.sleep(1.0)  # the runner has claimed lines and the batch is in full swing
    watcher = asyncio.create_task(poll())
    ttfts = await interactive(gateway.url, settings, lambda: bool(state["done"]), 20, width)
    await watcher
    got = state["batch"]
    return {"ttft": summary(ttfts), "batch_lines": n, "batch_status": got["status"],
            "batch_counts": got["request_counts"],
            "batch_wall_s": round(state["wall_s"], 2),
            "batch_server_s": got["completed_at"] - got["created_at"]
            if got["completed_at"] else None}


async def during_interactive_load(url: str, n: int, settings: RequestSettings,
                                  load: RequestSettings, width: int, load_width: int
                                  ) -> dict[str, Any]:
    """The same ``n`` requests as a batch would carry, sent as interactive streams
    ``load_width`` at a time, while the measured interactive requests run."""
    sent = 0
    done = asyncio.Event()

    async def loader() -> None:
        nonlocal sent
        client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

        async def worker() -> None:
            nonlocal sent
            while sent < n:
                sent += 1
                await stream_chat(client, PROMPT, load, RequestResult(load_width, 0))

        await asyncio.gather(*(worker() for _ in range(load_width)))
        await client.close()
        done.set()

    started = time.perf_counter()
    task = asyncio.create_task(loader())
    await asyncio.sleep(1.0)
    ttfts = await interactive(url, settings, done.is_set, 20, width)
    await task
    return {"ttft": summary(ttfts), "load_requests": n,
            "load_wall_s": round(time.perf_counter() - started, 2)}


async def measure(gateway: GatewayProc, model: str, n: int, batch_tokens: int,
                  settings: RequestSettings, width: int, alone_n: int,
                  extra: Callable[[], Awaitable[dict[str, Any]]] | None = None
                  ) -> dict[str, Any]:
    await interactive(gateway.url, settings, lambda: True, 5, width)  # warm up
    alone = summary(await interactive(gateway.url, settings, lambda: True, alone_n, width))
    during = await during_batch(gateway, n, model, batch_tokens, settings, width)
    result = {"alone": alone, "during_batch": during,
              "p50_ratio": round(during["ttft"]["p50_ms"] / alone["p50_ms"], 3),
              "p95_ratio": round(during["ttft"]["p95_ms"] / alone["p95_ms"], 3)}
    if extra is not None:
        result["during_same_work_as_interactive"] = await extra()
    return result


def hosted_config(root: Path, upstream: UpstreamProcess, concurrency: int) -> str:
    return (ledger_yaml(root, 50) + "models:\n  - name: chat\n" "deployments:\n"
            f"  - {{name: chat-up, model: chat, provider: openai, api_key: 'env:UPSTREAM_KEY',"
            f" base_url: '{upstream.url}/v1', upstream_model: gpt-4o-mini, vendor: openai,"
            f" batch: {{max_concurrency: {concurrency}}}}}\n")


async def hosted(root: Path, n: int) -> dict[str, Any]:
    args = ["--think-ms", "100", "--token-delay-ms", "5", "--no-log"]
    with UpstreamProcess("bench", api_key=UPSTREAM_KEY, args=args) as upstream, \
            running_gateway(root, hosted_config(root, upstream, 16),
                            env={"UPSTREAM_KEY": UPSTREAM_KEY}) as gateway:
        settings = RequestSettings("chat", 16, 0.0, 1)
        result = await measure(gateway, "chat", n, 16, settings, 2, 60)
    return {"setup": {"upstream_think_ms": 100, "upstream_token_delay_ms": 5,
                      "batch_max_concurrency": 16, "batch_max_tokens": 16,
                      "interactive_max_tokens": 16, "interactive_concurrency": 2}, **result}


def engine_config(root: Path, parallel: int) -> str:
    return (ledger_yaml(root, 50) + "models:\n  - name: default\n" "deployments:\n"
            "  - name: local-gemma\n    model: default\n    provider: llamacpp\n"
            f"    engine: {{model: 'builtin:gemma-3-270m', parallel: {parallel}, "
            "context: 1024}\n")


async def engine(root: Path, n: int) -> dict[str, Any]:
    parallel = 4
    with running_gateway(root, engine_config(root, parallel)) as gateway:
        settings = RequestSettings("default", 8, 0.0, 1)
        load = RequestSettings("default", 32, 0.0, 1)

        def same_work() -> Awaitable[dict[str, Any]]:
            return during_interactive_load(gateway.url, n, settings, load, 1, parallel)

        result = await measure(gateway, "default", n, 32, settings, 1, 30, same_work)
    return {"setup": {"model": "builtin:gemma-3-270m", "parallel": parallel,
                      "batch_max_tokens": 32, "interactive_max_tokens": 8,
                      "interactive_concurrency": 1}, **result}


def markdown(data: dict[str, Any]) -> str:
    rows = []
    for name, label in (("hosted", "fake OpenAI upstream, 100 ms to first token"),
                        ("engine", "embedded engine, gemma-3-270m on the CPU")):
        r = data[name]
        during = r["during_batch"]
        rows.append(f"| {label} | {during['batch_lines']} | {r['alone']['p50_ms']} / "
                    f"{r['alone']['p95_ms']} | {during['ttft']['p50_ms']} / "
                    f"{during['ttft']['p95_ms']} | {r['p50_ratio']} / {r['p95_ratio']} | "
                    f"{during['batch_wall_s']} |")
    same = data["engine"].get("during_same_work_as_interactive")
    tail = ""
    if same is not None:
        alone = data["engine"]["alone"]
        tail = (f"\nWithout priority (engine): the same {same['load_requests']} requests sent "
                f"as interactive streams, {data['engine']['setup']['parallel']} at a time: "
                f"interactive TTFT p50 / p95 {same['ttft']['p50_ms']} / {same['ttft']['p95_ms']}"
                f" ms (x{same['ttft']['p50_ms'] / alone['p50_ms']:.2f} / "
                f"x{same['ttft']['p95_ms'] / alone['p95_ms']:.2f} of alone).\n")
    m = data["machine"]
    return (
        "# Interactive TTFT while a batch runs (`make bench-batch`)\n\n"
        f"{m['date']}, {m['cpu_model']}, {m['cpu_cores']} cores (shared with other work: "
        f"load average {m['load_average_at_start'][0]:.1f} at start).\n\n"
        "| setup | batch lines | TTFT alone p50 / p95 (ms) | during the batch p50 / p95 (ms) "
        "| ratio p50 / p95 | batch completed in (s) |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n" + tail +
        "\nTarget: interactive TTFT during the batch within 20% of alone (ratio <= 1.2).\n"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--quick", action="store_true", help="100 hosted lines, 12 on the engine")
    parser.add_argument("--only", choices=["hosted", "engine"], help="run one setup (no files)")
    args = parser.parse_args()
    data: dict[str, Any] = {"machine": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        if args.only != "engine":
            data["hosted"] = await hosted(Path(tmp) / "hosted", 100 if args.quick else 1000)
        if args.only != "hosted":
            data["engine"] = await engine(Path(tmp) / "engine", 12 if args.quick else 40)
    if args.only is not None:
        print(json.dumps(data, indent=2))
        return
    write_results(args.out, "batch", data, markdown(data))


if __name__ == "__main__":
    asyncio.run(main())
