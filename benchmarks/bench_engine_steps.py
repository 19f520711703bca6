"""What one step of the embedded engine costs, by what is in it.

    python benchmarks/bench_engine_steps.py [--out benchmarks/results] [--rounds 40]

The engine's model (the built-in gemma-3-270m, 2 threads) decodes steps straight through
``LlamaModel.decode``, no gateway: steps that decode one token for each of 1-4 sequences, and
steps that prefill a prompt chunk of 4-64 tokens (logits for its last token only). Kinds are
interleaved within each round, so load on the machine falls on all of them alike. What the
scheduler can trade: whether a step decoding three sequences costs about the same as one
(memory-bound, as on a GPU) or about three times as much (compute-bound), and how long a
prefill chunk holds the engine (an interactive request arriving waits for the step in flight).
Results: ``engine_steps.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path
from typing import Any

from common import machine_info, write_results
from inferplane.engines.llama import LlamaModel
from inferplane.engines.model_files import resolve_model
from inferplane.engines.scheduler import Sequence, Work

DECODE_SEQS = (1, 2, 3, 4)
CHUNKS = (4, 16, 32, 64)
TEXT = ("A lighthouse keeper kept a log of every ship that passed the rocks, the weather of each "
        "night, the colour of the sea at dawn, the birds that rested on the rail, and the letters "
        "that came with the supply boat once a month from a sister who lived in the city. ") * 3


def measure(model: LlamaModel, rounds: int) -> dict[str, list[float]]:
    slots = max(DECODE_SEQS) + 1
    seqs = [Sequence(id=str(i), prompt=[], max_new_tokens=0, slot=i) for i in range(slots)]
    prompt = model.tokenize(TEXT, add_bos=True, special=False)[: max(CHUNKS) + 1]
    pos = [8] * slots
    for seq in seqs[:-1]:
        model.decode([Work(seq, prompt[:8], 0, True)])
    times: dict[str, list[float]] = {}

    def timed(name: str, work: list[Work]) -> None:
        start = time.perf_counter()
        model.decode(work)
        times.setdefault(name, []).append(time.perf_counter() - start)

    chunk_seq = seqs[-1]
    for _ in range(rounds):
        for n in DECODE_SEQS:
            work = [Work(seqs[i], [prompt[pos[i] % len(prompt)]], pos[i], True) for i in range(n)]
            for i in range(n):
                pos[i] += 1
            timed(f"decode {n}", work)
        for size in CHUNKS:
            model.clear(chunk_seq.slot)
            timed(f"prefill {size}", [Work(chunk_seq, prompt[:size], 0, True)])
    return times


def markdown(data: dict[str, Any]) -> str:
    env, steps = data["machine"], data["steps"]
    lines = [
        "# Engine step costs", "",
        f"{env['date']} · {env['cpu_model']} · {data['setup']['threads']} threads · "
        f"{data['setup']['rounds']} rounds · load average before {data['load_before']}, "
        f"after {data['load_after']}", "",
        "| step | p50 (ms) | p10 (ms) | p90 (ms) | p50 per token (ms) |", "|---|---|---|---|---|",
    ]
    lines += [f"| {name} | {s['p50_ms']} | {s['p10_ms']} | {s['p90_ms']} | "
              f"{s['p50_ms'] / int(name.split()[1]):.2f} |" for name, s in steps.items()]
    one = steps["decode 1"]["p50_ms"]
    ratios = ", ".join(f"{n}: {steps[f'decode {n}']['p50_ms'] / one:.2f}x" for n in DECODE_SEQS[1:])
    lines += [
        "",
        f"A step decoding N sequences, against one decoding 1 (p50): {ratios}. "
        "`decode N`: one token for each of N sequences; `prefill N`: an N-token prompt chunk, "
        "logits for its last token. See benchmarks/README.md.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]
    model = LlamaModel(str(resolve_model("builtin:gemma-3-270m")), n_seq=max(DECODE_SEQS) + 1,
                       n_ctx_seq=4096, n_batch=512, n_threads=args.threads)
    times = measure(model, args.rounds)
    model.close()
    steps = {}
    for name, values in times.items():
        ms = sorted(v * 1000 for v in values)
        steps[name] = {"p50_ms": round(statistics.median(ms), 2),
                       "p10_ms": round(ms[len(ms) // 10], 2),
                       "p90_ms": round(ms[len(ms) * 9 // 10], 2)}
    data = {
        "machine": machine_info(),
        "setup": {"model": "builtin:gemma-3-270m", "threads": args.threads,
                  "rounds": args.rounds},
        "load_before": load_before, "load_after": [round(x, 2) for x in os.getloadavg()],
        "steps": steps,
    }
    write_results(args.out, "engine_steps", data, markdown(data))


if __name__ == "__main__":
    main()
