"""Vector indexes for the semantic cache: lookup latency, memory and build time at 10k, 100k and
1M entries of 384 dimensions (all-MiniLM-L6-v2's), on this machine.

    python benchmarks/bench_vector_index.py [--sizes 10000,100000,1000000] [--budget-s 420]

Candidates that install here as packages: exact search in numpy (the baseline; one BLAS thread,
as in the gateway: ``cache/embedder.py``), usearch (HNSW, float32 and int8, and int8 searching
256 wide as the gateway does), hnswlib (HNSW), faiss (HNSW, and IVF with 1024 lists). Each
candidate and size runs in its own process, so its memory is the resident-set growth of that
process alone.

Vectors are synthetic but clustered like embeddings of many phrasings of fewer questions:
``size / 20`` random centres, each vector a centre plus Gaussian noise, normalised. Queries are
stored vectors plus noise (a paraphrase of a kept question); a lookup is right when it finds the
vector its query came from (recall@1). Latency is one query at a time (a gateway looks up one
request at a time), after 50 warm-up queries.

A build that would not finish within ``--budget-s`` (judged from the 100k build) is not run at
1M; the results say so. Writes vector-index.json and vector-index.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent))  # common
from common import machine_info, write_results

DIM = 384
QUERIES = 1000
Vectors = npt.NDArray[np.float32]


class Candidate(Protocol):
    removes: bool  # can drop one entry (an expired or evicted answer)

    def build(self, x: Vectors) -> None: ...
    def search(self, q: Vectors) -> int: ...


class Flat:
    removes = True

    def build(self, x: Vectors) -> None:
        from threadpoolctl import ThreadpoolController
        ThreadpoolController().limit(limits=1, user_api="blas")  # as the gateway runs it
        self.x = x

    def search(self, q: Vectors) -> int:
        return int(np.argmax(self.x @ q))


class Usearch:
    removes = True

    def __init__(self, dtype: str, expansion_search: int = 64) -> None:
        self.dtype = dtype
        self.expansion_search = expansion_search  # usearch's default: 64

    def build(self, x: Vectors) -> None:
        from usearch.index import Index
        self.index = Index(ndim=DIM, metric="ip", dtype=self.dtype, connectivity=16,
                           expansion_search=self.expansion_search)
        self.index.add(np.arange(len(x), dtype=np.uint64), x, threads=2)

    def search(self, q: Vectors) -> int:
        return int(self.index.search(q, 1).keys[0])


class Hnswlib:
    removes = True  # mark_deleted

    def build(self, x: Vectors) -> None:
        import hnswlib
        self.index = hnswlib.Index(space="ip", dim=DIM)
        self.index.init_index(max_elements=len(x), M=16, ef_construction=100)
        self.index.add_items(x, np.arange(len(x)), num_threads=2)
        self.index.set_ef(64)

    def search(self, q: Vectors) -> int:
        labels, _ = self.index.knn_query(q, k=1)
        return int(labels[0][0])


class FaissHnsw:
    removes = False  # faiss's HNSW cannot remove an entry

    def build(self, x: Vectors) -> None:
        import faiss
        self.index = faiss.IndexHNSWFlat(DIM, 16, faiss.METRIC_INNER_PRODUCT)
        self.index.hnsw.efSearch = 64
        self.index.add(x)

    def search(self, q: Vectors) -> int:
        _, ids = self.index.search(q[None, :], 1)
        return int(ids[0][0])


class FaissIvf:
    removes = True  # remove_ids

    def build(self, x: Vectors) -> None:
        import faiss
        lists = 1024 if len(x) >= 100_000 else 128
        quantizer = faiss.IndexFlatIP(DIM)
        self.index = faiss.IndexIVFFlat(quantizer, DIM, lists, faiss.METRIC_INNER_PRODUCT)
        sample = x[np.random.default_rng(1).choice(len(x), min(len(x), 40 * lists),
                                                   replace=False)]
        self.index.train(sample)
        self.index.add(x)
        self.index.nprobe = 16

    def search(self, q: Vectors) -> int:
        _, ids = self.index.search(q[None, :], 1)
        return int(ids[0][0])


CANDIDATES: dict[str, Callable[[], Candidate]] = {
    "numpy exact": Flat,
    "usearch HNSW f32": lambda: Usearch("f32"),
    "usearch HNSW i8": lambda: Usearch("i8"),
    "usearch HNSW i8, search 256": lambda: Usearch("i8", 256),
    "hnswlib HNSW": Hnswlib,
    "faiss HNSW": FaissHnsw,
    "faiss IVF1024": FaissIvf,
}


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def data(size: int) -> tuple[Vectors, Vectors, npt.NDArray[np.int64]]:
    rng = np.random.default_rng(size)
    centres = rng.standard_normal((max(1, size // 20), DIM), dtype=np.float32)
    x = centres[rng.integers(0, len(centres), size)]
    x += 0.5 * rng.standard_normal((size, DIM), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    source = rng.integers(0, size, QUERIES)
    q = x[source] + 0.03 * rng.standard_normal((QUERIES, DIM), dtype=np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return x, q, source


def one(name: str, size: int) -> dict[str, Any]:
    """Build ``name`` over ``size`` vectors and time single queries (in this process)."""
    x, q, source = data(size)
    candidate = CANDIDATES[name]()
    before = rss_bytes()
    start = time.perf_counter()
    candidate.build(x)
    build_s = time.perf_counter() - start
    memory = rss_bytes() - before + (x.nbytes if isinstance(candidate, Flat) else 0)
    for i in range(50):
        candidate.search(q[i])
    times, right = [], 0
    for i in range(QUERIES):
        start = time.perf_counter()
        found = candidate.search(q[i])
        times.append((time.perf_counter() - start) * 1e6)
        right += found == source[i]
    times.sort()
    return {"candidate": name, "size": size, "build_s": build_s, "memory_mb": memory / 1e6,
            "p50_us": times[len(times) // 2], "p99_us": times[int(len(times) * 0.99)],
            "recall_at_1": right / QUERIES, "removes": candidate.removes}


def run_one(name: str, size: int, timeout_s: float) -> dict[str, Any]:
    try:
        done = subprocess.run([sys.executable, __file__, "--one", name, str(size)],
                              capture_output=True, text=True, timeout=timeout_s, check=True)
    except subprocess.TimeoutExpired:
        return {"candidate": name, "size": size, "skipped": f"over {timeout_s:.0f} s"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(names: list[str], sizes: list[int], budget_s: float) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in names:
        previous: dict[str, Any] | None = None
        for size in sizes:
            if previous is not None and "build_s" in previous:
                projected = previous["build_s"] * size / previous["size"] * 1.3
                if projected > budget_s:
                    rows.append({"candidate": name, "size": size,
                                 "skipped": f"build projected at {projected:.0f} s, over the "
                                            f"{budget_s:.0f} s budget"})
                    print(rows[-1], flush=True)
                    continue
            previous = run_one(name, size, budget_s + 120)
            rows.append(previous)
            print(previous, flush=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    load = ", ".join(f"{x:.1f}" for x in m.get("load_average_at_start", []))
    lines = ["# Vector indexes for the semantic cache", "",
             f"{m['date']}; {m['cpu_model']}, {m['cpu_cores']} cores; Python {m['python']}; "
             f"load average at the start {load}. "
             f"{DIM}-d clustered synthetic vectors; single-query lookups (top 1); memory is the "
             "process's resident-set growth while building (for numpy, the array itself).", "",
             "| candidate | entries | build s | memory MB | lookup p50 µs | p99 µs | recall@1 "
             "| removes one entry |", "|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if "skipped" in r:
            lines.append(f"| {r['candidate']} | {r['size']:,} | not run: {r['skipped']} "
                         "| | | | | |")
            continue
        lines.append(f"| {r['candidate']} | {r['size']:,} | {r['build_s']:.1f} | "
                     f"{r['memory_mb']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f} | "
                     f"{r['recall_at_1']:.3f} | {'yes' if r['removes'] else 'no'} |")
    if "merged" in result:
        again = result["merged"]
        lines += ["", f"Rerun after the first run (the last rerun started "
                  f"{again['machine']['date']}) and merged: "
                  + "; ".join(f"{name} at {size:,}" for name, size in again["rows"]) + "."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=2, metavar=("CANDIDATE", "SIZE"))
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--candidates", help="comma-separated; default: all")
    parser.add_argument("--merge", action="store_true",
                        help="replace these rows in the existing results, keep the others")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], int(args.one[1]))))
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    names = args.candidates.split(",") if args.candidates else list(CANDIDATES)
    rows = measure(names, sizes, args.budget_s)
    result = {"machine": machine_info(), "rows": rows}
    if args.merge:
        result = json.loads((args.out / "vector-index.json").read_text())
        fresh = {(r["candidate"], r["size"]) for r in rows}
        kept = [r for r in result["rows"] if (r["candidate"], r["size"]) not in fresh]
        order = list(CANDIDATES)
        result["rows"] = sorted(kept + rows, key=lambda r: (order.index(r["candidate"]),
                                                           r["size"]))
        before = {tuple(r) for r in result.get("merged", {}).get("rows", [])}
        result["merged"] = {"machine": machine_info(), "rows": sorted(before | fresh)}
    write_results(args.out, "vector-index", result, markdown(result))


if __name__ == "__main__":
    main()
