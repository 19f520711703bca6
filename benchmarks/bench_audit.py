"""What the audit log costs: an append (inside a caller's transaction, and alone in one of its
own on SQLite and PostgreSQL), and at 1M entries the proof sizes, proof times (first time,
from the stored hashes, and cached), checkpoint signing and a full `audit verify`.

    python benchmarks/bench_audit.py [--entries 1000000] [--out benchmarks/results]

Builds the log in a temporary SQLite file (synchronous=FULL, as the gateway runs it) and starts
its own PostgreSQL on loopback (fsync off: a lower bound for a durable server). Writes
audit.json and audit.md.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.services
from tests.services import running_postgres

from common import write_results
from inferplane.audit import store
from inferplane.audit.log import AuditLog
from inferplane.audit.merkle import HASH_SIZE, verify_consistency, verify_inclusion

DATA = {"event": 1, "target": "k2x9abcdefgh", "tenant": "acme",
        "details": {"rpm": 600, "budget": "100usd/month", "models": ["chat-*"]}}
# Appends per transaction while building: SQLite 1000; PostgreSQL 100, since each append
# makes a new version of the tree-head row that the rest of its transaction walks past.
SQLITE_BATCH, PG_BATCH = 1000, 100


def _us(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"mean_us": round(statistics.fmean(samples) * 1e6, 1),
            "p50_us": round(ordered[len(ordered) // 2] * 1e6, 1),
            "p99_us": round(ordered[int(len(ordered) * 0.99)] * 1e6, 1)}


def build(log: AuditLog, engine_begin: Callable[[], Any], n: int,
          batch: int) -> dict[str, Any]:
    """Append ``n`` entries, ``batch`` per transaction: the marginal cost of one append in
    a transaction that is open anyway (what a tenancy change or a ledger commit pays)."""
    per_append: list[float] = []
    start = time.perf_counter()
    done = log.head().size
    while done < n:
        count = min(batch, n - done)
        t0 = time.perf_counter()
        with engine_begin() as c:
            for i in range(count):
                store.append(c, "key.create", {**DATA, "event": done + i}, "cli:bench")
        per_append.append((time.perf_counter() - t0) / count)
        done += count
        if done % 100_000 < count:
            print(f"  {done} entries, {time.perf_counter() - start:.0f}s", flush=True)
    return {"entries": n, "seconds": round(time.perf_counter() - start, 1),
            "in_transaction_us_per_append": round(statistics.fmean(per_append) * 1e6, 1)}


def alone(log: AuditLog, n: int) -> dict[str, float]:
    """``n`` appends, one transaction (and, on SQLite, one fsync) each."""
    samples = []
    for i in range(n):
        t0 = time.perf_counter()
        log.append("tenant.update", {**DATA, "event": i}, "cli:bench")
        samples.append(time.perf_counter() - t0)
    return _us(samples)


def proofs(url: str, key: Path, size: int, samples: int) -> dict[str, Any]:
    """Inclusion and consistency proofs at ``size``: sizes, and times from a fresh process
    (nothing cached) and then cached; each proof verified."""
    rng = random.Random(7)
    log = AuditLog.open(url, key_file=key)
    try:
        t0 = time.perf_counter()
        root = log.root(size)
        root_s = time.perf_counter() - t0
        leaves = [rng.randrange(size) for _ in range(samples)]
        firsts = [rng.randrange(1, size) for _ in range(samples)]
        out: dict[str, Any] = {"tree_size": size, "root_cold_ms": round(root_s * 1e3, 2)}
        for name, make, args in (("inclusion", log.inclusion, [(i, size) for i in leaves]),
                                 ("consistency", log.consistency,
                                  [(f, size) for f in firsts])):
            for phase in ("first", "cached"):
                times, lengths = [], []
                for a in args:
                    t0 = time.perf_counter()
                    proof = make(*a)
                    times.append(time.perf_counter() - t0)
                    path = proof.get("inclusion_path") or proof["consistency_path"]
                    lengths.append(len(path))
                out[f"{name}_{phase}"] = _us(times)
            out[f"{name}_hashes"] = {"mean": round(statistics.fmean(lengths), 1),
                                     "max": max(lengths)}
            out[f"{name}_bytes_max"] = max(lengths) * HASH_SIZE
        check = []
        for i in leaves[:50]:
            p = log.inclusion(i, size)
            leaf = __import__("base64").b64decode(p["leaf_hash"])
            path = [__import__("base64").b64decode(h) for h in p["inclusion_path"]]
            t0 = time.perf_counter()
            assert verify_inclusion(i, size, leaf, path, root)
            check.append(time.perf_counter() - t0)
        out["verify_inclusion"] = _us(check)
        check = []
        for f in firsts[:50]:
            p = log.consistency(f, size)
            path = [__import__("base64").b64decode(h) for h in p["consistency_path"]]
            first_root = __import__("base64").b64decode(p["root_hash_1"])
            t0 = time.perf_counter()
            assert verify_consistency(f, size, first_root, root, path)
            check.append(time.perf_counter() - t0)
        out["verify_consistency"] = _us(check)
        t0 = time.perf_counter()
        signed = log.checkpoint()
        out["checkpoint_ms"] = round((time.perf_counter() - t0) * 1e3, 2)
        t0 = time.perf_counter()
        report = log.verify(signed, [signed_verifier(log)])
        out["full_verify_s"] = round(time.perf_counter() - t0, 1)
        assert report.ok, report.problems
    finally:
        log.close()
    return out


def signed_verifier(log: AuditLog) -> Any:
    assert log.verifier is not None
    return log.verifier


def markdown(data: dict[str, Any]) -> str:
    s, p, b = data["sqlite"], data["proofs"], data["postgresql"]
    rows = [
        ("append inside the caller's transaction (SQLite, CPU)",
         f"{s['build']['in_transaction_us_per_append']} µs"),
        ("append alone, one transaction + fsync each (SQLite FULL)",
         f"p50 {s['alone']['p50_us']} µs, p99 {s['alone']['p99_us']} µs"),
        ("append alone, one transaction each (PostgreSQL, fsync off)",
         f"p50 {b['alone']['p50_us']} µs, p99 {b['alone']['p99_us']} µs"),
        ("append inside the caller's transaction (PostgreSQL)",
         f"{b['build']['in_transaction_us_per_append']} µs"),
        (f"building {s['build']['entries']:,} entries (SQLite)", f"{s['build']['seconds']} s"),
        ("database size per entry (SQLite, entries + subtree hashes)",
         f"{s['bytes_per_entry']} bytes"),
        ("root at 1M, nothing cached", f"{p['root_cold_ms']} ms"),
        ("inclusion proof: hashes (max) / bytes (max)",
         f"{p['inclusion_hashes']['mean']} ({p['inclusion_hashes']['max']}) / "
         f"{p['inclusion_bytes_max']}"),
        ("inclusion proof time, first / cached",
         f"p50 {p['inclusion_first']['p50_us']} / {p['inclusion_cached']['p50_us']} µs"),
        ("consistency proof: hashes (max) / bytes (max)",
         f"{p['consistency_hashes']['mean']} ({p['consistency_hashes']['max']}) / "
         f"{p['consistency_bytes_max']}"),
        ("consistency proof time, first / cached",
         f"p50 {p['consistency_first']['p50_us']} / {p['consistency_cached']['p50_us']} µs"),
        ("verifying an inclusion / consistency proof",
         f"p50 {p['verify_inclusion']['p50_us']} / {p['verify_consistency']['p50_us']} µs"),
        ("signing a checkpoint (read head, Ed25519, keep it)", f"{p['checkpoint_ms']} ms"),
        ("`audit verify` of the whole log (recompute every leaf and root)",
         f"{p['full_verify_s']} s"),
    ]
    lines = [f"# Audit log: append cost, proofs at {p['tree_size']:,} entries", "",
             f"{data['machine']}; {data['date']}. `python benchmarks/bench_audit.py` "
             "(`make bench-audit`).", "", "| what | cost |", "|---|---|"]
    lines += [f"| {a} | {c} |" for a, c in rows]
    lines += ["", "Proof times are the admin API's work without HTTP: read the stored hashes, "
              "fold them, and check the proof before answering. `first` is a fresh process "
              "(no subtree cached); `cached` asks the same proofs again.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    data: dict[str, Any] = {"machine": f"{platform.processor() or platform.machine()}, "
                                       f"Python {platform.python_version()}",
                            "date": time.strftime("%Y-%m-%d")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root}/audit.db"
        log = AuditLog.open(url, key_file=root / "audit.key")
        engine = log._engine
        data["sqlite"] = {"alone": alone(log, 300)}
        print("sqlite alone", data["sqlite"]["alone"], flush=True)
        data["sqlite"]["build"] = build(log, engine.begin, args.entries, SQLITE_BATCH)
        log.close()
        db = root / "audit.db"
        data["sqlite"]["bytes_per_entry"] = round(db.stat().st_size / args.entries)
        data["proofs"] = proofs(url, root / "audit.key", args.entries, args.samples)
        print("proofs", data["proofs"], flush=True)
        with running_postgres(root / "pg") as pg:
            plog = AuditLog.open(pg)
            data["postgresql"] = {"alone": alone(plog, 1000),
                                  "build": build(plog, plog._engine.begin, 20_000, PG_BATCH)}
            plog.close()
    write_results(args.out, "audit", data, markdown(data))


if __name__ == "__main__":
    main()
