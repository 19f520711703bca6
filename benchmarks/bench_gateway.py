"""Gateway overhead: Inferplane, LiteLLM and Portkey in front of one fast fake upstream.

The same OpenAI-compatible upstream (``tests.upstream.server``, request log off) answers a short
chat completion, streamed or not; each gateway, one process pinned to its own core, forwards to
it; an open-loop load generator (``gateway/loadgen.py``) sends requests at fixed rates and times
each from its intended send time. "direct" is the generator talking to the upstream: the floor
every gateway's overhead is measured against. Then, per gateway, a search for the highest rate
that keeps p99 under 50 ms with 99.9% success, and a soak at a steady rate watching memory.

    python benchmarks/bench_gateway.py            # full: about 50 min, 30 of them the soaks
    python benchmarks/bench_gateway.py --quick    # under 5 min -> results/gateway-overhead-quick.*

LiteLLM must be installed in ``benchmarks/.venvs/litellm`` and Portkey's gateway under
``benchmarks/.portkey`` (``make bench-gateway`` does both). Writes
``benchmarks/results/gateway-overhead.{json,md,png}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.upstream
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common, gateway
from tests.upstream.process import UpstreamProcess

from common import cpu_model, machine_info
from gateway import measure, report, servers
from gateway.measure import Load

RESULTS = Path(__file__).resolve().parent / "results"
FULL = {"rates": "100,500,1000,2000", "duration": 20.0, "warmup": 3.0, "timeout": 10.0,
        "soak_s": 600.0, "probes": 6, "calibrate": "500,1000,2000,3000,4000,6000,8000",
        "settle_s": 20.0}
QUICK = {"rates": "100,500", "duration": 2.0, "warmup": 1.0, "timeout": 2.0,
         "soak_s": 60.0, "probes": 0, "calibrate": "", "settle_s": 3.0}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short points, 1-min soak, no search")
    p.add_argument("--gateways", default="direct," + ",".join(servers.GATEWAYS))
    p.add_argument("--rates", help=f"requests/s (full: {FULL['rates']}; quick: {QUICK['rates']})")
    p.add_argument("--duration", type=float, help="measured seconds per point (20; quick 3)")
    p.add_argument("--warmup", type=float, help="unmeasured seconds before each point (3)")
    p.add_argument("--timeout", type=float, help="a request slower than this fails (10 s)")
    p.add_argument("--probes", type=int, help="runs of the max-rate search per gateway (6)")
    p.add_argument("--calibrate", help="rates for the generator's own limit ('' skips)")
    p.add_argument("--soak-s", type=float, help="soak length per gateway (600; quick 60; 0 skips)")
    p.add_argument("--soak-rps", type=float, default=200.0,
                   help="capped at half the gateway's highest sustained rate")
    p.add_argument("--settle-s", type=float, help="longest wait for an idle gateway (20 s)")
    p.add_argument("--skip-after-failure", action="store_true",
                   help="skip the higher rates of a sweep after one under 50%% success (quick)")
    p.add_argument("--think-ms", type=float, default=0.0, help="upstream time to first token")
    p.add_argument("--token-delay-ms", type=float, default=0.0)
    p.add_argument("--client-core", type=int, default=0, help="load generator and upstream")
    p.add_argument("--gateway-core", type=int, default=1, help="the gateway, alone")
    p.add_argument("--out", type=Path, help="results path without suffix")
    opts = p.parse_args()
    for key, value in (QUICK if opts.quick else FULL).items():
        if getattr(opts, key) is None:
            setattr(opts, key, value)
    opts.skip_after_failure = opts.skip_after_failure or opts.quick
    opts.rates = [float(r) for r in opts.rates.split(",") if r]
    opts.calibrate = [float(r) for r in opts.calibrate.split(",") if r]
    opts.gateways = [g for g in opts.gateways.split(",") if g]
    opts.out = opts.out or RESULTS / ("gateway-overhead-quick" if opts.quick
                                      else "gateway-overhead")
    return opts


def start_upstream(opts: argparse.Namespace, key: str, core: int | None = None
                   ) -> UpstreamProcess:
    args = ["--no-log", "--think-ms", f"{opts.think_ms:g}", "--token-delay-ms",
            f"{opts.token_delay_ms:g}"]
    up = UpstreamProcess("up", api_key=key, args=args)
    if core is not None:
        up.argv = servers.pinned(core, up.argv)
    return up.start()


def load(opts: argparse.Namespace, duration: float | None = None, warmup: float | None = None
         ) -> Load:
    return Load(duration or opts.duration, opts.warmup if warmup is None else warmup,
                opts.timeout, opts.think_ms, opts.settle_s, 0 if opts.quick else 1)


def pid_of(up: UpstreamProcess) -> int:
    assert up.proc is not None
    return up.proc.pid


def fresh(name: str, up: UpstreamProcess, opts: argparse.Namespace, tmp: Path
          ) -> servers.Endpoint:
    """A new, warmed-up gateway process (``direct``: the upstream itself)."""
    endpoint = servers.start(name, servers.Upstream(up.port, str(up.api_key)),
                             opts.gateway_core, tmp)
    if endpoint.server is not None:
        measure.warm(endpoint)
    return endpoint


def measure_gateway(name: str, up: UpstreamProcess, opts: argparse.Namespace, tmp: Path
                    ) -> dict[str, Any]:
    """Both sweeps, the max-rate search and (quick: in a process of its own) the soak. In the
    full run the search and the streaming sweep each get a fresh gateway process, so neither
    starts while the gateway still drains the backlog of an overloaded point."""
    out: dict[str, Any] = {"runs": [], "probes": [], "skipped": []}
    endpoint = fresh(name, up, opts, tmp)
    try:
        rows = sweep(endpoint, up, False, opts, out["skipped"])
        if opts.probes:
            endpoint = restart(endpoint, name, up, opts, tmp)
        out["max_rps"], out["probes"] = search(endpoint, up, rows, opts)
        if not opts.quick:
            endpoint = restart(endpoint, name, up, opts, tmp)
        out["runs"] = rows + sweep(endpoint, up, True, opts, out["skipped"])
    finally:
        endpoint.stop()
    if opts.quick and name != "direct" and opts.soak_s > 0:
        out["soak"] = soaks({name: out["max_rps"]}, up, opts, tmp)[name]
    return out


def restart(endpoint: servers.Endpoint, name: str, up: UpstreamProcess,
            opts: argparse.Namespace, tmp: Path) -> servers.Endpoint:
    endpoint.stop()
    return fresh(name, up, opts, tmp)


def sweep(endpoint: servers.Endpoint, up: UpstreamProcess, stream: bool,
          opts: argparse.Namespace, skipped: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every rate in turn; with ``--skip-after-failure``, the rates above one where most
    requests failed are left out (and listed in ``skipped``)."""
    rows: list[dict[str, Any]] = []
    for rate in opts.rates:
        if opts.skip_after_failure and rows and rows[-1]["success_rate"] < 0.5:
            skipped.append({"gateway": endpoint.name, "mode": "stream" if stream
                            else "non-stream", "rps": rate,
                            "why": f"under 50% success at {rows[-1]['rps']:g} rps"})
            continue
        rows.append(measure.point(endpoint, pid_of(up), stream, rate, load(opts)))
    return rows


def soak(endpoint: servers.Endpoint, sustained: float, opts: argparse.Namespace
         ) -> dict[str, Any]:
    rate = measure.soak_rate(opts.soak_rps, sustained)
    return measure.soak(endpoint, rate, load(opts, opts.soak_s, 0.0))


def search(endpoint: servers.Endpoint, up: UpstreamProcess, rows: list[dict[str, Any]],
           opts: argparse.Namespace) -> tuple[float, list[dict[str, Any]]]:
    probe_load = load(opts, min(opts.duration, 10.0), min(opts.warmup, 2.0))
    known = {r["rps"]: probe_load.passes(r) for r in rows}
    return measure.search_max_rps(
        lambda rate: measure.point(endpoint, pid_of(up), False, rate, probe_load),
        known, probe_load, opts.probes, ceiling=8000.0)


def soaks(max_rps: dict[str, float], up: UpstreamProcess, opts: argparse.Namespace, tmp: Path
          ) -> dict[str, Any]:
    """One fresh process per gateway, in turn."""
    result = {}
    for name, sustained in max_rps.items():
        if name == "direct":
            continue
        endpoint = fresh(name, up, opts, tmp)
        try:
            result[name] = soak(endpoint, sustained, opts)
        finally:
            endpoint.stop()
    return result


def calibrate(opts: argparse.Namespace, key: str) -> dict[str, Any]:
    """The generator's own limit: direct at rising rates with the upstream on the other core,
    so the generator has core 0 to itself; each mode stops at its first failing rate."""
    note = (f"Direct requests with the upstream alone on core {opts.gateway_core} and the "
            f"generator alone on core {opts.client_core}; the highest passing rate bounds what "
            "the generator (and that upstream) can drive.")
    if not opts.calibrate:
        return {"note": "Not measured in this run (quick mode).", "rows": [], "limit_rps": {}}
    up = start_upstream(opts, key, core=opts.gateway_core)
    rows: list[dict[str, Any]] = []
    limit: dict[str, float] = {}
    cal = load(opts, min(opts.duration, 8.0), 1.0)
    try:
        for stream in (False, True):
            mode = "stream" if stream else "non-stream"
            for rate in opts.calibrate:
                row = measure.point(servers.direct(servers.Upstream(up.port, key)), pid_of(up),
                                    stream, rate, cal)
                row["gateway"] = "direct (upstream on its own core)"
                rows.append(row)
                if not cal.passes(row):
                    break
                limit[mode] = rate
    finally:
        up.stop()
    return {"note": note, "rows": rows, "limit_rps": limit}


def environment(opts: argparse.Namespace) -> dict[str, Any]:
    c, g = opts.client_core, opts.gateway_core
    return {
        **{k: v for k, v in machine_info().items() if k in ("date", "platform", "python",
                                                           "load_average_at_start")},
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "core_split": (f"each gateway alone on core {g} (taskset, 1 process); the upstream and "
                       f"the load generator share core {c}; direct = generator -> upstream, "
                       f"both on core {c}"),
        "versions": servers.versions(),
        "think_ms": opts.think_ms,
        "litellm_note": ("LiteLLM runs without a database, so without spend logs (its database "
                         "mode needs Prisma engine binaries downloaded at run time, which this "
                         "machine cannot reach); production settings otherwise: 1 worker, "
                         "LITELLM_LOG=ERROR, set_verbose false, strong master key."),
        "inferplane_note": ("Inferplane runs with its ledger on (the default: every request "
                            "appended to a write-ahead file and group-committed to SQLite)."),
        "portkey_note": ("Portkey's gateway is run from npm with @hono/node-server pinned to "
                         "1.13.5 (the version its repository patches): with the 1.19 line npm "
                         "resolves by default, every streamed request fails with HTTP 500 "
                         "(TypeError: immutable headers) on Node 20."),
        "load_generator": ("benchmarks/gateway/loadgen.py: Python asyncio + uvloop + httptools, "
                           "open loop, keep-alive pool up to 2048 connections, latency from the "
                           "intended send time; timers tick in whole ms so requests leave "
                           "0-1 ms late (generator_lag_*), equally for every gateway."),
    }


def run_all(opts: argparse.Namespace, key: str) -> dict[str, Any]:
    """Every gateway in turn against one upstream, then (full run) the soaks."""
    out: dict[str, Any] = {"runs": [], "skipped_runs": [], "max_rps": {}, "max_rps_probes": {},
                           "soak": {}}
    up = start_upstream(opts, key)
    try:
        with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
            for name in opts.gateways:
                result = measure_gateway(name, up, opts, Path(tmp))
                out["runs"] += result["runs"]
                out["skipped_runs"] += result["skipped"]
                out["max_rps"][name] = result["max_rps"]
                out["max_rps_probes"][name] = result["probes"]
                if "soak" in result:
                    out["soak"][name] = result["soak"]
            if not opts.quick and opts.soak_s > 0:
                out["soak"] = soaks(out["max_rps"], up, opts, Path(tmp))
    finally:
        up.stop()
    report.add_overheads(out["runs"])
    out["ratios"] = report.ratios(out["runs"], out["max_rps"], out["soak"])
    return out


def settings(opts: argparse.Namespace) -> dict[str, Any]:
    return {"rates": opts.rates, "duration_s": opts.duration, "warmup_s": opts.warmup,
            "timeout_s": opts.timeout, "soak_s": opts.soak_s, "soak_rps": opts.soak_rps,
            "think_ms": opts.think_ms, "token_delay_ms": opts.token_delay_ms,
            "max_tokens": 16, "prompt": servers.PROMPT, "completion_words": 9,
            "max_rps_criterion": f"p99 < {50 + opts.think_ms:g} ms and >= 99.9% ok"}


def main() -> int:
    opts = parse_args()
    os.sched_setaffinity(0, {opts.client_core})  # the generator; the upstream inherits it
    key = "sk-up-" + secrets.token_hex(16)
    data: dict[str, Any] = {"benchmark": "gateway-overhead", "quick": opts.quick,
                            "environment": environment(opts), "settings": settings(opts)}
    data["generator"] = calibrate(opts, key)
    data |= run_all(opts, key)
    write(data, opts.out)
    return 0


def write(data: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    report.plot(data["runs"], out.with_suffix(".png"))
    text = report.markdown(data, out.with_suffix(".png").name)
    out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    raise SystemExit(main())
