"""Time to first byte and latency through Inferplane, against direct and two floors,
interleaved round by round so that all see the same machine.

``bench_gateway.py`` measures each gateway after the other (minutes apart); on a shared VM the
floor moves by tenths of a millisecond between minutes, as much as the streaming target's
margin. Here every point is run on each endpoint in turn, the order alternating, for several
rounds; the medians over rounds are reported with each one's overhead over direct:

- ``direct``: the load generator -> the upstream;
- ``floor``: ``gateway/floor_proxy.py``, uvicorn + aiohttp doing nothing but relay (what the
  usual Python stack costs before any gateway logic);
- ``rawfloor``: ``gateway/raw_floor.py``, asyncio protocols and httptools on both sides, no
  ASGI server or client library (the least any Python proxy on uvloop can do);
- ``inferplane``: the installed package; ``--variant LABEL=SRC`` adds Inferplane run from
  another source tree (``git archive REV src | tar -x -C /tmp/rev``), to compare versions.

    .venv/bin/python benchmarks/bench_gateway_ttfb.py            # ~9 min
    .venv/bin/python benchmarks/bench_gateway_ttfb.py --rates 100 --rounds 2 --duration 5
    .venv/bin/python benchmarks/bench_gateway_ttfb.py --endpoints direct,inferplane \
        --variant before=/tmp/rev/src
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


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,500", help="requests/s")
    p.add_argument("--modes", default="stream,non-stream")
    p.add_argument("--endpoints", default="direct,floor,rawfloor,inferplane",
                   help="direct first; any of floor, rawfloor, inferplane")
    p.add_argument("--variant", action="append", default=[], metavar="LABEL=SRC",
                   help="also Inferplane from the source tree SRC, reported as LABEL")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per point")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    p.add_argument("--client-core", type=int, default=0, help="load generator and upstream")
    p.add_argument("--gateway-core", type=int, default=1, help="floor and Inferplane, alone")
    p.add_argument("--out", type=Path, default=RESULTS / "gateway-ttfb")
    opts = p.parse_args()
    opts.rates = [float(r) for r in opts.rates.split(",") if r]
    opts.modes = [m for m in opts.modes.split(",") if m]
    opts.endpoints = [e for e in opts.endpoints.split(",") if e]
    if opts.endpoints[:1] != ["direct"]:
        p.error("--endpoints must start with direct: overheads are measured from it")
    opts.variants = [tuple(v.split("=", 1)) for v in opts.variant]
    if any(len(v) != 2 for v in opts.variants):
        p.error("--variant takes LABEL=SRC")
    return opts


def point(endpoint: servers.Endpoint, upstream_pid: int, mode: str, rate: float,
          load: measure.Load) -> dict[str, Any]:
    return measure.point(endpoint, upstream_pid, mode == "stream", rate, load)


def summary(rows: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """Medians over rounds per mode, rate and endpoint, and each minus direct's."""
    out = []
    for mode, rate in dict.fromkeys((r["mode"], r["rps"]) for r in rows):
        base: dict[str, float | None] = {}
        for name in names:
            mine = [r for r in rows if (r["gateway"], r["mode"], r["rps"]) == (name, mode, rate)]
            entry: dict[str, Any] = {"mode": mode, "rps": rate, "endpoint": name,
                                     "rounds": len(mine),
                                     "min_success": min(r["success_rate"] for r in mine)}
            for key in ("p50_ms", "ttfb_p50_ms", "cpu_ms_per_request"):
                values = [r[key] for r in mine if r.get(key) is not None]
                entry[key] = round(statistics.median(values), 3) if values else None
            for key in ("p50_ms", "ttfb_p50_ms"):
                if name == "direct":
                    base[key] = entry[key]
                mine_v, base_v = entry[key], base.get(key)
                entry[f"overhead_{key}"] = (None if mine_v is None or base_v is None
                                            else round(mine_v - base_v, 3))
            out.append(entry)
    return out


def markdown(data: dict[str, Any]) -> str:
    env, s = data["environment"], data["settings"]
    lines = [
        "# Time to first byte: direct, the floors, Inferplane (interleaved)", "",
        f"{env['date']}; {env['cpu_model']}, {env['cpu_cores']} cores; Python "
        f"{env['python']}; Inferplane at {env['versions']['inferplane_commit']}. "
        f"{s['rounds']} rounds; per point {s['warmup_s']:g} s warm-up + {s['duration_s']:g} s "
        "measured, open loop; each round runs every point on every endpoint in turn (order "
        "alternating). Each proxy runs alone on core 1 (all started, idle but the one "
        "measured); upstream and load generator share core 0. Medians over rounds; overhead "
        "= minus direct at the same mode and rate. floor: uvicorn + aiohttp relaying; "
        "rawfloor: asyncio protocols + httptools relaying; neither authenticates, routes, "
        "meters or records anything."
        + "".join(f" {label}: Inferplane from {src}." for label, src in s["variants"]), "",
        "| mode | rps | endpoint | p50 ms | TTFB p50 ms | overhead p50 ms | overhead TTFB "
        "ms | CPU ms/request | min success |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(value: float | None) -> str:
        return "" if value is None else f"{value:.3f}"

    for e in data["summary"]:
        lines.append(
            f"| {e['mode']} | {e['rps']:g} | {e['endpoint']} | {cell(e['p50_ms'])} | "
            f"{cell(e['ttfb_p50_ms'])} | {cell(e['overhead_p50_ms'])} | "
            f"{cell(e['overhead_ttfb_p50_ms'])} | {cell(e['cpu_ms_per_request'])} | "
            f"{100 * e['min_success']:.2f}% |")
    return "\n".join(lines) + "\n"


def start(name: str, upstream: servers.Upstream, core: int, tmp: Path,
          src: str | None = None) -> servers.Endpoint:
    if src is None:
        return servers.start(name, upstream, core, tmp)
    workdir = tmp / name
    workdir.mkdir()
    endpoint = servers.inferplane(upstream, core, workdir, src=Path(src))
    endpoint.name = name
    assert endpoint.server is not None
    endpoint.server.start(timeout=180)
    return endpoint


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
            wanted = [(name, None) for name in opts.endpoints] + opts.variants
            for name, src in wanted:
                endpoint = start(name, upstream, opts.gateway_core, Path(tmp), src)
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
                     "duration_s": opts.duration, "warmup_s": opts.warmup,
                     "variants": opts.variants},
        "summary": summary(rows, [e.name for e in endpoints]), "runs": rows,
    }
    opts.out.parent.mkdir(parents=True, exist_ok=True)
    opts.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    text = markdown(data)
    opts.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
