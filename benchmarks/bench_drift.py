"""Drift detection: how soon a real shift is found, how often a stable workload raises a false
alarm, and what it costs.

    python benchmarks/bench_drift.py [--quick] [--out benchmarks/results]

Synthetic traffic (``drift_workloads.py``) goes through the drift monitor's own step
(``DriftMonitor.take``: features, the shipped all-MiniLM-L6-v2 embeddings, windows and tests,
as the worker thread runs them, on one BLAS thread), in batches of ``evaluate_every`` so each
batch ends with one evaluation. A prompt's embedding is computed once and remembered (the
pools repeat prompts: each seed set draws its own pools, 500 distinct prompts of each kind at
most); the encoder's own speed is measured apart.

- False alarms: after the reference window, 100 windows' worth of baseline traffic (100 x
  window_size requests); a window counts as a false alarm when any evaluation in it declared
  drift on any feature.
- Detection delay: after the reference and one window of baseline traffic, the shifted traffic;
  the delay is the number of shifted requests until the first evaluation that declares drift
  (not found within 3 windows: "missed").

Each evaluation's smallest p-value times the number of features tested is kept, so every alpha
of the grid is judged on the same runs (drift where p < alpha / features). The alpha and window
size are chosen on the tuning seeds (:func:`choose`) and reported on held-out seeds, with the
whole grid beside them. Also measured: the request path's cost of handing a
finished request over (``DriftMonitor.offer``), and the worker's throughput.

Writes drift.json and drift.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common, drift_workloads
import drift_workloads as wl
from common import machine_info, write_results
from inferplane.config import DriftConfig
from inferplane.drift.features import EndedRequest
from inferplane.drift.monitor import DriftMonitor
from inferplane.embedding import TextEncoder, shipped_encoder
from inferplane.generation import last_user_text
from inferplane.ledger.record import UsageRecord
from inferplane.protocol.types import GenerationRequest, Message, SamplingParams

ALPHAS = (1e-2, 1e-3, 1e-4, 1e-5)
WINDOWS = (100, 200)
EVERY = 25
STABLE_WINDOWS = 100
TUNING_SEEDS: tuple[int, ...] = (1, 2)
HELD_OUT_SEEDS: tuple[int, ...] = (11, 12, 13)


class Remembered:
    """The shipped encoder, each distinct text encoded once."""

    def __init__(self, encoder: TextEncoder) -> None:
        self.encoder = encoder
        self.name, self.dimensions = encoder.name, encoder.dimensions
        self.known: dict[str, npt.NDArray[np.float32]] = {}

    def encode(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        new = [t for t in dict.fromkeys(texts) if t not in self.known]
        if new:
            for text, vector in zip(new, self.encoder.encode(new), strict=True):
                self.known[text] = vector
        return np.stack([self.known[t] for t in texts])


def monitor(window: int, seed: int) -> DriftMonitor:
    config = DriftConfig(enabled=True, reference_size=window, window_size=window,
                         min_samples=window // 2, evaluate_every=EVERY, alpha=1e-12)
    return DriftMonitor(config, lambda model: model, encoder=None, seed=seed)


def feed(mon: DriftMonitor, encoder: Remembered, traffic: wl.Traffic, pool: list[str],
         rng: random.Random, n: int) -> list[tuple[float, str] | None]:
    """``n`` requests in batches of :data:`EVERY`; after each batch, the evaluation's
    smallest p-value times the features tested, and its feature (None: insufficient data)."""
    scores: list[tuple[float, str] | None] = []
    for _ in range(n // EVERY):
        batch: list[EndedRequest] = [wl.request(traffic, pool, rng) for _ in range(EVERY)]
        mon.take(batch, encoder)
        rows = [r for r in mon.reports() if r.p_value is not None]
        if not rows:
            scores.append(None)
            continue
        best = min(rows, key=lambda r: r.p_value or 0.0)
        scores.append(((best.p_value or 0.0) * len(rows), best.feature))
    return scores


def stable_run(encoder: Remembered, window: int, seed: int,
               pools: dict[Any, list[str]]) -> list[tuple[float, str] | None]:
    rng = random.Random(seed)
    mon = monitor(window, seed)
    base = pools[wl.BASELINE.prompts]
    feed(mon, encoder, wl.BASELINE, base, rng, window)  # the reference
    return feed(mon, encoder, wl.BASELINE, base, rng, STABLE_WINDOWS * window)


def shift_run(encoder: Remembered, window: int, seed: int, pools: dict[Any, list[str]],
              shifted: wl.Traffic) -> list[tuple[float, str] | None]:
    rng = random.Random(seed * 1000 + 7)
    mon = monitor(window, seed)
    base = pools[wl.BASELINE.prompts]
    feed(mon, encoder, wl.BASELINE, base, rng, 2 * window)  # reference, then a stable window
    return feed(mon, encoder, shifted, pools[shifted.prompts], rng, 3 * window)


def false_alarm_windows(scores: list[tuple[float, str] | None], window: int,
                        alpha: float) -> tuple[int, dict[str, int]]:
    per = window // EVERY
    alarms, features = 0, dict[str, int]()
    for start in range(0, len(scores), per):
        hit = [s for s in scores[start:start + per] if s is not None and s[0] < alpha]
        if hit:
            alarms += 1
            features[hit[0][1]] = features.get(hit[0][1], 0) + 1
    return alarms, features


def delay(scores: list[tuple[float, str] | None], alpha: float) -> tuple[int | None, str | None]:
    for i, score in enumerate(scores):
        if score is not None and score[0] < alpha:
            return (i + 1) * EVERY, score[1]
    return None, None


def judge(encoder: Remembered, seeds: Sequence[int], quick: bool) -> dict[str, Any]:
    """Every (window, alpha) of the grid on ``seeds`` (the prompt pools drawn with the first)."""
    out: dict[str, Any] = {}
    pools = wl.pools(seeds[0])
    for window in WINDOWS:
        runs: dict[int, dict[str, Any]] = {}
        for seed in seeds:
            began = time.perf_counter()
            stable = stable_run(encoder, window, seed, pools) if not quick else []
            shifts = {name: shift_run(encoder, window, seed, pools, traffic)
                      for name, traffic in wl.SHIFTS.items()}
            runs[seed] = {"stable": stable, "shifts": shifts}
            print(f"window {window} seed {seed}: {time.perf_counter() - began:.0f} s",
                  flush=True)
        for alpha in ALPHAS:
            cell: dict[str, Any] = {"window": window, "alpha": alpha, "false_alarms": {},
                                    "delays": {}}
            for seed, run in runs.items():
                alarms, features = false_alarm_windows(run["stable"], window, alpha)
                cell["false_alarms"][seed] = {"windows": alarms, "by_feature": features}
                cell["delays"][seed] = {name: dict(zip(("requests", "feature"),
                                                       delay(scores, alpha), strict=True))
                                        for name, scores in run["shifts"].items()}
            out[f"{window}/{alpha:g}"] = cell
    return out


def summary(cell: dict[str, Any]) -> dict[str, Any]:
    delays = [d["requests"] for seed in cell["delays"].values() for d in seed.values()]
    found = [d for d in delays if d is not None]
    return {"false_alarm_windows": sum(f["windows"] for f in cell["false_alarms"].values()),
            "missed": len(delays) - len(found),
            "mean_delay": statistics.fmean(found) if found else None}


def choose(grid: dict[str, Any]) -> str:
    """The (window, alpha) with no false alarm on the tuning seeds at its alpha and at ten
    times it (a decade of margin: a choice that only just passes on the tuning seeds fails on
    others), then the fewest shifts missed, then the shortest mean delay."""
    def ok(key: str) -> bool:
        cell = grid[key]
        looser = f"{cell['window']}/{cell['alpha'] * 10:g}"
        return all(summary(grid[k])["false_alarm_windows"] == 0
                   for k in (key, looser) if k in grid) and looser in grid

    keys = [k for k in grid if ok(k)] or list(grid)
    return min(keys, key=lambda k: (summary(grid[k])["false_alarm_windows"],
                                    summary(grid[k])["missed"],
                                    summary(grid[k])["mean_delay"] or 1e9))


def offer_cost(repeats: int = 5, n: int = 100_000) -> dict[str, float]:
    """µs per request of the request path's hand-over: the prompt text and the offer. The
    queue is emptied every 500 offers, as the worker keeps it short (a queue left to grow to
    100,000 tuples measures the garbage collector instead)."""
    record = UsageRecord(id="r", ts=0.0, endpoint="chat.completions", model="chat",
                         deployment="d", provider="openai", prompt_tokens=30,
                         completion_tokens=120, ttft_ms=1.0, latency_ms=2.0, status=200,
                         error_type=None, finish_reason="stop", stream=True,
                         engine_seconds=0.0, cost_usd=0.0, tenant="acme")
    req = GenerationRequest(id="x", endpoint="chat.completions", model="chat",
                            params=SamplingParams(),
                            messages=(Message("system", "You are helpful."),
                                      Message("user", wl.english(random.Random(0)))))
    said = "Sure. Here are the steps"

    def timed(mon: DriftMonitor, empty: bool) -> float:
        best = float("inf")
        for _ in range(repeats):
            began = time.perf_counter()
            for _ in range(n // 500):
                for _ in range(500):
                    mon.offer(record, last_user_text(req), said)
                if empty:
                    mon._queue.clear()
            best = min(best, (time.perf_counter() - began) / n * 1e6)
        return best

    out = {f"sample_rate_{rate:g}": timed(DriftMonitor(
        DriftConfig(enabled=True, sample_rate=rate), lambda m: m, encoder=None, seed=0), True)
        for rate in (1.0, 0.1)}
    full = DriftMonitor(DriftConfig(enabled=True, queue_size=1), lambda m: m, encoder=None)
    out["queue_full_drop"] = timed(full, False)
    return out


def throughput(encoder: TextEncoder) -> dict[str, float]:
    """The worker's speed: prompts embedded per second (batches of 32 distinct prompts), and
    whole steps (features, embeddings, windows, an evaluation every 25) per second."""
    pool = wl.pools(99)[wl.BASELINE.prompts]
    texts = pool[:320]
    began = time.perf_counter()
    for i in range(0, len(texts), 32):
        encoder.encode(texts[i:i + 32])
    embed_rate = len(texts) / (time.perf_counter() - began)
    mon = DriftMonitor(DriftConfig(enabled=True), lambda m: m, encoder=None, seed=0)
    rng = random.Random(5)
    batches = [[wl.request(wl.BASELINE, pool, rng) for _ in range(32)] for _ in range(20)]
    began = time.perf_counter()
    for batch in batches:
        mon.take(batch, encoder)
    steps_rate = 640 / (time.perf_counter() - began)
    evaluations = []
    for _ in range(5):  # full windows now: one evaluation with all seven tests
        began = time.perf_counter()
        mon._evaluate(("chat", None))
        evaluations.append((time.perf_counter() - began) * 1000)
    return {"embeddings_per_s": embed_rate, "samples_per_s_with_embeddings": steps_rate,
            "evaluation_ms_window_200": statistics.median(evaluations)}


def grid_table(grid: dict[str, Any], seeds: Sequence[int], chosen: str) -> list[str]:
    lines = [f"| window | alpha | false-alarm windows (of {STABLE_WINDOWS * len(seeds)}) | "
             f"shifts missed (of {len(wl.SHIFTS) * len(seeds)}) | mean delay (requests) |",
             "|---:|---:|---:|---:|---:|"]
    for key, cell in grid.items():
        s = summary(cell)
        mean = "-" if s["mean_delay"] is None else f"{s['mean_delay']:.0f}"
        mark = " **(chosen)**" if key == chosen else ""
        lines.append(f"| {cell['window']} | {cell['alpha']:g}{mark} | "
                     f"{s['false_alarm_windows']} | {s['missed']} | {mean} |")
    return lines


def markdown(data: dict[str, Any]) -> str:
    chosen, tuning_seeds, held_seeds = data["chosen"], data["tuning_seeds"], data["held_out_seeds"]
    machine = data["machine"]
    lines = ["# Drift detection", "",
             f"{machine['date']}, {machine['cpu_model']}, {machine['cpu_cores']} cores shared "
             f"with other work (load average {machine['load_average_at_start'][0]:.1f} at the "
             "start); the shipped all-MiniLM-L6-v2 encoder; an evaluation every "
             f"{EVERY} requests; reference window = current window = `window`; "
             "min_samples = window / 2; drift where a p-value < alpha / 7 (Bonferroni over the "
             "7 features).", "",
             f"## Tuning (seeds {', '.join(map(str, tuning_seeds))})", "",
             *grid_table(data["tuning"], tuning_seeds, chosen), "",
             f"## Held out (seeds {', '.join(map(str, held_seeds))})", "",
             *grid_table(data["held_out"], held_seeds, chosen)]
    held = data["held_out"][chosen]
    s = summary(held)
    lines += ["", f"### The chosen window {held['window']} and alpha {held['alpha']:g}, held out",
              "", f"False alarms: {s['false_alarm_windows']} of "
              f"{STABLE_WINDOWS * len(held_seeds)} stable windows "
              f"({STABLE_WINDOWS} per seed, {held['window']} requests each).", "",
              "| shift | delay per seed (requests; first feature to alarm) |", "|---|---|"]
    for name in wl.SHIFTS:
        cells = []
        for seed in held_seeds:
            d = held["delays"][seed][name]
            cells.append("missed" if d["requests"] is None
                         else f"{d['requests']} ({d['feature']})")
        lines.append(f"| {name} | {'; '.join(cells)} |")
    cost = data["cost"]
    lines += ["", "## Cost", "",
              f"- request path, `offer` (prompt text + hand-over): "
              f"{cost['offer_us']['sample_rate_1']:.2f} µs per request at sample_rate 1, "
              f"{cost['offer_us']['sample_rate_0.1']:.2f} µs at 0.1, "
              f"{cost['offer_us']['queue_full_drop']:.2f} µs when the queue is full (dropped)",
              f"- worker: {cost['throughput']['embeddings_per_s']:.0f} prompts embedded per "
              f"second (batches of 32); {cost['throughput']['samples_per_s_with_embeddings']:.0f}"
              " requests judged per second end to end (features, embedding, windows, tests); "
              f"one evaluation of a full 200/200 window pair: "
              f"{cost['throughput']['evaluation_ms_window_200']:.1f} ms", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--quick", action="store_true",
                        help="no 100-window stable runs, one seed each (a smoke test)")
    args = parser.parse_args()
    global TUNING_SEEDS, HELD_OUT_SEEDS
    if args.quick:
        TUNING_SEEDS, HELD_OUT_SEEDS = TUNING_SEEDS[:1], HELD_OUT_SEEDS[:1]
    limits = threadpool_limits(limits=1, user_api="blas")  # as the gateway's worker runs
    encoder = shipped_encoder()
    remembered = Remembered(encoder)
    cost = {"offer_us": offer_cost(), "throughput": throughput(encoder)}
    print(cost, flush=True)
    tuning = judge(remembered, TUNING_SEEDS, args.quick)
    chosen = choose(tuning)
    held_out = judge(remembered, HELD_OUT_SEEDS, args.quick)
    data = {"machine": machine_info(), "every": EVERY, "stable_windows": STABLE_WINDOWS,
            "tuning_seeds": TUNING_SEEDS, "held_out_seeds": HELD_OUT_SEEDS,
            "chosen": chosen, "tuning": tuning, "held_out": held_out, "cost": cost,
            "summary": {"tuning": {k: summary(v) for k, v in tuning.items()},
                        "held_out": {k: summary(v) for k, v in held_out.items()}}}
    write_results(args.out, "drift-quick" if args.quick else "drift", data, markdown(data))
    limits.restore_original_limits()


if __name__ == "__main__":
    main()
