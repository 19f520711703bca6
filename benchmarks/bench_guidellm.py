"""guidellm, an external load client, against the gateway: its figures next to the ledger's.

``make bench-guidellm`` installs guidellm in ``benchmarks/.venvs/guidellm`` (its dependencies
stay out of the project venv), builds a Hugging Face tokenizer directory from the shipped GGUF
once (``gguf_tokenizer.py``: no hub), then runs this script with the project's Python:

1. **Tokenizer agreement**: the built tokenizer and llama.cpp's own (``llama_cpp.Llama(...,
   vocab_only=True)``) tokenize the same sample (this benchmark's prompts, guidellm-style Faker
   texts in eight locales, edge cases): the rate of texts with identical ids is reported, and
   plain ASCII text must all agree.
2. ``inferplane up`` on the default config (store and ledger in a temporary directory, a
   temporary ``HOME``), warmed up with one request.
3. ``guidellm run`` once per profile (synchronous, then a constant rate) with synthetic prompts
   sized by that tokenizer, ``--tokenizer kind=huggingface_auto,model=<dir>``.
4. The gateway is stopped (the ledger flushed) and each guidellm request is matched to its ledger
   record by the completion id: TTFT, ITL and output throughput from both, for the same requests.

Results: ``results/guidellm.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench_engine import MODEL_SPEC, gateway_process, prompt
from common import CpuMonitor, machine_info, percentile, write_results
from inferplane.engines.model_files import resolve_model

ROOT = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
GUIDELLM_VENV = ROOT / ".venvs" / "guidellm"
TOKENIZER_DIR = ROOT / ".tokenizer" / "gemma-3-270m"
EDGE_TEXTS = (
    "Hello world", " leading space", "trailing space ", "double  space and   triple",
    "tabs\tand\nnewlines\n\nparagraph", "def f(x):\n    return x ** 2  # comment\n",
    "URL https://example.com/a?b=c&d=e", "Numbers 1234567890 3.14159 -42", "ALL CAPS TEXT",
    "a" * 50, "naïve café façade \u2013 \u201cquotes\u201d \u2014 dash", "日本語のテキストです。",
    "emoji 🙂🚀 test", "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
)


@dataclass(frozen=True)
class Options:
    guidellm_venv: Path
    tokenizer_dir: Path
    prompt_tokens: int
    output_tokens: int
    sync_requests: int
    rate: float
    rate_requests: int
    samples: int
    out_dir: Path
    name: str
    keep_logs: bool


def parse_args(argv: Sequence[str] | None = None) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--guidellm-venv", type=Path, default=GUIDELLM_VENV)
    p.add_argument("--tokenizer-dir", type=Path, default=TOKENIZER_DIR)
    p.add_argument("--prompt-tokens", type=int, default=128)
    p.add_argument("--output-tokens", type=int, default=32)
    p.add_argument("--sync-requests", type=int, default=8,
                   help="requests of the synchronous profile")
    p.add_argument("--rate", type=float, default=0.5, help="constant profile: requests/s")
    p.add_argument("--rate-requests", type=int, default=16,
                   help="requests of the constant profile")
    p.add_argument("--samples", type=int, default=100,
                   help="Faker texts per locale (8) in the tokenizer check")
    p.add_argument("--out", type=Path, default=ROOT / "results")
    p.add_argument("--name", default="guidellm")
    p.add_argument("--keep-logs", action="store_true")
    a = p.parse_args(argv)
    return Options(a.guidellm_venv, a.tokenizer_dir, a.prompt_tokens, a.output_tokens,
                   a.sync_requests, a.rate, a.rate_requests, a.samples, a.out, a.name,
                   a.keep_logs)


# -- 1. the tokenizer ----------------------------------------------------------------------------


def _venv_json(opts: Options, *args: str, stdin: str | None = None) -> Any:
    """Run ``gguf_tokenizer.py`` in the guidellm venv and parse what it prints."""
    done = subprocess.run([str(opts.guidellm_venv / "bin" / "python"),
                           str(ROOT / "gguf_tokenizer.py"), *args],
                          input=stdin, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def check_tokenizer(opts: Options, model_file: Path) -> dict[str, Any]:
    """Token ids of the built tokenizer against llama.cpp's, text by text (no BOS on either;
    llama.cpp with ``special=True``, as the engine tokenizes a rendered chat prompt)."""
    import llama_cpp

    texts = [*EDGE_TEXTS, *(prompt(n) for n in range(50)),
             *_venv_json(opts, "sample", str(opts.samples))]
    ref = llama_cpp.Llama(model_path=str(model_file), vocab_only=True, verbose=False)
    expected = [ref.tokenize(t.encode(), add_bos=False, special=True) for t in texts]
    got = _venv_json(opts, "encode", str(opts.tokenizer_dir), stdin=json.dumps(texts))

    def rate(keep: Callable[[str], bool]) -> dict[str, Any]:
        pairs = [(e, g) for t, e, g in zip(texts, expected, got, strict=True) if keep(t)]
        same = sum(e == g for e, g in pairs)
        return {"texts": len(pairs), "identical": same,
                "rate": round(same / len(pairs), 4) if pairs else None}

    return {
        "reference": "llama_cpp.Llama(vocab_only=True).tokenize(add_bos=False, special=True)",
        "all": rate(lambda _t: True),
        "ascii": rate(str.isascii),
        "non_ascii": rate(lambda t: not t.isascii()),
        "tokens_compared": sum(len(e) for e in expected),
        "mismatches": [{"text": t[:80], "llama_cpp": e[:20], "built": g[:20]}
                       for t, e, g in zip(texts, expected, got, strict=True) if e != g][:10],
    }


# -- 2-3. the gateway and guidellm ---------------------------------------------------------------


def profiles(opts: Options) -> list[tuple[str, list[str]]]:
    """(name, the ``--profile`` and ``--constraint`` arguments) of each guidellm run."""
    return [
        ("synchronous", ["--profile", "kind=synchronous",
                         "--constraint", f"kind=max_requests,count={opts.sync_requests}"]),
        (f"constant {opts.rate:g} req/s", [
            "--profile", f"kind=constant,rate={opts.rate:g}",
            "--constraint", f"kind=max_requests,count={opts.rate_requests}"]),
    ]


def run_guidellm(opts: Options, url: str, profile: list[str], out: Path,
                 log: Path) -> dict[str, Any]:
    argv = [
        str(opts.guidellm_venv / "bin" / "guidellm"), "run",
        "--backend", f"kind=openai_http,target={url},model=default", *profile,
        "--data", (f"kind=synthetic_text,prompt_tokens={opts.prompt_tokens},"
                   f"output_tokens={opts.output_tokens}"),
        "--tokenizer", f"kind=huggingface_auto,model={opts.tokenizer_dir.resolve()}",
        "--output", f"kind=json,path={out}", "--disable-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("ab") as f:
        subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, check=True)
    report: dict[str, Any] = json.loads(out.read_text())
    return {"argv": argv, "benchmark": report["benchmarks"][0]}


# -- 4. the figures ------------------------------------------------------------------------------


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "p50": None, "p99": None}
    return {"mean": round(sum(values) / len(values), 1), "p50": round(percentile(values, 50), 1),
            "p99": round(percentile(values, 99), 1)}


def _guidellm_metric(bench: dict[str, Any], key: str) -> dict[str, float | None]:
    """guidellm's own summary of ``key`` over its successful requests."""
    m = bench["metrics"][key]["successful"]
    return {"mean": round(m["mean"], 1), "p50": round(m["median"], 1),
            "p99": round(m["percentiles"]["p99"], 1)}


def figures(bench: dict[str, Any], ledger: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """guidellm's TTFT, ITL and throughput, and the ledger's for the same requests."""
    requests = bench["requests"]["successful"]
    records = [ledger[r["response_id"]] for r in requests if r.get("response_id") in ledger]
    ttft = [float(r["ttft_ms"]) for r in records if r["ttft_ms"] is not None]
    itl = [(r["latency_ms"] - r["ttft_ms"]) / (r["completion_tokens"] - 1) for r in records
           if r["ttft_ms"] is not None and r["completion_tokens"] > 1]
    out_tokens = sum(r["completion_tokens"] for r in records)
    span = (max((r["ts"] + r["latency_ms"] / 1000 for r in records), default=0.0)
            - min((r["ts"] for r in records), default=0.0))
    totals = bench["metrics"]["request_totals"]
    pairs = [{"id": r["response_id"], "guidellm_ttft_ms": round(r["time_to_first_token_ms"], 1),
              "ledger_ttft_ms": _round(ledger[r["response_id"]]["ttft_ms"]),
              "guidellm_latency_ms": round(r["request_latency"] * 1000, 1),
              "ledger_latency_ms": _round(ledger[r["response_id"]]["latency_ms"]),
              "output_tokens": r["output_tokens"]}
             for r in requests if r.get("response_id") in ledger]
    ttft_gap = [p["guidellm_ttft_ms"] - p["ledger_ttft_ms"] for p in pairs
                if p["ledger_ttft_ms"] is not None]
    return {
        "requests": {"guidellm": totals, "matched_in_ledger": len(records)},
        "duration_s": round(bench["duration"], 1),
        "guidellm": {  # its request records, summed up as the ledger's are
            "ttft_ms": _stats([r["time_to_first_token_ms"] for r in requests]),
            "itl_ms": _stats([r["inter_token_latency_ms"] for r in requests
                              if r["inter_token_latency_ms"] is not None]),
            "output_tokens": int(bench["metrics"]["output_token_count"]["successful"]
                                 ["total_sum"]),
            "output_tokens_per_s": round(bench["metrics"]["output_tokens_per_second"]
                                         ["successful"]["mean"], 2),
            "requests_per_s": round(bench["metrics"]["requests_per_second"]["successful"]
                                    ["mean"], 3),
        },
        "guidellm_summary": {  # its own statistics (nearest-rank percentiles)
            "ttft_ms": _guidellm_metric(bench, "time_to_first_token_ms"),
            "itl_ms": _guidellm_metric(bench, "inter_token_latency_ms"),
        },
        "ledger": {
            "ttft_ms": _stats(ttft), "itl_ms": _stats(itl), "output_tokens": out_tokens,
            "output_tokens_per_s": round(out_tokens / span, 2) if span > 0 else None,
            "requests_per_s": round(len(records) / span, 3) if span > 0 else None,
        },
        "ttft_gap_ms": _stats(ttft_gap),  # guidellm's minus the ledger's, request by request
        "requests_matched": pairs,
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 1)


def read_ledger(config: Path, env: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Every ledger record of the run, by id (``inferplane ledger tail --json``)."""
    done = subprocess.run([str(BIN / "inferplane"), "ledger", "tail", "--config", str(config),
                           "-n", "100000", "--json"], capture_output=True, text=True,
                          check=True, env={**os.environ, **env})
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    return {row["id"]: row for row in rows}


# -- the report ----------------------------------------------------------------------------------


def _row(label: str, source: str, f: dict[str, Any]) -> str:
    return (f"| {label} | {source} | {f['ttft_ms']['p50']} | {f['ttft_ms']['p99']} | "
            f"{f['itl_ms']['mean']} | {f['output_tokens']} | {f['output_tokens_per_s']} |")


def markdown(report: dict[str, Any]) -> str:
    m, s, tok = report["machine"], report["settings"], report["tokenizer"]
    lines = [
        "# guidellm against the gateway", "",
        f"{m['date']}, {m['cpu_model']}, {m['cpu_cores']} cores; load average at start "
        f"{m['load_average_at_start'][0]:.2f}. guidellm {s['guidellm']}; the model "
        f"`{s['model']}` served as `default`; synthetic prompts of {s['prompt_tokens']} tokens, "
        f"{s['output_tokens']} output tokens (guidellm sends `ignore_eos`).", "",
        f"**Tokenizer** (built from `{s['model_file']}`, compared with llama.cpp's): "
        f"{tok['all']['identical']}/{tok['all']['texts']} texts identical "
        f"({tok['tokens_compared']} tokens); plain ASCII {tok['ascii']['identical']}/"
        f"{tok['ascii']['texts']}, other {tok['non_ascii']['identical']}/"
        f"{tok['non_ascii']['texts']}.", "",
        "Same requests, two clocks: guidellm's (client side) and the gateway ledger's (server "
        "side, matched by completion id). TTFT in ms, p50 and p99 over the requests (linear "
        "interpolation); ITL in ms, mean over requests; output "
        "tokens/s: guidellm's mean over its run, the ledger's over the span from the first "
        "arrival to the last completion.", "",
        "| profile | source | TTFT p50 | TTFT p99 | ITL mean | output tokens | output tok/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in report["runs"]:
        f = run["figures"]
        lines += [_row(run["profile"], "guidellm", f["guidellm"]),
                  _row(run["profile"], "ledger", f["ledger"])]
    lines += ["", "Request by request, guidellm's TTFT minus the ledger's (ms; p50, p99): "
              + ", ".join(f"{r['profile']} {r['figures']['ttft_gap_ms']['p50']}, "
                          f"{r['figures']['ttft_gap_ms']['p99']}" for r in report["runs"])
              + ". guidellm's own summary, TTFT p50 and p99 (ms): "
              + ", ".join(f"{r['profile']} {r['figures']['guidellm_summary']['ttft_ms']['p50']}, "
                          f"{r['figures']['guidellm_summary']['ttft_ms']['p99']}"
                          for r in report["runs"])
              + " (its percentiles take the nearest rank; the table interpolates between "
              "ranks for both sources, as results/engine.md does)"
              + "; requests matched in the ledger: "
              + ", ".join(f"{r['profile']} {r['figures']['requests']['matched_in_ledger']}/"
                          f"{r['figures']['requests']['guidellm']['total']}"
                          for r in report["runs"]) + ".",
              "", "CPU taken by other processes while each profile ran (cores): "
              + ", ".join(f"{r['profile']} {r['other_cores']}" for r in report["runs"])
              + ". The machine was shared with other work: read the figures as a check that "
              "guidellm and the ledger agree, not as the engine's speed (see engine.md).", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    model_file = resolve_model(MODEL_SPEC)
    started = time.monotonic()
    print("comparing the built tokenizer with llama.cpp's ...", flush=True)
    tokenizer = check_tokenizer(opts, model_file)
    print(f"  {tokenizer['all']['identical']}/{tokenizer['all']['texts']} identical "
          f"(ASCII {tokenizer['ascii']['identical']}/{tokenizer['ascii']['texts']})", flush=True)
    if tokenizer["ascii"]["identical"] != tokenizer["ascii"]["texts"]:
        print(json.dumps(tokenizer["mismatches"], indent=2), file=sys.stderr)
        return 1
    version = subprocess.run([str(opts.guidellm_venv / "bin" / "guidellm"), "--version"],
                             capture_output=True, text=True, check=True).stdout.split()[-1]
    report: dict[str, Any] = {
        "benchmark": "guidellm", "machine": machine_info(),
        "settings": {"model": MODEL_SPEC, "model_file": model_file.name, "guidellm": version,
                     "prompt_tokens": opts.prompt_tokens, "output_tokens": opts.output_tokens,
                     "tokenizer_dir": str(opts.tokenizer_dir)},
        "tokenizer": tokenizer, "runs": [],
    }
    tmp = Path(tempfile.mkdtemp(prefix="inferplane-guidellm-"))
    # A temporary HOME; the model cache stays where the model already is.
    env = {"HOME": str(tmp), "INFERPLANE_CACHE_DIR": str(model_file.parent.parent)}
    server = gateway_process(tmp, os.cpu_count() or 1)
    server.env.update(env)
    runs: list[tuple[str, dict[str, Any], float | None]] = []
    try:
        print("starting the gateway ...", flush=True)
        print(f"  ready in {server.start():.1f}s on {server.url}", flush=True)
        httpx.post(server.url + "/v1/chat/completions", timeout=120, json={
            "model": "default", "max_tokens": 8,
            "messages": [{"role": "user", "content": prompt(10_000)}]}).raise_for_status()
        for i, (name, profile) in enumerate(profiles(opts)):
            print(f"guidellm: {name} ...", flush=True)
            assert server.proc is not None
            monitor = CpuMonitor(server.proc.pid)
            run = run_guidellm(opts, server.url, profile, tmp / f"guidellm-{i}.json",
                               tmp / "guidellm.log")
            cpu = monitor.stop()
            runs.append((name, run, round(cpu.other_processes, 2) if cpu else None))
    except BaseException:
        print(f"--- gateway log (tail) ---\n{server.tail()}", file=sys.stderr)
        raise
    finally:
        print(f"  stopped the gateway (exit status {server.stop()})", flush=True)
    try:
        ledger = read_ledger(tmp / "inferplane.yaml", env)
        for name, run, other in runs:
            report["runs"].append({"profile": name, "argv": run["argv"], "other_cores": other,
                                   "figures": figures(run["benchmark"], ledger)})
    finally:
        if opts.keep_logs:
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    report["duration_s"] = round(time.monotonic() - started, 1)
    report["load_average_at_end"] = list(os.getloadavg())
    write_results(opts.out_dir, opts.name, report, markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
