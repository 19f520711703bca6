"""Decode speed of a Llama-3-8B-shaped decoder on one GPU, and the planner's error against it.

Two steps, because the GPU machine has PyTorch but not this project's environment:

    python benchmarks/bench_gpu_decode.py measure --out raw.json   # on the GPU machine
    python benchmarks/bench_gpu_decode.py report raw.json          # here: calibrate, compare

``measure`` builds the decoder in plain PyTorch (32 layers, hidden 4096, GQA 32/8 heads of 128,
SwiGLU 14336, vocabulary 128256: the published Llama 3.1 8B shape) with random bf16 weights,
fills a KV cache of the requested context with random values, and times one decode step (every
sequence appends one token at that context) at each batch size and context length that fits.
Each step is captured once as a CUDA graph and replayed, so launch overhead does not dominate;
attention is ``scaled_dot_product_attention`` on the flash backend, with the query heads of each
KV group folded into the query-length axis (decode has no causal mask, so this is exact GQA).
Timing: CUDA events around blocks of replays after warm-up; the median block is reported. GPU
energy: NVML's total-energy counter over a separate ~1.5 s loop. It also measures the two
ceilings (a device-to-device copy; an 8192^3 bf16 matrix product) and a few prefill passes.

``report`` turns the raw file into the planner's calibration schema (docs/planner.md), fits the
planner on ONE point (batch 8, context 2048), predicts every other point and writes
``benchmarks/results/gpu-decode.json`` and ``gpu-decode.md`` with the per-point errors.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"

SHAPE = {
    "layers": 32, "hidden": 4096, "intermediate": 14336, "heads": 32, "kv_heads": 8,
    "head_dim": 128, "vocab": 128256,
}
BATCHES = (1, 8, 32, 64, 128)
CONTEXTS = (512, 2048, 8192)
PREFILLS = ((1, 512), (1, 2048), (4, 2048), (1, 8192))
CALIBRATION_POINT = (8, 2048)
CATALOG_MODEL = "llama-3.1-8b"
CATALOG_HARDWARE = "h100"


# ---------------------------------------------------------------------------------------------
# measure (needs torch and a CUDA GPU)
# ---------------------------------------------------------------------------------------------

def _torch() -> Any:
    import torch  # type: ignore[import-not-found,unused-ignore]

    return torch


class Decoder:
    """Random-weight Llama-3-8B-shaped decoder: weights, RoPE tables, one decode step."""

    def __init__(self, torch: Any, device: str = "cuda") -> None:
        self.t = torch
        s = SHAPE
        dtype = torch.bfloat16
        self.q_dim = s["heads"] * s["head_dim"]
        self.kv_dim = s["kv_heads"] * s["head_dim"]
        gen = torch.Generator(device=device)
        gen.manual_seed(0)

        def rand(*shape: int, std: float = 0.02) -> Any:
            w = torch.empty(*shape, device=device, dtype=dtype)
            w.normal_(0.0, std, generator=gen)
            return w

        self.embed = rand(s["vocab"], s["hidden"])
        self.lm_head = rand(s["vocab"], s["hidden"])
        self.final_norm = torch.ones(s["hidden"], device=device, dtype=dtype)
        self.layers = []
        for _ in range(s["layers"]):
            self.layers.append({
                "ln1": torch.ones(s["hidden"], device=device, dtype=dtype),
                "ln2": torch.ones(s["hidden"], device=device, dtype=dtype),
                "wqkv": rand(self.q_dim + 2 * self.kv_dim, s["hidden"]),
                "wo": rand(s["hidden"], self.q_dim),
                "w13": rand(2 * s["intermediate"], s["hidden"]),
                "w2": rand(s["hidden"], s["intermediate"]),
            })
        self.param_count = sum(
            t.numel() for t in (self.embed, self.lm_head)
        ) + sum(w.numel() for layer in self.layers for w in layer.values())
        inv = 1.0 / (500000.0 ** (torch.arange(0, s["head_dim"], 2, device=device).float()
                                  / s["head_dim"]))
        self.inv_freq = inv

    def rope(self, positions: Any) -> tuple[Any, Any]:
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = self.t.cat((freqs, freqs), dim=-1)
        return emb.cos().to(self.t.bfloat16), emb.sin().to(self.t.bfloat16)

    @staticmethod
    def rotate(x: Any, cos: Any, sin: Any) -> Any:
        half = x.shape[-1] // 2
        rotated = x.new_empty(x.shape)
        rotated[..., :half] = -x[..., half:]
        rotated[..., half:] = x[..., :half]
        return x * cos + rotated * sin

    def new_cache(self, batch: int, context: int) -> list[tuple[Any, Any]]:
        """Per layer (K, V) of [batch, kv_heads, context + 1, head_dim], random, not zeros."""
        s, t = SHAPE, self.t
        caches = []
        for _ in range(s["layers"]):
            k = t.empty(batch, s["kv_heads"], context + 1, s["head_dim"],
                        device="cuda", dtype=t.bfloat16).normal_()
            v = t.empty_like(k).normal_()
            caches.append((k, v))
        return caches

    def decode_step(self, ids: Any, cos: Any, sin: Any, caches: list[tuple[Any, Any]],
                    pos: int) -> Any:
        """One token per sequence at position ``pos``; returns the greedy next ids."""
        t, s = self.t, SHAPE
        f = t.nn.functional
        b = ids.shape[0]
        group = s["heads"] // s["kv_heads"]
        h = self.embed[ids]
        for layer, (kc, vc) in zip(self.layers, caches, strict=True):
            r = f.rms_norm(h, (s["hidden"],), layer["ln1"], 1e-5)
            qkv = r @ layer["wqkv"].T
            q, k, v = qkv.split((self.q_dim, self.kv_dim, self.kv_dim), dim=-1)
            q = self.rotate(q.view(b, s["heads"], s["head_dim"]), cos, sin)
            k = self.rotate(k.view(b, s["kv_heads"], s["head_dim"]), cos, sin)
            kc[:, :, pos] = k
            vc[:, :, pos] = v.view(b, s["kv_heads"], s["head_dim"])
            qg = q.view(b, s["kv_heads"], group, s["head_dim"])
            o = f.scaled_dot_product_attention(qg, kc, vc)
            h = h + o.reshape(b, self.q_dim) @ layer["wo"].T
            r = f.rms_norm(h, (s["hidden"],), layer["ln2"], 1e-5)
            gate, up = (r @ layer["w13"].T).chunk(2, dim=-1)
            h = h + (f.silu(gate) * up) @ layer["w2"].T
        h = f.rms_norm(h, (s["hidden"],), self.final_norm, 1e-5)
        return (h @ self.lm_head.T).argmax(dim=-1)

    def prefill(self, ids: Any) -> Any:
        """A causal forward pass over [batch, tokens]; logits of the last position only."""
        t, s = self.t, SHAPE
        f = t.nn.functional
        b, n = ids.shape
        cos, sin = self.rope(t.arange(n, device="cuda"))
        cos, sin = cos[None, :, None, :], sin[None, :, None, :]
        h = self.embed[ids]
        for layer in self.layers:
            r = f.rms_norm(h, (s["hidden"],), layer["ln1"], 1e-5)
            q, k, v = (r @ layer["wqkv"].T).split((self.q_dim, self.kv_dim, self.kv_dim), -1)
            q = self.rotate(q.view(b, n, s["heads"], s["head_dim"]), cos, sin).transpose(1, 2)
            k = self.rotate(k.view(b, n, s["kv_heads"], s["head_dim"]), cos, sin).transpose(1, 2)
            v = v.view(b, n, s["kv_heads"], s["head_dim"]).transpose(1, 2)
            o = f.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
            h = h + o.transpose(1, 2).reshape(b, n, self.q_dim) @ layer["wo"].T
            r = f.rms_norm(h, (s["hidden"],), layer["ln2"], 1e-5)
            gate, up = (r @ layer["w13"].T).chunk(2, dim=-1)
            h = h + (f.silu(gate) * up) @ layer["w2"].T
        h = f.rms_norm(h[:, -1], (s["hidden"],), self.final_norm, 1e-5)
        return h @ self.lm_head.T


def _time_blocks(torch: Any, fn: Any, *, blocks: int, per_block: int) -> list[float]:
    """Seconds per call of ``fn``, one figure per block of ``per_block`` calls (CUDA events)."""
    out = []
    for _ in range(blocks):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(per_block):
            fn()
        end.record()
        end.synchronize()
        out.append(start.elapsed_time(end) / 1000.0 / per_block)
    return out


class Energy:
    """NVML's total-energy counter (millijoules) of GPU 0, if NVML is there."""

    def __init__(self) -> None:
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
            self.nvml: Any = pynvml
            self.handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self.read_mj()
        except Exception:  # no NVML: energy is left out, timing still runs
            self.nvml = None

    def read_mj(self) -> int | None:
        if self.nvml is None:
            return None
        return int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))

    def watts_over(self, torch: Any, fn: Any, seconds: float, step_s: float) -> float | None:
        """Mean GPU power while ``fn`` runs back to back for about ``seconds``."""
        if self.nvml is None:
            return None
        reps = max(10, int(seconds / max(step_s, 1e-6)))
        torch.cuda.synchronize()
        e0, t0 = self.read_mj(), time.perf_counter()
        for _ in range(reps):
            fn()
        torch.cuda.synchronize()
        e1, t1 = self.read_mj(), time.perf_counter()
        assert e0 is not None and e1 is not None
        return (e1 - e0) / 1000.0 / (t1 - t0)


def _ceilings(torch: Any) -> dict[str, float]:
    n = 1 << 31  # 2 GiB per buffer of bf16
    src = torch.empty(n // 2, device="cuda", dtype=torch.bfloat16).normal_()
    dst = torch.empty_like(src)
    copy = statistics.median(
        _time_blocks(torch, lambda: dst.copy_(src), blocks=7, per_block=10))
    m = 8192
    x = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(m, m, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        x @ y
    mm = statistics.median(_time_blocks(torch, lambda: x @ y, blocks=7, per_block=10))
    return {"copy_bytes_per_s": 2 * n / copy, "bf16_matmul_flops_per_s": 2 * m**3 / mm}


def _graph(torch: Any, fn: Any) -> tuple[Any, Any]:
    """Capture ``fn`` as a CUDA graph after warm-up on a side stream; returns (graph, output)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


def measure(out_path: Path, quick: bool) -> dict[str, Any]:
    torch = _torch()
    attention = __import__("torch.nn.attention", fromlist=["SDPBackend", "sdpa_kernel"])
    SDPBackend, sdpa_kernel = attention.SDPBackend, attention.sdpa_kernel

    assert torch.cuda.is_available(), "no CUDA device"
    props = torch.cuda.get_device_properties(0)
    energy = Energy()
    torch.cuda.synchronize()
    idle_w = None
    if energy.nvml is not None:
        e0 = energy.read_mj()
        time.sleep(1.0)
        e1 = energy.read_mj()
        assert e0 is not None and e1 is not None
        idle_w = (e1 - e0) / 1000.0
    result: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "device": props.name,
        "device_memory_bytes": props.total_memory,
        "multiprocessors": props.multi_processor_count,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "shape": SHAPE,
        "method": "CUDA graph replay of one decode step; SDPA flash backend; CUDA events",
        "idle_watts": idle_w,
    }
    print(f"device {props.name}, torch {torch.__version__}, idle {idle_w} W", flush=True)
    result["ceilings"] = _ceilings(torch)
    print(f"ceilings {result['ceilings']}", flush=True)

    model = Decoder(torch)
    result["params"] = model.param_count
    read_bytes = 2 * (model.param_count - SHAPE["vocab"] * SHAPE["hidden"])  # all but embed
    batches = BATCHES[:2] if quick else BATCHES
    contexts = CONTEXTS[:2] if quick else CONTEXTS
    blocks, per_block = (3, 5) if quick else (7, 20)
    points: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    for context in contexts:
        for batch in batches:
            kv_bytes = (2 * SHAPE["layers"] * batch * (context + 1) * SHAPE["kv_heads"]
                        * SHAPE["head_dim"] * 2)
            free, _ = torch.cuda.mem_get_info()
            if kv_bytes + (2 << 30) > free:
                skipped.append({"batch": batch, "context": context, "kv_bytes": kv_bytes,
                                "free_bytes": free, "why": "KV cache does not fit"})
                print(f"skip batch {batch} context {context}: KV {kv_bytes / 1e9:.1f} GB "
                      f"> free {free / 1e9:.1f} GB", flush=True)
                continue
            try:
                caches = model.new_cache(batch, context)
                ids = torch.randint(0, SHAPE["vocab"], (batch,), device="cuda")
                cos, sin = model.rope(torch.full((batch,), context, device="cuda"))
                cos, sin = cos[:, None, :], sin[:, None, :]
                backend = "flash"

                def step(caches: Any = caches, ids: Any = ids, cos: Any = cos, sin: Any = sin,
                         context: int = context) -> Any:
                    return model.decode_step(ids, cos, sin, caches, context)

                def flash_step(step: Any = step) -> Any:
                    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
                        return step()

                try:
                    graph, _ = _graph(torch, flash_step)
                except RuntimeError as exc:  # flash not eligible: let PyTorch choose
                    print(f"flash backend refused ({exc}); default SDPA backend", flush=True)
                    backend = "default"
                    graph, _ = _graph(torch, step)
                for _ in range(5):
                    graph.replay()
                times = _time_blocks(torch, graph.replay, blocks=blocks, per_block=per_block)
                step_s = statistics.median(times)
                watts = energy.watts_over(torch, graph.replay, 0.5 if quick else 1.5, step_s)
                point = {
                    "phase": "decode", "batch": batch, "context": context, "step_s": step_s,
                    "step_s_blocks": times, "tokens_per_s": batch / step_s, "watts": watts,
                    "joules_per_token": None if watts is None else watts * step_s / batch,
                    "sdpa_backend": backend, "cuda_graph": True,
                    "bytes_per_step": read_bytes + kv_bytes,
                }
                point["achieved_bytes_per_s"] = point["bytes_per_step"] / step_s
                if (batch, context) in ((1, 512), (64, 2048)):
                    eager = _time_blocks(torch, flash_step, blocks=3, per_block=5)
                    point["eager_step_s"] = statistics.median(eager)
                points.append(point)
                tbps = point["achieved_bytes_per_s"] / 1e12
                print(f"decode batch {batch:4d} context {context:5d}: {step_s * 1e3:8.3f} ms "
                      f"{batch / step_s:9.1f} tok/s {tbps:5.2f} TB/s {watts or 0:6.0f} W "
                      f"({backend})", flush=True)
                del graph, caches
            except Exception as exc:  # record it and go on with the sweep
                skipped.append({"batch": batch, "context": context, "why": repr(exc)})
                print(f"FAILED batch {batch} context {context}: {exc!r}", flush=True)
            torch.cuda.empty_cache()
            result["decode"], result["skipped"] = points, skipped
            out_path.write_text(json.dumps(result, indent=2))
    prefills = []
    for batch, tokens in PREFILLS[:2] if quick else PREFILLS:
        ids = torch.randint(0, SHAPE["vocab"], (batch, tokens), device="cuda")
        with torch.no_grad():
            for _ in range(2):
                model.prefill(ids)
            times = _time_blocks(torch, lambda ids=ids: model.prefill(ids), blocks=5,
                                 per_block=2)
        time_s = statistics.median(times)
        prefills.append({"phase": "prefill", "batch": batch, "prompt": tokens,
                         "time_s": time_s, "tokens_per_s": batch * tokens / time_s})
        print(f"prefill batch {batch} x {tokens}: {time_s * 1e3:8.2f} ms", flush=True)
        torch.cuda.empty_cache()
    result["decode"] = points
    result["prefill"] = prefills
    result["skipped"] = skipped
    out_path.write_text(json.dumps(result, indent=2))
    return result


# ---------------------------------------------------------------------------------------------
# report (needs this project, not torch)
# ---------------------------------------------------------------------------------------------

def calibration_file(raw: dict[str, Any], decode_points: list[dict[str, Any]],
                     prefill_points: list[dict[str, Any]]) -> dict[str, Any]:
    """The raw measurements in the planner's calibration schema (docs/planner.md)."""
    return {
        "hardware": CATALOG_HARDWARE,
        "model": CATALOG_MODEL,
        "quant": "bf16",
        "source": f"benchmarks/bench_gpu_decode.py on {raw['device']}, {raw['date']}",
        "measurements": [
            {"phase": "decode", "batch": p["batch"], "context": p["context"],
             "step_s": p["step_s"], "tp": 1} for p in decode_points
        ] + [
            {"phase": "prefill", "batch": p["batch"], "prompt": p["prompt"],
             "time_s": p["time_s"], "tp": 1} for p in prefill_points
        ],
    }


def report(raw_path: Path, out_dir: Path) -> None:
    from inferplane.planner.calibration import Measurement, fit, parse_calibration_input
    from inferplane.planner.catalog import load_catalog

    raw = json.loads(raw_path.read_text())
    catalog = load_catalog()
    data = calibration_file(raw, raw["decode"], raw["prefill"])
    run = parse_calibration_input(data, catalog)

    def is_anchor(m: Measurement) -> bool:
        return m.phase == "decode" and (m.batch, m.context) == CALIBRATION_POINT

    anchor = [m for m in run.measurements if is_anchor(m)]
    one_point = fit(run, anchor)
    default = fit(run, [])
    all_points = fit(run)
    rows: list[dict[str, Any]] = []
    for m in run.measurements:
        rows.append({
            "phase": m.phase, "batch": m.batch, "context": m.context,
            "measured_s": m.seconds,
            "predicted_default_s": default.predict(m),
            "predicted_one_point_s": one_point.predict(m),
            "error_default": default.predict(m) / m.seconds - 1,
            "error_one_point": one_point.predict(m) / m.seconds - 1,
            "calibration_point": is_anchor(m),
        })
    held_out = [r for r in rows if not r["calibration_point"] and r["phase"] == "decode"]
    summary: dict[str, Any] = {
        "calibrated_on": {"phase": "decode", "batch": CALIBRATION_POINT[0],
                          "context": CALIBRATION_POINT[1]},
        "fitted": one_point.factors.to_dict(),
        "default_factors": default.factors.to_dict(),
        "all_point_fit": all_points.factors.to_dict(),
        "all_point_fit_rms_error": all_points.rms_rel_error,
        "held_out_decode_points": len(held_out),
        "max_abs_error_one_point": max(abs(r["error_one_point"]) for r in held_out),
        "mean_abs_error_one_point": statistics.mean(abs(r["error_one_point"]) for r in held_out),
        "max_abs_error_default": max(abs(r["error_default"]) for r in held_out),
    }
    doc = {"raw": raw, "calibration_input": data, "comparison": rows, "summary": summary}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu-decode.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out_dir / "gpu-decode.md").write_text(_markdown(raw, rows, summary))
    print((out_dir / "gpu-decode.md").read_text())


def _markdown(raw: dict[str, Any], rows: list[dict[str, Any]], summary: dict[str, Any]) -> str:
    c = raw["ceilings"]
    lines = [
        "# GPU decode benchmark: Llama-3-8B shape, random bf16 weights",
        "",
        f"{raw['date']} · {raw['device']} ({raw['multiprocessors']} SMs, "
        f"{raw['device_memory_bytes'] / 2**30:.1f} GiB) · torch {raw['torch']} "
        f"(CUDA {raw['cuda']}) · {raw['params'] / 1e9:.2f} B parameters",
        "",
        f"Method: {raw['method']}. Each point is the median of blocks of replays after "
        "warm-up; power is NVML's total-energy counter over a separate ~1.5 s loop "
        "(GPU only). Measured ceilings on this device: device-to-device copy "
        f"{c['copy_bytes_per_s'] / 1e12:.2f} TB/s (read + write), bf16 8192^3 matrix product "
        f"{c['bf16_matmul_flops_per_s'] / 1e12:.0f} TFLOP/s; idle power "
        f"{raw['idle_watts'] or 0:.0f} W.",
        "",
        "## Decode (one token per sequence per step)",
        "",
        "| batch | context | ms/step | tokens/s | achieved TB/s | W | J/token |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in raw["decode"]:
        lines.append(
            f"| {p['batch']} | {p['context']} | {p['step_s'] * 1e3:.3f} | "
            f"{p['tokens_per_s']:,.0f} | {p['achieved_bytes_per_s'] / 1e12:.2f} | "
            f"{p['watts'] or 0:.0f} | {p['joules_per_token'] or 0:.3f} |")
    for s in raw["skipped"]:
        lines.append(f"| {s['batch']} | {s['context']} | not run: {s['why']} | | | | |")
    eager = [p for p in raw["decode"] if "eager_step_s" in p]
    if eager:
        lines += ["", "Without the CUDA graph (eager launches, same step): " + "; ".join(
            f"batch {p['batch']} context {p['context']}: {p['eager_step_s'] * 1e3:.3f} ms "
            f"vs {p['step_s'] * 1e3:.3f} ms graphed" for p in eager) + "."]
    lines += ["", "## Prefill (eager, causal SDPA)", "",
              "| batch | prompt | ms | tokens/s |", "|---:|---:|---:|---:|"]
    for p in raw["prefill"]:
        lines.append(f"| {p['batch']} | {p['prompt']} | {p['time_s'] * 1e3:.2f} | "
                     f"{p['tokens_per_s']:,.0f} |")
    f = summary["fitted"]
    lines += [
        "", "## The planner against these measurements", "",
        f"Calibrated on ONE point (decode, batch {CALIBRATION_POINT[0]}, context "
        f"{CALIBRATION_POINT[1]}): bandwidth efficiency {f['bandwidth_efficiency']:.3f} "
        f"(default {summary['default_factors']['bandwidth_efficiency']:.3f}); compute "
        f"efficiency and step overhead stay at their defaults "
        f"({f['compute_efficiency']:.2f}, {f['step_overhead_s'] * 1e3:.2f} ms). Every other "
        "point is a prediction.",
        "",
        "| phase | batch | context/prompt | measured ms | predicted ms (1-point fit) | error |"
        " predicted ms (defaults) | error |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        mark = " (fit)" if r["calibration_point"] else ""
        lines.append(
            f"| {r['phase']}{mark} | {r['batch']} | {r['context']} | "
            f"{r['measured_s'] * 1e3:.3f} | {r['predicted_one_point_s'] * 1e3:.3f} | "
            f"{r['error_one_point']:+.1%} | {r['predicted_default_s'] * 1e3:.3f} | "
            f"{r['error_default']:+.1%} |")
    lines += [
        "",
        f"Held-out decode points: {summary['held_out_decode_points']}; largest error after the "
        f"one-point fit {summary['max_abs_error_one_point']:.1%}, mean "
        f"{summary['mean_abs_error_one_point']:.1%} (target: within 15%). With the catalog "
        f"defaults and no calibration the largest decode error is "
        f"{summary['max_abs_error_default']:.1%}. Fitting all points at once gives an RMS "
        f"relative error of {summary['all_point_fit_rms_error']:.1%}.",
        "",
        "Reproduce: `python benchmarks/bench_gpu_decode.py measure --out raw.json` on a CUDA "
        "machine with PyTorch, then `.venv/bin/python benchmarks/bench_gpu_decode.py report "
        "raw.json` here.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("measure", help="run the sweep on the GPU (needs torch)")
    m.add_argument("--out", type=Path, default=Path("gpu-decode-raw.json"))
    m.add_argument("--quick", action="store_true", help="a smoke run: fewer points")
    r = sub.add_parser("report", help="calibrate on one point and compare (needs inferplane)")
    r.add_argument("raw", type=Path)
    r.add_argument("--out-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.cmd == "measure":
        measure(args.out, args.quick)
    else:
        report(args.raw, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
