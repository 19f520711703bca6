"""Gateway CPU per request: versions of Inferplane side by side, same machine, same run.

Wall-clock latency on a shared 2-core machine is noisy; the CPU time the gateway's process spends
per request is not (much). Each variant is an Inferplane source tree (``label=path``; ``label``
alone: the installed package), started fresh as ``inferplane up`` pinned to its own core with its
ledger on, in front of the benchmark's fake OpenAI upstream; all variants run at once, idle but
for the one measured. Each round measures, on every variant in turn (the order alternating, so
the two halves of a pair are taken seconds apart): the idle CPU (cores used with no traffic:
background threads), then open-loop runs at each rate, non-streamed and streamed, each a fixed
number of requests, and the gateway's CPU seconds (utime + stime from /proc) over the run
divided by the requests sent. The summary keeps the median over rounds.

    git archive HEAD~3 src | tar -x -C /tmp/base      # an older version to compare with
    python benchmarks/bench_gateway_cpu.py --variant before=/tmp/base/src --variant after=src \\
        --rates 100,500,900 --requests 3000 --rounds 3

Writes ``--out`` (.json with every run, .md with the medians).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.upstream
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common, gateway
import uvloop
from tests.upstream.process import UpstreamProcess

from common import CpuMonitor, machine_info
from gateway import measure, procstat, servers
from gateway.loadgen import run_load, summarize

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", action="append", required=True,
                   help="label=path to a source tree (the dir holding inferplane/; empty: the "
                   "installed package), optionally ?ledger settings as YAML flow items, e.g. "
                   "'slow=src?commit_interval_ms: 250'; repeatable")
    p.add_argument("--with-keys", action="append", default=[], metavar="LABEL",
                   help="run that variant as in production: every request with an API key "
                   "whose key and tenant have RPM, TPM and budget limits; repeatable")
    p.add_argument("--rates", default="100,500,900", help="requests/s")
    p.add_argument("--requests", type=int, default=3000, help="requests per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--modes", default="non-stream,stream")
    p.add_argument("--idle-s", type=float, default=5.0, help="idle CPU window (0 skips)")
    p.add_argument("--token-delay-ms", type=float, default=0.0, help="upstream, between chunks")
    p.add_argument("--client-core", type=int, default=0)
    p.add_argument("--gateway-core", type=int, default=1)
    p.add_argument("--out", type=Path, help="results path without suffix (default: print only)")
    opts = p.parse_args()
    opts.variants = [_variant(v) for v in opts.variant]
    opts.rates = [float(r) for r in opts.rates.split(",") if r]
    opts.modes = [m for m in opts.modes.split(",") if m]
    return opts


def _variant(spec: str) -> tuple[str, Path | None, str]:
    """``label=path``, ``label=`` (the installed package), either with ``?ledger settings``."""
    spec, _, ledger = spec.partition("?")
    label, _, path = spec.partition("=")
    return label, Path(path).resolve() if path else None, ledger


def idle_cores(pid: int, seconds: float) -> float:
    """Cores the process uses with no traffic at all (its background threads)."""
    measure.settle([pid], limit_s=10.0)
    before, started = procstat.cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return round((procstat.cpu_seconds(pid) - before) / (time.monotonic() - started), 4)


def start(label: str, src: Path | None, ledger: str, up: UpstreamProcess,
          opts: argparse.Namespace, tmp: Path) -> servers.Endpoint:
    workdir = tmp / label
    workdir.mkdir()
    endpoint = servers.inferplane(servers.Upstream(up.port, str(up.api_key)),
                                  opts.gateway_core, workdir, src, ledger,
                                  keys=label in opts.with_keys)
    endpoint.name = label
    assert endpoint.server is not None
    endpoint.server.start(timeout=120)
    measure.warm(endpoint)
    return endpoint


def thread_ticks(pid: int) -> tuple[int, int]:
    """CPU clock ticks (utime + stime) of the process's main thread and of all its others."""
    main = other = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        ticks = int(fields[11]) + int(fields[12])
        if int(tid) == pid:
            main += ticks
        else:
            other += ticks
    return main, other


def measured_run(endpoint: servers.Endpoint, upstream_pid: int, stream: bool, rate: float,
                 requests: int) -> dict[str, Any]:
    """``requests`` requests at ``rate``, open loop: CPU per request of the gateway (and of
    its main thread, the event loop, apart), latency percentiles, what else used the CPU."""
    pid = endpoint.pid
    assert pid is not None
    measure.settle([pid, upstream_pid], limit_s=10.0)
    main0, other0 = thread_ticks(pid)
    cpu0 = procstat.cpu_seconds(pid)
    machine = CpuMonitor(upstream_pid)
    outcomes = uvloop.run(run_load(measure.target(endpoint, stream), rate, requests / rate,
                                   timeout_s=5.0))
    cpu = procstat.cpu_seconds(pid) - cpu0
    main1, other1 = thread_ticks(pid)
    others = machine.stop()
    n = len(outcomes)
    return {
        "mode": "stream" if stream else "non-stream", "rps": rate,
        **summarize(outcomes, 0.0, stream),
        "cpu_ms_per_request": round(1000 * cpu / n, 4),
        "main_thread_ms_per_request": round(1000 * (main1 - main0) / procstat.TICK / n, 4),
        "other_threads_ms_per_request": round(1000 * (other1 - other0) / procstat.TICK / n, 4),
        "other_processes_cores": None if others is None else round(others.other_processes, 3),
    }


def one_point(endpoint: servers.Endpoint, up: UpstreamProcess, mode: str, rate: float,
              opts: argparse.Namespace, round_no: int) -> dict[str, Any]:
    pid = endpoint.pid
    assert pid is not None and up.proc is not None
    if mode == "idle":
        row: dict[str, Any] = {"mode": "idle", "rps": 0.0,
                               "idle_cores": idle_cores(pid, opts.idle_s)}
        detail = f"{row['idle_cores']} cores"
    else:
        row = measured_run(endpoint, up.proc.pid, mode == "stream", rate, opts.requests)
        detail = (f"{row['cpu_ms_per_request']} ms CPU/request, main thread "
                  f"{row['main_thread_ms_per_request']} (others {row['other_processes_cores']} "
                  "cores)")
    row |= {"variant": endpoint.name, "round": round_no}
    print(f"{endpoint.name:>10} round {round_no}: {mode:>10} {rate:>5g} rps: {detail}",
          flush=True)
    return row


def run(opts: argparse.Namespace, up: UpstreamProcess, tmp: Path) -> list[dict[str, Any]]:
    """Every variant started at once (idle, they cost next to nothing); each point measured on
    each variant in turn, the order alternating, so that pairs are taken close in time."""
    endpoints = []
    try:
        for label, src, ledger in opts.variants:
            endpoints.append(start(label, src, ledger, up, opts, tmp))
        points = [("idle", 0.0)] if opts.idle_s > 0 else []
        points += [(mode, rate) for mode in opts.modes for rate in opts.rates]
        rows = []
        for round_no in range(opts.rounds):
            for i, (mode, rate) in enumerate(points):
                order = endpoints if (round_no + i) % 2 == 0 else endpoints[::-1]
                rows += [one_point(e, up, mode, rate, opts, round_no) for e in order]
        return rows
    finally:
        for endpoint in endpoints:
            endpoint.stop()


def summary(rows: list[dict[str, Any]], labels: list[str]) -> list[dict[str, Any]]:
    """Median over rounds, per variant, mode and rate."""
    keys = sorted({(r["mode"], r["rps"]) for r in rows}, key=lambda k: (k[0] != "idle", k))
    out = []
    for mode, rate in keys:
        entry: dict[str, Any] = {"mode": mode, "rps": rate}
        for label in labels:
            mine = [r for r in rows if r["variant"] == label and (r["mode"], r["rps"])
                    == (mode, rate)]
            field = "idle_cores" if mode == "idle" else "cpu_ms_per_request"
            values = [r[field] for r in mine if r.get(field) is not None]
            entry[label] = round(statistics.median(values), 4) if values else None
            entry[f"{label}_all"] = values
            if mode != "idle":
                p50 = [r["p50_ms"] for r in mine if r.get("p50_ms") is not None]
                entry[f"{label}_p50_ms"] = round(statistics.median(p50), 3) if p50 else None
                main = [r["main_thread_ms_per_request"] for r in mine]
                entry[f"{label}_main_thread"] = round(statistics.median(main), 4)
                ok = [r["success_rate"] for r in mine]
                entry[f"{label}_min_success"] = min(ok) if ok else None
        out.append(entry)
    return out


def markdown(data: dict[str, Any]) -> str:
    """The medians as a table: CPU ms per request of the whole process and of its main thread
    (the event loop), per variant; idle rows in cores."""
    labels = [v["label"] for v in data["variants"]]
    two = len(labels) == 2
    head = "| mode | rps | " + " | ".join(f"{label}: process / main thread" for label in labels)
    head += " | change (process) |" if two else " |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for e in data["summary"]:
        idle = e["mode"] == "idle"
        cells = [f"{e[label]}" if idle else f"{e[label]} / {e[f'{label}_main_thread']}"
                 for label in labels]
        change = ""
        if two:
            before, after = e[labels[0]], e[labels[1]]
            change = f" {100 * (after / before - 1):+.0f}% |" if before and after else " |"
        mode = "idle (cores)" if idle else e["mode"]
        lines.append(f"| {mode} | {e['rps']:g} | " + " | ".join(cells) + " |" + change)
    return "\n".join(lines) + "\n"


def main() -> int:
    opts = parse_args()
    os.sched_setaffinity(0, {opts.client_core})  # the generator; the upstream inherits it
    key = "sk-up-" + secrets.token_hex(16)
    args = ["--no-log", "--token-delay-ms", f"{opts.token_delay_ms:g}"]
    up = UpstreamProcess("up", api_key=key, args=args).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gateway-cpu-") as tmp:
            rows = run(opts, up, Path(tmp))
    finally:
        up.stop()
    labels = [label for label, _, _ in opts.variants]
    data: dict[str, Any] = {
        "benchmark": "gateway-cpu-per-request",
        "environment": {k: v for k, v in machine_info().items()
                        if k in ("date", "cpu_model", "cpu_cores", "python",
                                 "load_average_at_start")},
        "variants": [{"label": label, "src": str(src) if src else "installed",
                      "ledger": ledger or "defaults", "api_key_with_limits": label in
                      opts.with_keys} for label, src, ledger in opts.variants],
        "settings": {"rates": opts.rates, "requests_per_run": opts.requests,
                     "rounds": opts.rounds, "idle_s": opts.idle_s,
                     "token_delay_ms": opts.token_delay_ms, "max_tokens": 16,
                     "gateway_core": opts.gateway_core, "client_core": opts.client_core},
        "summary": summary(rows, labels),
        "runs": rows,
    }
    text = markdown(data)
    print(text)
    if opts.out is not None:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
        opts.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
