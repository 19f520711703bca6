"""What tracing costs the gateway: requests per second and latency with tracing off and on.

    python benchmarks/bench_tracing.py [--rounds 3] [--seconds 8] [--out benchmarks/results]

Starts a fake OpenAI upstream that answers at once (``tests/upstream``), so the gateway's own
time is what shows, an OTLP/HTTP receiver in its own process
(``tests/integration/otlp_receiver.py``, decoding every export as a collector would) and two
gateways on the same configuration: one without tracing, one with ``observe: {tracing: true}``
exporting every span (the default sampler, ``parentbased_always_on``, and a client
``traceparent`` on every request). Everything runs on
this machine and shares its cores. The two gateways are measured in turn, round after round:

- latency: sequential requests over one keep-alive connection, non-streamed and streamed;
- throughput: ``--concurrency`` clients sending as fast as answers come, for ``--seconds``,
  with the gateway process's own CPU time per request (``/proc/PID/stat``): what tracing adds
  to the gateway, whatever else shares the cores.

Writes tracing.json and tracing.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common
from tests.integration.gateway_proc import GatewayProc, ledger_yaml, running_gateway
from tests.upstream.process import UpstreamProcess

from common import (
    closed_loop_ms,
    machine_info,
    percentile,
    process_cpu_s,
    sequential_ms,
    write_results,
)

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACED = {"traceparent": TRACEPARENT}
BODY = {"model": "small", "max_tokens": 16, "temperature": 0,
        "messages": [{"role": "user", "content": "What does a lighthouse keeper do all night?"}]}
MODES = ("off", "on")


def config(root: Path, up: UpstreamProcess, tracing: bool) -> str:
    return (ledger_yaml(root, 250) + "models:\n  - {name: small}\n" + "deployments:\n"
            f"  - {{name: up1, model: small, provider: openai, base_url: '{up.url}/v1', "
            "api_key: 'env:UP_KEY', price: {input_per_mtok: 1, output_per_mtok: 2}}\n"
            + ("observe: {tracing: true}\n" if tracing else ""))


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50_ms": round(statistics.median(values), 3),
            "p95_ms": round(percentile(values, 95), 3),
            "mean_ms": round(statistics.fmean(values), 3)}


@contextmanager
def receiver() -> Iterator[str]:
    """An OTLP/HTTP receiver in its own process; its endpoint."""
    proc = subprocess.Popen([sys.executable, "-m", "tests.integration.otlp_receiver"],
                            stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(10)


def measure(args: argparse.Namespace, gateways: dict[str, GatewayProc], endpoint: str
            ) -> dict[str, Any]:
    urls = {mode: g.url + "/v1/chat/completions" for mode, g in gateways.items()}
    latency: dict[str, dict[str, list[float]]] = {m: {"chat": [], "stream": []} for m in MODES}
    rps: dict[str, list[float]] = {m: [] for m in MODES}
    loaded: dict[str, list[float]] = {m: [] for m in MODES}
    cpu_ms: dict[str, list[float]] = {m: [] for m in MODES}
    pids = {mode: g.proc.pid for mode, g in gateways.items() if g.proc is not None}
    with httpx.Client(timeout=30, headers=TRACED) as client:
        for mode in MODES:  # warm-up
            sequential_ms(client, urls[mode], BODY, 50, False)
            asyncio.run(closed_loop_ms(urls[mode], BODY, args.concurrency, 1.0, TRACED))
        for _ in range(args.rounds):
            for mode in MODES:
                for kind in ("chat", "stream"):
                    latency[mode][kind] += sequential_ms(client, urls[mode], BODY,
                                                         args.requests, kind == "stream")
            for mode in MODES:
                before = process_cpu_s(pids[mode])
                count, times = asyncio.run(closed_loop_ms(urls[mode], BODY, args.concurrency,
                                                          args.seconds, TRACED))
                cpu_ms[mode].append((process_cpu_s(pids[mode]) - before) * 1000 / count)
                rps[mode].append(count / args.seconds)
                loaded[mode] += times
    time.sleep(1.0)  # the last batch exported
    out: dict[str, Any] = {}
    for mode in MODES:
        out[mode] = {"sequential": {k: summary(v) for k, v in latency[mode].items()},
                     "rps_per_round": [round(r, 1) for r in rps[mode]],
                     "rps": round(statistics.median(rps[mode]), 1),
                     "cpu_ms_per_request_per_round": [round(c, 3) for c in cpu_ms[mode]],
                     "cpu_ms_per_request": round(statistics.median(cpu_ms[mode]), 3),
                     "under_load": summary(loaded[mode])}
    off, on = out["off"], out["on"]
    out["change_pct"] = {
        "rps": round((on["rps"] / off["rps"] - 1) * 100, 1),
        "cpu_per_request": round((on["cpu_ms_per_request"] / off["cpu_ms_per_request"] - 1)
                                 * 100, 1),
        # each round measures off then on within seconds: the median of the rounds' own
        # ratios cancels the machine's drift between rounds
        "cpu_per_request_paired": round((statistics.median(
            b / a for a, b in zip(cpu_ms["off"], cpu_ms["on"], strict=True)) - 1) * 100, 1),
        "rps_paired": round((statistics.median(
            b / a for a, b in zip(rps["off"], rps["on"], strict=True)) - 1) * 100, 1),
        "p50_under_load": round((on["under_load"]["p50_ms"] / off["under_load"]["p50_ms"] - 1)
                                * 100, 1),
        **{f"p50_sequential_{k}": round((on["sequential"][k]["p50_ms"]
                                         / off["sequential"][k]["p50_ms"] - 1) * 100, 1)
           for k in ("chat", "stream")},
    }
    out["spans_exported"] = httpx.get(endpoint + "/count").json()["spans"]
    return out


def markdown(data: dict[str, Any]) -> str:
    r = data["results"]
    rows = ["| | tracing off | tracing on | change |", "|---|---|---|---|"]
    change = r["change_pct"]
    for kind, label in (("chat", "sequential, p50 latency (ms)"),
                        ("stream", "sequential streamed, p50 latency (ms)")):
        rows.append(f"| {label} | {r['off']['sequential'][kind]['p50_ms']:.2f} | "
                    f"{r['on']['sequential'][kind]['p50_ms']:.2f} | "
                    f"{change[f'p50_sequential_{kind}']:+.1f}% |")
    rows.append(f"| {data['concurrency']} clients, requests/s (median of rounds) | "
                f"{r['off']['rps']:.0f} | {r['on']['rps']:.0f} | {change['rps']:+.1f}% |")
    rows.append(f"| {data['concurrency']} clients, gateway CPU per request (ms, median of "
                f"rounds) | {r['off']['cpu_ms_per_request']:.3f} | "
                f"{r['on']['cpu_ms_per_request']:.3f} | {change['cpu_per_request']:+.1f}% |")
    rows.append(f"| {data['concurrency']} clients, median of the rounds' own on/off ratios | "
                f"| | requests/s {change['rps_paired']:+.1f}%, CPU per request "
                f"{change['cpu_per_request_paired']:+.1f}% |")
    rows.append(f"| {data['concurrency']} clients, p50 latency (ms) | "
                f"{r['off']['under_load']['p50_ms']:.2f} | {r['on']['under_load']['p50_ms']:.2f}"
                f" | {change['p50_under_load']:+.1f}% |")
    rows.append(f"| {data['concurrency']} clients, p95 latency (ms) | "
                f"{r['off']['under_load']['p95_ms']:.2f} | "
                f"{r['on']['under_load']['p95_ms']:.2f} | |")
    m = data["machine"]
    return (
        "# Tracing overhead\n\n"
        "`python benchmarks/bench_tracing.py` (`make bench-tracing`): two gateways on one "
        "configuration in front of a fake upstream that answers at once, one with "
        "`observe: {tracing: true}` exporting every span (two per request: the request and "
        "its attempt) over OTLP/HTTP to a receiver on loopback that decodes each export. "
        f"Each round measures both in turn; {data['rounds']} rounds, {data['requests']} "
        f"sequential requests of each kind per round, {data['seconds']} s of "
        f"{data['concurrency']} concurrent clients per round.\n\n"
        + "\n".join(rows) + "\n\n"
        f"Spans the receiver decoded: {r['spans_exported']}. Requests per second per round: "
        f"off {r['off']['rps_per_round']}, on {r['on']['rps_per_round']}. Gateway CPU ms "
        f"per request per round: off {r['off']['cpu_ms_per_request_per_round']}, on "
        f"{r['on']['cpu_ms_per_request_per_round']}.\n\n"
        "Spans are Inferplane's own, encoded straight to OTLP protobuf in an export thread "
        "(no OpenTelemetry SDK).\n\n"
        f"Machine: {m['cpu_model']}, {m['cpu_cores']} CPUs (load average at start "
        f"{m['load_average_at_start'][0]:.2f}), shared by the gateway, the "
        "fake upstream, the receiver and the load generator.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, UpstreamProcess("up", api_key="bench") as up, \
            receiver() as endpoint:
        env = {"UP_KEY": "bench", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
        with running_gateway(Path(tmp) / "off", config(Path(tmp) / "off", up, False),
                             env=env) as off, \
                running_gateway(Path(tmp) / "on", config(Path(tmp) / "on", up, True),
                                env=env) as on:
            results = measure(args, {"off": off, "on": on}, endpoint)
    data = {"machine": machine_info(), "rounds": args.rounds, "requests": args.requests,
            "seconds": args.seconds, "concurrency": args.concurrency, "results": results}
    write_results(args.out, "tracing", data, markdown(data))


if __name__ == "__main__":
    main()
