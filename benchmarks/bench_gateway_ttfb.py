"""Time to first byte and latency through Inferplane, against direct and the stack's floor,
interleaved round by round so that the three see the same machine.

``bench_gateway.py`` measures each gateway after the other (minutes apart); on a shared VM the
floor moves by tenths of a millisecond between minutes, as much as the streaming target's
margin. Here every point is run on direct, on the floor proxy (``gateway/floor_proxy.py``:
uvicorn + aiohttp doing nothing but relay, i.e. what the stack costs before any gateway logic)
and on Inferplane in turn, the order alternating, for several rounds; the medians over rounds
are reported with the overhead of each over direct.

    .venv/bin/python benchmarks/bench_gateway_ttfb.py            # ~7 min
    .venv/bin/python benchmarks/bench_gateway_ttfb.py --rates 100 --rounds 2 --duration 5
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.upstream
sys.path.insert(0, str(Path(__file__).resolve().parent))  # common, gateway
from tests.upstream.process import UpstreamProcess

from common import machine_info
from gateway import measure, servers

RESULTS = Path(__file__).resolve().parent / "results"
ENDPOINTS = ("direct", "floor", "inferplane")


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,500", help="requests/s")
    p.add_argument("--modes", default="stream,non-stream")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per point")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    p.add_argument("--client-core", type=int, default=0, help="load generator and upstream")
    p.add_argument("--gateway-core", type=int, default=1, help="floor and Inferplane, alone")
    p.add_argument("--out", type=Path, default=RESULTS / "gateway-ttfb")
    opts = p.parse_args()
    opts.rates = [float(r) for r in opts.rates.split(",") if r]
    opts.modes = [m for m in opts.modes.split(",") if m]
    return opts


def point(endpoint: servers.Endpoint, upstream_pid: int, mode: str, rate: float,
          load: measure.Load) -> dict[str, Any]:
    return measure.point(endpoint, upstream_pid, mode == "stream", rate, load)


def summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians over rounds per endpoint, mode and rate, and each minus direct's."""
    out = []
    for mode, rate in dict.fromkeys((r["mode"], r["rps"]) for r in rows):
        entry: dict[str, Any] = {"mode": mode, "rps": rate}
        for name in ENDPOINTS:
            mine = [r for r in rows if (r["gateway"], r["mode"], r["rps"]) == (name, mode, rate)]
            for key in ("p50_ms", "ttfb_p50_ms"):
                values = [r[key] for r in mine if r.get(key) is not None]
                entry[f"{name}_{key}"] = round(statistics.median(values), 3) if values else None
            entry[f"{name}_min_success"] = min((r["success_rate"] for r in mine), default=None)
        for name in ENDPOINTS[1:]:
            for key in ("p50_ms", "ttfb_p50_ms"):
                mine, base = entry[f"{name}_{key}"], entry[f"direct_{key}"]
                entry[f"{name}_overhead_{key}"] = (None if mine is None or base is None
                                                   else round(mine - base, 3))
        out.append(entry)
    return out


def markdown(data: dict[str, Any]) -> str:
    env, s = data["environment"], data["settings"]
    lines = [
        "# Time to first byte: direct, the stack's floor, Inferplane (interleaved)", "",
        f"{env['date']}; {env['cpu_model']}, {env['cpu_cores']} cores; Python "
        f"{env['python']}. {s['rounds']} rounds; per point {s['warmup_s']:g} s warm-up + "
        f"{s['duration_s']:g} s measured, open loop; each round runs every point on direct, "
        "the floor proxy and Inferplane in turn (order alternating). The floor proxy and "
        "Inferplane each run alone on core 1; upstream and load generator share core 0. "
        "Medians over rounds; overhead = minus direct.", "",
        "| mode | rps | direct p50 / TTFB ms | floor p50 / TTFB ms | Inferplane p50 / TTFB ms "
        "| floor overhead p50 / TTFB | Inferplane overhead p50 / TTFB | Inferplane minus floor "
        "(TTFB or p50) |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def pair(e: dict[str, Any], prefix: str) -> str:
        ttfb = e.get(f"{prefix}ttfb_p50_ms")
        return f"{e[f'{prefix}p50_ms']}" + (f" / {ttfb}" if ttfb is not None else "")

    for e in data["summary"]:
        key = "ttfb_p50_ms" if e["mode"] == "stream" else "p50_ms"
        ours, floor = e.get(f"inferplane_{key}"), e.get(f"floor_{key}")
        gap = None if ours is None or floor is None else round(ours - floor, 3)
        lines.append(
            f"| {e['mode']} | {e['rps']:g} | {pair(e, 'direct_')} | {pair(e, 'floor_')} | "
            f"{pair(e, 'inferplane_')} | {pair(e, 'floor_overhead_')} | "
            f"{pair(e, 'inferplane_overhead_')} | {gap} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    opts = parse_args()
    os.sched_setaffinity(0, {opts.client_core})  # the generator; the upstream inherits it
    key = "sk-up-" + secrets.token_hex(16)
    up = UpstreamProcess("up", api_key=key, args=["--no-log"]).start()
    upstream = servers.Upstream(up.port, key)
    assert up.proc is not None
    load = measure.Load(opts.duration, opts.warmup, timeout_s=5.0)
    rows: list[dict[str, Any]] = []
    endpoints: list[servers.Endpoint] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-ttfb-") as tmp:
            for name in ENDPOINTS:
                endpoint = servers.start(name, upstream, opts.gateway_core, Path(tmp))
                endpoints.append(endpoint)
                if endpoint.server is not None:
                    measure.warm(endpoint)
            for round_no in range(opts.rounds):
                for i, (mode, rate) in enumerate((m, r) for m in opts.modes for r in opts.rates):
                    order = endpoints if (round_no + i) % 2 == 0 else endpoints[::-1]
                    rows += [point(e, up.proc.pid, mode, rate, load) | {"round": round_no}
                             for e in order]
    finally:
        for endpoint in endpoints:
            endpoint.stop()
        up.stop()
    data: dict[str, Any] = {
        "benchmark": "gateway-ttfb",
        "environment": {k: v for k, v in machine_info().items()
                        if k in ("date", "cpu_model", "cpu_cores", "python")}
        | {"versions": servers.versions()},
        "settings": {"rates": opts.rates, "modes": opts.modes, "rounds": opts.rounds,
                     "duration_s": opts.duration, "warmup_s": opts.warmup},
        "summary": summary(rows), "runs": rows,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    text = markdown(data)
    opts.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
