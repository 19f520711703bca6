"""One measured point, the search for the highest sustained rate, and the soak.

A point is one open-loop run at a fixed rate against one endpoint; around it we read the CPU
seconds of the gateway's process tree, of the upstream and of this process (the load
generator), and the gateway's peak resident memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import uvloop

from common import CpuMonitor
from gateway import procstat
from gateway.loadgen import Outcome, Target, run_load, summarize
from gateway.servers import Endpoint

PATH = "/v1/chat/completions"
STARTED = time.monotonic()


@dataclass(frozen=True)
class Load:
    """How long each point runs and when a request counts as failed."""

    duration_s: float
    warmup_s: float
    timeout_s: float
    think_ms: float = 0.0
    settle_s: float = 20.0  # longest wait for the gateway to go idle before a point
    retries: int = 0  # runs again of a point that other processes disturbed
    max_other_cores: float = 0.25  # "disturbed": processes outside the benchmark took more

    def passes(self, row: dict[str, Any]) -> bool:
        """The sustained-rate criterion: p99 under 50 ms (plus the upstream's think time) with
        at least 99.9% of requests successful."""
        p99 = row.get("p99_ms")
        return (row["success_rate"] >= 0.999 and p99 is not None
                and p99 < 50.0 + self.think_ms)


def target(endpoint: Endpoint, stream: bool) -> Target:
    return Target("127.0.0.1", endpoint.port, PATH, endpoint.body(stream), endpoint.headers,
                  stream)


def _cpu(pid: int | None) -> float | None:
    return None if pid is None else procstat.cpu_seconds(pid)


def _delta(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else round(after - before, 3)


def settle(pids: list[int], idle_share: float = 0.1, limit_s: float = 20.0) -> float:
    """Wait until the processes use less than ``idle_share`` of a core together (what an
    overloaded gateway still has in flight drains first); returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        before = sum(procstat.cpu_seconds(p) for p in pids)
        time.sleep(0.3)
        if sum(procstat.cpu_seconds(p) for p in pids) - before < 0.3 * idle_share:
            break
    return round(time.monotonic() - started, 1)


def point(endpoint: Endpoint, upstream_pid: int, stream: bool, rate: float, load: Load
          ) -> dict[str, Any]:
    """One open-loop run at ``rate`` requests/s: latency figures and what it cost. A run that
    processes outside the benchmark disturbed (the machine is shared) is run again, up to
    ``load.retries`` times, 10 s later; the least disturbed run is kept."""
    runs = [_point(endpoint, upstream_pid, stream, rate, load)]
    while len(runs) <= load.retries and _disturbance(runs[-1]) > load.max_other_cores:
        print(f"disturbed ({_disturbance(runs[-1])} other cores): running it again", flush=True)
        time.sleep(10)
        runs.append(_point(endpoint, upstream_pid, stream, rate, load))
    best = min(runs, key=_disturbance)
    best["attempts"] = len(runs)
    return best


def _disturbance(row: dict[str, Any]) -> float:
    return float(row["other_processes_cores"] or 0.0)


def _point(endpoint: Endpoint, upstream_pid: int, stream: bool, rate: float, load: Load
           ) -> dict[str, Any]:
    waited = settle([p for p in (endpoint.pid, upstream_pid) if p is not None],
                    limit_s=load.settle_s)
    pid = endpoint.pid
    gw0, up0, me0 = _cpu(pid), procstat.cpu_seconds(upstream_pid), time.process_time()
    machine = CpuMonitor(upstream_pid)  # what processes outside this benchmark took
    started = time.perf_counter()
    outcomes = uvloop.run(run_load(target(endpoint, stream), rate, load.duration_s,
                                   warmup_s=load.warmup_s, timeout_s=load.timeout_s))
    wall = time.perf_counter() - started
    gw_cpu = _delta(_cpu(pid), gw0)
    others = machine.stop()
    row: dict[str, Any] = {
        "gateway": endpoint.name, "mode": "stream" if stream else "non-stream", "rps": rate,
        **summarize(outcomes, load.warmup_s, stream),
        "cpu_s": gw_cpu,
        "cpu_ms_per_request": None if gw_cpu is None else round(1000 * gw_cpu / len(outcomes), 3),
        "rss_mb": None if pid is None else round(procstat.peak_rss_mb(pid), 1),
        "upstream_cpu_s": _delta(procstat.cpu_seconds(upstream_pid), up0),
        "generator_cpu_s": round(time.process_time() - me0, 3),
        "cpu_window_s": round(wall, 2),
        "other_processes_cores": None if others is None else round(others.other_processes, 3),
        "settle_s": waited,
    }
    print(_line(row), flush=True)
    return row


def warm(endpoint: Endpoint, rate: float = 20.0, seconds: float = 1.0) -> None:
    """A few requests of each kind to a fresh gateway, unmeasured: first calls pay for lazy
    imports and connection set-up."""
    for stream in (False, True):
        uvloop.run(run_load(target(endpoint, stream), rate, seconds, timeout_s=5.0))


def soak_rate(wanted: float, sustained: float | None) -> float:
    """The soak's rate: ``wanted``, but at most half the highest rate the gateway sustains,
    so that the soak watches memory under a load the gateway carries rather than a queue
    growing without end (20 requests/s when no rate passed at all).

    >>> soak_rate(200, 3000), soak_rate(200, 60), soak_rate(200, 0)
    (200, 30.0, 20.0)
    """
    if sustained is None or sustained >= 2 * wanted:
        return wanted
    return _nice(sustained / 2) if sustained >= 40 else 20.0


def _line(row: dict[str, Any]) -> str:
    ttfb = f" ttfb p50 {row['ttfb_p50_ms']}" if "ttfb_p50_ms" in row else ""
    return (f"[{time.monotonic() - STARTED:6.0f} s] {row['gateway']:>10} {row['mode']:>10} "
            f"{row['rps']:>6} rps: p50 {row['p50_ms']} "
            f"p90 {row['p90_ms']} p99 {row['p99_ms']} ms{ttfb}, ok {row['success_rate']:.4f}, "
            f"gateway cpu {row['cpu_s']} s, rss {row['rss_mb']} MB, "
            f"lag p99 {row['generator_lag_p99_ms']} ms, "
            f"others {row['other_processes_cores']} cores")


def search_max_rps(probe: Callable[[float], dict[str, Any]], known: dict[float, bool],
                   load: Load, probes: int, ceiling: float) -> tuple[float, list[dict[str, Any]]]:
    """The highest rate that passes ``load.passes``: start from the rates already measured
    (``known``: rate -> passed), grow by 1.5x while they all pass, then bisect (geometric
    midpoints) until the bracket is within 10% or ``probes`` runs are spent."""
    rows: list[dict[str, Any]] = []
    passed = [r for r, ok in known.items() if ok]
    failed = [r for r, ok in known.items() if not ok]
    low = max(passed, default=0.0)
    high = min((r for r in failed if r > low), default=None)
    while len(rows) < probes:
        if high is None:
            rate = min(ceiling, _nice(low * 1.5)) if low else 50.0
            if rate <= low:
                break
        elif high / max(low, 1.0) <= 1.1:
            break
        else:
            rate = _nice(math.sqrt(max(low, high / 4) * high))
            if rate in (low, high):
                break
        row = probe(rate)
        rows.append(row)
        if load.passes(row):
            low = rate
        else:
            high = rate
    return low, rows


def _nice(rate: float) -> float:
    """``rate`` rounded to two significant figures (so results read as 1300, not 1287)."""
    if rate <= 0:
        return 0.0
    digits = math.floor(math.log10(rate)) - 1
    return float(round(rate, -digits))


async def _sample_rss(pid: int, every_s: float, samples: list[tuple[float, float]],
                      done: asyncio.Event) -> None:
    started = time.perf_counter()
    while not done.is_set():
        samples.append((round(time.perf_counter() - started, 1), round(procstat.rss_mb(pid), 2)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), every_s)


async def _soak_run(t: Target, rate: float, load: Load, pid: int, every_s: float
                    ) -> tuple[list[Outcome], list[tuple[float, float]]]:
    samples: list[tuple[float, float]] = []
    done = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(pid, every_s, samples, done))
    outcomes = await run_load(t, rate, load.duration_s, timeout_s=load.timeout_s)
    done.set()
    await sampler
    samples.append((samples[-1][0] + every_s if samples else 0.0, round(procstat.rss_mb(pid), 2)))
    return outcomes, samples


def soak(endpoint: Endpoint, rate: float, load: Load, every_s: float = 10.0) -> dict[str, Any]:
    """A steady non-streaming load for ``load.duration_s``, the gateway's RSS sampled every
    ``every_s``; growth is measured from the sample at 20% of the run (minute 2 of 10) to the
    last one."""
    assert endpoint.pid is not None
    settle([endpoint.pid], limit_s=load.settle_s)
    outcomes, samples = uvloop.run(_soak_run(target(endpoint, False), rate, load, endpoint.pid,
                                             every_s))
    mark = 0.2 * load.duration_s
    at_mark = min(samples, key=lambda s: abs(s[0] - mark))[1]
    end = samples[-1][1]
    stats = summarize(outcomes, 0.0)
    row = {
        "rps": rate, "duration_s": load.duration_s, "sample_every_s": every_s,
        "rss_mb_start": samples[0][1], "rss_mb_at_20pct": at_mark, "rss_mb_end": end,
        "rss_mb_max": max(s[1] for s in samples),
        "growth_pct": round(100 * (end - at_mark) / at_mark, 2) if at_mark else None,
        "p50_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"],
        "success_rate": stats["success_rate"], "requests": stats["requests"],
        "samples": samples,
    }
    print(f"[{time.monotonic() - STARTED:6.0f} s] {endpoint.name:>10} soak {rate} rps "
          f"{load.duration_s:.0f} s: rss "
          f"{row['rss_mb_at_20pct']} -> {end} MB ({row['growth_pct']}%), p99 {row['p99_ms']} ms, "
          f"ok {row['success_rate']}", flush=True)
    return row
