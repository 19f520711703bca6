"""Shared helpers of the benchmarks: server processes, the streaming client, statistics.

Nothing here knows which server it drives: a :class:`ServerProcess` is a command line plus a
readiness URL, and :func:`run_level` streams OpenAI chat completions at one concurrency.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
from openai import AsyncOpenAI


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_results(out: Path, name: str, data: dict[str, Any], markdown: str) -> None:
    """``out/<name>.json`` (indented) and ``out/<name>.md``; print the Markdown."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolated linearly between ranks (as numpy does).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 50)
    2.5
    """
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """Where and with what a benchmark ran."""
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "inferplane": _version("inferplane"),
        "llama_cpp_python": _version("llama-cpp-python"),
        "openai": _version("openai"),
        "load_average_at_start": list(os.getloadavg()),
    }


# -- how busy the rest of the machine was -------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_cpu_s() -> float | None:
    """CPU seconds spent by the whole machine (all cores, not idle or iowait) since boot."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and its live descendants (/proc/PID/stat utime + stime)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        rest = text[text.rindex(")") + 2 :].split()  # the name may hold spaces
        stats[int(entry.name)] = (int(rest[1]), (int(rest[11]) + int(rest[12])) / _TICK)
    total, frontier = 0.0, [root]
    while frontier:
        pid = frontier.pop()
        if pid in stats:
            total += stats[pid][1]
        frontier += [child for child, (ppid, _) in stats.items() if ppid == pid]
    return total


def process_cpu_s(pid: int) -> float:
    """User plus system CPU time of one process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def sequential_ms(client: httpx.Client, url: str, body: dict[str, Any], n: int,
                  stream: bool) -> list[float]:
    """``n`` requests one after the other (read to the end when streamed); their latencies."""
    times = []
    body = {**body, "stream": stream}
    for _ in range(n):
        start = time.perf_counter()
        if stream:
            with client.stream("POST", url, json=body) as response:
                for _ in response.iter_raw():
                    pass
        else:
            response = client.post(url, json=body)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, response.status_code
    return times


async def closed_loop_ms(url: str, body: dict[str, Any], concurrency: int, seconds: float,
                         headers: dict[str, str] | None = None) -> tuple[int, list[float]]:
    """Requests answered in ``seconds`` by ``concurrency`` clients, and their latencies."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, headers=headers) as client:
        async def worker() -> None:
            while (start := time.perf_counter()) < deadline:
                response = await client.post(url, json=body)
                assert response.status_code == 200, response.status_code
                latencies.append((time.perf_counter() - start) * 1000)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


@dataclass(frozen=True)
class CpuUse:
    """CPU time, in cores (CPU seconds per wall second), over one measured stretch."""

    wall_s: float
    other_processes: float  # everything on the machine but this process and its children
    server: float  # the server under test and its children (the gateway's engine worker)
    client: float  # this process: the benchmark's own client


class CpuMonitor:
    """Who used the CPU while we measured: the machine's busy time (/proc/stat), the server's
    process tree and this process (/proc/PID/stat); what is left is other processes.

    The benchmark shares the machine with whatever else runs; ``other_processes`` well above 0
    says the numbers were disturbed."""

    def __init__(self, server_pid: int) -> None:
        self._server_pid = server_pid
        self._start = self._sample()

    def _sample(self) -> tuple[float, float, float, float] | None:
        busy = _busy_cpu_s()
        if busy is None:
            return None
        own = _tree_cpu_s(os.getpid())
        server = _tree_cpu_s(self._server_pid)
        return time.monotonic(), busy, own, server

    def stop(self) -> CpuUse | None:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return None
        wall, busy, own, server = (b - a for a, b in zip(self._start, end, strict=True))
        return CpuUse(wall, max(0.0, busy - own) / wall, server / wall,
                      max(0.0, own - server) / wall)


# -- server processes --------------------------------------------------------------------------


@dataclass
class ServerProcess:
    """A server started as a real process, ready once ``ready_path`` answers 200."""

    name: str
    argv: list[str]
    port: int
    ready_path: str
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> float:
        """Start the process and wait until it is ready; returns the seconds that took."""
        started = time.monotonic()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
            )
        deadline = started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n"
                                   f"{self.tail()}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=5).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        self.stop()
        raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait; SIGKILL only if it does not exit in ``timeout`` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            print(f"{self.name} ignored SIGTERM for {timeout:.0f}s; killing it", file=sys.stderr)
            self.proc.kill()
            return self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


# -- the client ------------------------------------------------------------------------------


@dataclass
class RequestResult:
    """One streamed chat completion as the client saw it."""

    concurrency: int
    round: int
    ttft_s: float | None = None  # time to the first non-empty content delta
    total_s: float = 0.0
    last_content_s: float | None = None
    completion_tokens: int = 0
    token_source: str = "usage"  # usage | length | tokenized (see count_missing_tokens)
    content_chunks: int = 0
    finish_reason: str | None = None
    text: str = ""
    error: str | None = None

    @property
    def itl_s(self) -> float | None:
        """Mean inter-token latency: from the first to the last token, per token after the
        first."""
        if self.ttft_s is None or self.last_content_s is None or self.completion_tokens < 2:
            return None
        return (self.last_content_s - self.ttft_s) / (self.completion_tokens - 1)

    def summary(self) -> dict[str, Any]:
        row = asdict(self)
        del row["text"]
        row["itl_s"] = self.itl_s
        return row


@dataclass(frozen=True)
class RequestSettings:
    model: str
    max_tokens: int
    temperature: float
    seed: int
    extra_body: dict[str, Any] = field(default_factory=dict)


async def stream_chat(client: AsyncOpenAI, prompt: str, settings: RequestSettings,
                      result: RequestResult) -> RequestResult:
    """Stream one chat completion, timing its first content delta and counting its tokens
    from the usage chunk (``stream_options.include_usage``) when the server sends one."""
    started = time.perf_counter()
    usage_tokens: int | None = None
    parts: list[str] = []
    try:
        stream = await client.chat.completions.create(
            model=settings.model,
            messages=[{"role": "user", "content": prompt}],
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            seed=settings.seed,
            stream=True,
            stream_options={"include_usage": True},
            extra_body=settings.extra_body or None,
        )
        async for chunk in stream:
            now = time.perf_counter() - started
            if chunk.usage is not None:
                usage_tokens = chunk.usage.completion_tokens
            for choice in chunk.choices:
                if choice.delta.content:
                    if result.ttft_s is None:
                        result.ttft_s = now
                    result.last_content_s = now
                    result.content_chunks += 1
                    parts.append(choice.delta.content)
                if choice.finish_reason is not None:
                    result.finish_reason = choice.finish_reason
    except Exception as exc:  # a failed request is recorded, not fatal to the benchmark
        result.error = f"{type(exc).__name__}: {exc}"
    result.total_s = time.perf_counter() - started
    result.text = "".join(parts)
    if usage_tokens is not None:
        result.completion_tokens, result.token_source = usage_tokens, "usage"
    elif result.finish_reason == "length":
        # No usage chunk, but the server stopped at max_tokens: that is the exact count.
        result.completion_tokens, result.token_source = settings.max_tokens, "length"
    else:
        result.token_source = "missing"
    if result.error is None and result.finish_reason is None:
        result.error = "the stream ended without a finish_reason (interrupted?)"
    return result


async def count_missing_tokens(base_url: str, model: str, results: Sequence[RequestResult]
                               ) -> None:
    """Fill in the token count of results without a usage chunk that stopped before
    ``max_tokens`` by tokenizing their text with the server's own tokenizer (llama-cpp-python's
    ``/extras/tokenize/count``). Called after a round, outside its timing."""
    missing = [r for r in results if r.token_source == "missing" and r.text]
    if not missing:
        return
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        for r in missing:
            resp = await http.post("/extras/tokenize/count", json={"input": r.text,
                                                                   "model": model})
            resp.raise_for_status()
            r.completion_tokens = int(resp.json()["count"])
            r.token_source = "tokenized"


@dataclass
class RoundResult:
    wall_s: float
    completion_tokens: int

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0


async def run_round(client: AsyncOpenAI, prompts: Sequence[str], settings: RequestSettings,
                    concurrency: int, round_no: int, *, tokenize_url: str | None = None
                    ) -> tuple[RoundResult, list[RequestResult]]:
    """Start ``len(prompts)`` streams at once; the round lasts until the last one ends.

    ``tokenize_url``: a llama-cpp-python server to count the tokens of streams that came
    without a usage chunk (after the round, so it is not timed)."""
    started = time.perf_counter()
    results = list(await asyncio.gather(*[
        stream_chat(client, p, settings, RequestResult(concurrency, round_no)) for p in prompts
    ]))
    wall = time.perf_counter() - started
    if tokenize_url is not None:
        await count_missing_tokens(tokenize_url, settings.model, results)
    return RoundResult(wall, sum(r.completion_tokens for r in results)), results


@dataclass
class LevelResult:
    """Every round at one concurrency, and the figures the report shows."""

    concurrency: int
    rounds: list[RoundResult]
    requests: list[RequestResult]
    cpu: CpuUse | None = None  # see CpuMonitor
    attempts: int = 1  # runs of this level (a disturbed one is run again)

    @property
    def other_cores(self) -> float | None:
        """Cores other processes used while this level ran."""
        return None if self.cpu is None else self.cpu.other_processes

    @property
    def ok(self) -> list[RequestResult]:
        return [r for r in self.requests if r.error is None]

    @property
    def completion_tokens(self) -> int:
        return sum(r.completion_tokens for r in self.requests)

    @property
    def wall_s(self) -> float:
        return sum(r.wall_s for r in self.rounds)

    @property
    def tokens_per_s(self) -> float:
        """Aggregate output tokens/s: every round's completion tokens over its wall time."""
        return self.completion_tokens / self.wall_s if self.wall_s > 0 else 0.0

    def ttft_ms(self, q: float) -> float:
        return 1000 * percentile([r.ttft_s for r in self.ok if r.ttft_s is not None], q)

    @property
    def itl_ms(self) -> float:
        values = [r.itl_s for r in self.ok if r.itl_s is not None]
        return 1000 * sum(values) / len(values) if values else float("nan")

    @property
    def per_stream_tokens_per_s(self) -> float:
        """Mean decode speed one stream sees: 1 / inter-token latency."""
        return 1000 / self.itl_ms if self.itl_ms > 0 else float("nan")

    def summary(self) -> dict[str, Any]:
        sources: dict[str, int] = {}
        for r in self.requests:
            sources[r.token_source] = sources.get(r.token_source, 0) + 1
        return {
            "concurrency": self.concurrency,
            "rounds": len(self.rounds),
            "requests": len(self.requests),
            "errors": len(self.requests) - len(self.ok),
            "completion_tokens": self.completion_tokens,
            "wall_s": round(self.wall_s, 3),
            "aggregate_tokens_per_s": round(self.tokens_per_s, 2),
            "ttft_p50_ms": _num(self.ttft_ms(50), 1),
            "ttft_p99_ms": _num(self.ttft_ms(99), 1),
            "itl_mean_ms": _num(self.itl_ms, 2),
            "per_stream_tokens_per_s": _num(self.per_stream_tokens_per_s, 2),
            "cpu_cores": None if self.cpu is None else {
                k: round(v, 3) for k, v in asdict(self.cpu).items()},
            "cpu_ms_per_token": None if self.cpu is None or not self.completion_tokens else {
                "server": round(1000 * self.cpu.server * self.cpu.wall_s
                                / self.completion_tokens, 3),
                "client": round(1000 * self.cpu.client * self.cpu.wall_s
                                / self.completion_tokens, 3),
            },
            "attempts": self.attempts,
            "finish_reasons": _count(r.finish_reason or "none" for r in self.requests),
            "token_sources": sources,
            "round_details": [
                {"wall_s": round(r.wall_s, 3), "completion_tokens": r.completion_tokens,
                 "tokens_per_s": round(r.tokens_per_s, 2)} for r in self.rounds
            ],
            "request_details": [r.summary() for r in self.requests],
        }


def _num(x: float, digits: int) -> float | None:
    """``x`` rounded, or None for NaN (which JSON cannot hold)."""
    return None if math.isnan(x) else round(x, digits)


def _count(items: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return counts
