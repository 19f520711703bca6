"""Prefix-affinity routing against round-robin, on two embedded llama.cpp replicas.

The workload is what affinity is for: requests that share long prefixes (a document, a system
prompt) arrive in random order. Each replica's engine keeps the KV cache of its finished
sequences and reuses a cached prefix; affinity sends a prefix to the replica that holds it,
round-robin spreads every prefix over both. Both runs use the same requests in the same order
on a fresh gateway; the machine's cores are split between the replicas (one thread each).

    python benchmarks/bench_affinity.py [--documents 8] [--requests 64] [--concurrency 4]

Writes ``benchmarks/results/affinity.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    RequestResult,
    RequestSettings,
    ServerProcess,
    free_port,
    machine_info,
    percentile,
    stream_chat,
)

BIN = Path(sys.executable).parent
RESULTS = Path(__file__).resolve().parent / "results"
POLICIES = ("round-robin", "prefix-affinity")
WORDS = [
    "river", "harbour", "ledger", "lantern", "meadow", "quarry", "signal", "timber",
    "orchard", "beacon", "compass", "granite", "willow", "canyon", "ember", "falcon",
    "glacier", "harvest", "island", "jasmine", "kettle",
]


def document(i: int, words: int) -> str:
    """A deterministic pseudo-document: the shared prefix of requests about it."""
    rng = random.Random(i)
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return f"Document {i}. Read it, then answer the question after it.\n{body}\n"


def config(tmp: Path, policy: str, parallel: int, context: int) -> Path:
    engine = f"{{model: 'builtin:gemma-3-270m', parallel: {parallel}, context: {context}, " \
             "threads: 1}"
    text = (f"store: {{url: 'sqlite:///{tmp}/{policy}.db'}}\n"
            f"ledger: {{dir: '{tmp}/{policy}-wal', commit_interval_ms: 20}}\n"
            f"models: [{{name: docs, routing: {{policy: {policy}}}}}]\n"
            "deployments:\n"
            f"  - {{name: replica-a, model: docs, provider: llamacpp, engine: {engine}}}\n"
            f"  - {{name: replica-b, model: docs, provider: llamacpp, engine: {engine}}}\n")
    path = tmp / f"{policy}.yaml"
    path.write_text(text)
    return path


async def drive(url: str, prompts: list[str], concurrency: int, max_tokens: int
                ) -> tuple[list[RequestResult], float]:
    client = AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    settings = RequestSettings("docs", max_tokens, 0.0, 1)
    queue = list(enumerate(prompts))
    results: list[RequestResult] = []

    async def worker() -> None:
        while queue:
            i, prompt = queue.pop(0)
            results.append(await stream_chat(client, prompt, settings,
                                             RequestResult(concurrency, i)))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    await client.close()
    return results, wall


def ledger_totals(db: Path) -> dict[str, Any]:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT deployment, count(*), sum(prompt_tokens), sum(cached_tokens) "
                "FROM usage_records WHERE status = 200 GROUP BY deployment")).all()
    finally:
        engine.dispose()
    prompt = sum(r[2] for r in rows)
    cached = sum(r[3] for r in rows)
    return {"requests_by_replica": {r[0]: r[1] for r in rows}, "prompt_tokens": prompt,
            "cached_prompt_tokens": cached, "cached_share": cached / prompt if prompt else 0.0}


def run_policy(policy: str, prompts: list[str], opts: argparse.Namespace, tmp: Path
               ) -> dict[str, Any]:
    port = free_port()
    server = ServerProcess(
        f"inferplane ({policy})",
        [str(BIN / "inferplane"), "up", "--config",
         str(config(tmp, policy, opts.parallel, opts.context)), "--port", str(port)],
        port, "/readyz", tmp / f"{policy}.log")
    server.start()
    try:
        warm = [prompts[0][:200]]  # load both engines' weights into the page cache
        asyncio.run(drive(server.url, warm * 2, 2, 1))
        results, wall = asyncio.run(drive(server.url, prompts, opts.concurrency,
                                          opts.max_tokens))
    finally:
        server.stop()
    ok = [r for r in results if r.error is None and r.ttft_s is not None]
    ttfts = [r.ttft_s for r in ok if r.ttft_s is not None]
    tokens = sum(r.completion_tokens for r in ok)
    return {
        "policy": policy, "requests": len(results), "errors": len(results) - len(ok),
        "wall_s": round(wall, 2), "requests_per_s": round(len(ok) / wall, 3),
        "output_tokens_per_s": round(tokens / wall, 2),
        "ttft_p50_ms": round(percentile(ttfts, 50) * 1000, 1),
        "ttft_p99_ms": round(percentile(ttfts, 99) * 1000, 1),
        **ledger_totals(tmp / f"{policy}.db"),
    }


def markdown(report: dict[str, Any]) -> str:
    w = report["workload"]
    lines = [
        "# Prefix-affinity routing vs round-robin",
        "",
        f"Two embedded llama.cpp replicas (Gemma 3 270M Q4_K_M, {w['parallel']} slots x "
        f"{w['context']} tokens, 1 thread each) behind one gateway; {w['documents']} documents "
        f"of ~{w['document_tokens_estimate']} tokens, {w['requests']} requests in a seeded random "
        f"order, {w['concurrency']} concurrent streams, {w['max_tokens']} output tokens each, "
        "greedy decoding. Same requests, same order, fresh gateway per policy.",
        "",
        "| policy | TTFT p50 ms | TTFT p99 ms | requests/s | output tok/s | cached share "
        "of prompt tokens | requests per replica |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["runs"]:
        lines.append(
            f"| {r['policy']} | {r['ttft_p50_ms']:,.0f} | {r['ttft_p99_ms']:,.0f} | "
            f"{r['requests_per_s']:.2f} | {r['output_tokens_per_s']:.1f} | "
            f"{r['cached_share']:.0%} | {r['requests_by_replica']} |")
    ratio = report["affinity_vs_round_robin"]
    lines += [
        "",
        f"Prefix affinity: TTFT p50 {ratio['ttft_p50']:.2f}x round-robin's "
        f"(lower is better), throughput {ratio['requests_per_s']:.2f}x.",
        "",
        f"Machine: {report['machine']['cpu_model']}, {report['machine']['cpu_cores']} cores; "
        f"{report['machine']['date']}. Load average at start: "
        f"{report['machine']['load_average_at_start']}.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=8)
    parser.add_argument("--document-words", type=int, default=700)
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--out", type=Path, default=RESULTS / "affinity")
    opts = parser.parse_args()
    docs = [document(i, opts.document_words) for i in range(opts.documents)]
    rng = random.Random(42)
    prompts = [rng.choice(docs) + f"Question {q}: which word comes first?"
               for q in range(opts.requests)]
    report: dict[str, Any] = {"machine": machine_info(), "workload": {
        "documents": opts.documents, "document_tokens_estimate": round(opts.document_words * 0.83),
        "requests": opts.requests, "concurrency": opts.concurrency,
        "parallel": opts.parallel, "context": opts.context, "max_tokens": opts.max_tokens,
    }, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        for policy in POLICIES:
            run = run_policy(policy, prompts, opts, Path(tmp))
            print(json.dumps(run), flush=True)
            report["runs"].append(run)
    rr, aff = report["runs"]
    report["affinity_vs_round_robin"] = {
        "ttft_p50": aff["ttft_p50_ms"] / rr["ttft_p50_ms"],
        "requests_per_s": aff["requests_per_s"] / rr["requests_per_s"],
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    opts.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
