"""What tenancy adds to a request: admission + settlement in memory and in Redis (one process,
one at a time and 64 at once), and a key check that hits the cache.

    python benchmarks/bench_admission.py [--out benchmarks/results]

Starts its own Redis on loopback. Writes admission.json and admission.md.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services
from tests.services import running_redis

from common import write_results
from inferplane.tenancy.admission import Demand, Limits, Reservation
from inferplane.tenancy.budget import Budget
from inferplane.tenancy.counters import Counters, MemoryCounters, RedisCounters
from inferplane.tenancy.keys import hash_secret, key_id, new_key

LIMITS = [Limits("key:bench", rpm=10**9, tpm=10**12, budget=Budget(1e6, "month")),
          Limits("tenant:bench", rpm=10**9, tpm=10**12, budget=Budget(1e6, "month"))]
DEMAND = Demand(500, 1_000)


async def no_spend(_scope: str, _key: str) -> int:
    return 0


async def one(counters: Counters) -> None:
    outcome = await counters.admit(LIMITS, DEMAND)
    assert isinstance(outcome, Reservation)
    await counters.settle(outcome, 300, 600)


async def sequential(counters: Counters, n: int) -> dict[str, float]:
    for _ in range(200):
        await one(counters)
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await one(counters)
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return {"p50_us": samples[n // 2], "p99_us": samples[int(n * 0.99)],
            "mean_us": statistics.fmean(samples)}


async def concurrent(counters: Counters, n: int, width: int = 64) -> float:
    """Admissions + settlements per second with ``width`` requests in flight."""
    sem = asyncio.Semaphore(width)

    async def guarded() -> None:
        async with sem:
            await one(counters)

    start = time.perf_counter()
    await asyncio.gather(*(guarded() for _ in range(n)))
    return n / (time.perf_counter() - start)


def key_check_us(n: int = 200_000) -> float:
    """The per-request part of a cached key check: parse, hash, dictionary lookup."""
    key = new_key()
    cache: dict[str, object] = {key.hash: object()}

    def check() -> object:
        return key_id(key.secret) and cache.get(hash_secret(key.secret))

    start = time.perf_counter()
    for _ in range(n):
        check()
    return (time.perf_counter() - start) / n * 1e6


async def measure(redis_url: str) -> dict[str, Any]:
    results: dict[str, Any] = {}

    async def memory() -> Counters:
        return MemoryCounters(no_spend)

    async def redis() -> Counters:
        return RedisCounters(redis_url, no_spend)

    backends: dict[str, Callable[[], Awaitable[Counters]]] = {"memory": memory, "redis": redis}
    for name, make in backends.items():
        counters = await make()
        try:
            results[name] = {**await sequential(counters, 5_000),
                             "per_s_64_in_flight": await concurrent(counters, 10_000)}
        finally:
            await counters.close()
    results["key_check_us"] = key_check_us()
    return results


def markdown(data: dict[str, Any]) -> str:
    lines = [
        "# Admission overhead", "",
        f"{data['machine']}; one Python process, uvloop not used; Redis {data['redis']} on "
        "loopback. Each operation is one admission (key + tenant: RPM, TPM and budget) and its "
        "settlement.", "",
        "| counters | p50 | p99 | mean | admissions/s, 64 in flight |", "|---|---|---|---|---|",
    ]
    for name in ("memory", "redis"):
        r = data["results"][name]
        lines.append(f"| {name} | {r['p50_us']:.0f} µs | {r['p99_us']:.0f} µs | "
                     f"{r['mean_us']:.0f} µs | {r['per_s_64_in_flight']:,.0f} |")
    lines += ["", f"Cached key check (parse + SHA-256 + lookup): "
                  f"{data['results']['key_check_us']:.2f} µs.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_redis(Path(tmp)) as url:
        import redis as redis_sync

        version = redis_sync.Redis.from_url(url).info()["redis_version"]
        results = asyncio.run(measure(url))
    data = {"machine": f"{platform.processor() or platform.machine()}, "
                       f"Python {platform.python_version()}",
            "redis": version, "results": results,
            "date": time.strftime("%Y-%m-%d")}
    write_results(args.out, "admission", data, markdown(data))


if __name__ == "__main__":
    main()
