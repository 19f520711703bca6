"""Decode and prefill times: the roofline's regimes, parallelism, MoE and speculative decoding."""

from __future__ import annotations

import pytest

from inferplane.planner.catalog import Catalog, Link
from inferplane.planner.errors import PlannerError
from inferplane.planner.interconnect import all_to_all_s, allreduce_s, send_s
from inferplane.planner.moe import expected_distinct_experts
from inferplane.planner.roofline import decode_step, prefill
from inferplane.planner.serving import decode_cost
from inferplane.planner.speculative import Speculation, expected_tokens, parse_speculation

from .conftest import replica


def test_batch_one_decode_is_weight_bytes_over_bandwidth(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-8b", "h100")
    step = decode_step(r, 1, 0)
    eff = r.hardware.efficiency
    weights_read = r.weights.read_per_step(0)  # everything but the embedding table
    expected = weights_read / (3.35e12 * eff.bandwidth) + eff.step_overhead_s
    assert step.total_s == pytest.approx(expected, rel=1e-3)
    assert step.bound == "bandwidth"


def test_decode_step_grows_with_batch_and_context(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-8b", "h100")
    by_batch = [decode_step(r, b, 2048).total_s for b in (1, 8, 32, 64, 128)]
    by_context = [decode_step(r, 32, c).total_s for c in (512, 2048, 8192)]
    assert by_batch == sorted(by_batch) and by_context == sorted(by_context)
    # KV of 128 sequences x 2048 tokens x 128 KiB = 34 GB, read once per step
    extra = by_batch[-1] - by_batch[0]
    assert extra == pytest.approx(127 * 2048 * 131072 / (3.35e12 * 0.8), rel=0.05)


def test_prefill_is_compute_bound(catalog: Catalog) -> None:
    r = replica(catalog, "llama-3.1-8b", "h100")
    p = prefill(r, 4096)
    assert p.bound == "compute"
    flops = 2 * 8.03e9 * 4096
    assert p.total_s > flops / (989e12 * 0.6)
    assert p.total_s < 1.3 * flops / (989e12 * 0.6)


def test_fp8_doubles_the_compute_rate_where_the_chip_has_it(catalog: Catalog) -> None:
    bf16 = prefill(replica(catalog, "llama-3.1-8b", "h100"), 4096).compute_s
    fp8 = prefill(replica(catalog, "llama-3.1-8b", "h100", "fp8"), 4096).compute_s
    assert fp8 < 0.6 * bf16
    # TPU v5e publishes no fp8 rate: fp8 weights compute at bf16 (weight-only)
    v5e_bf16 = prefill(replica(catalog, "llama-3.1-8b", "tpu-v5e"), 4096).compute_s
    v5e_fp8 = prefill(replica(catalog, "llama-3.1-8b", "tpu-v5e", "fp8"), 4096).compute_s
    assert v5e_fp8 == pytest.approx(v5e_bf16, rel=0.05)


def test_tensor_parallel_cuts_the_step_and_pays_all_reduces(catalog: Catalog) -> None:
    tp2 = decode_step(replica(catalog, "llama-3.1-70b", "h100", tp=2), 16, 2048)
    tp8 = decode_step(replica(catalog, "llama-3.1-70b", "h100", tp=8), 16, 2048)
    assert tp8.total_s < tp2.total_s
    assert tp8.interconnect_s > tp2.interconnect_s > 0
    assert decode_step(replica(catalog, "llama-3.1-8b", "h100"), 16, 2048).interconnect_s == 0


def test_pipeline_stages_do_not_add_decode_bandwidth(catalog: Catalog) -> None:
    """Each stage reads its weights once per micro-batch: PP buys capacity, not speed.

    (The KV cache, unlike the weights, is read once per token: its share per chip halves.)
    """
    tp4 = replica(catalog, "llama-3.1-70b", "h100", tp=4)
    tp4pp2 = replica(catalog, "llama-3.1-70b", "h100", tp=4, pp=2)
    weights_only = [decode_step(r, 8, 0).bandwidth_s for r in (tp4, tp4pp2)]
    assert weights_only[1] == pytest.approx(weights_only[0], rel=0.01)
    kv_part = [decode_step(r, 64, 4096).bandwidth_s - decode_step(r, 64, 0).bandwidth_s
               for r in (tp4, tp4pp2)]
    assert kv_part[1] == pytest.approx(kv_part[0] / 2, rel=0.01)
    assert tp4pp2.max_sequences(4096) > 2 * tp4.max_sequences(4096)


def test_interconnect_formulas() -> None:
    ib = Link("infiniband", 50.0, 5e-6)
    assert allreduce_s(1e9, 1, ib) == 0
    # 8 chips: 6 latency hops + 2 x 7/8 x 1 GB at 50 GB/s
    assert allreduce_s(1e9, 8, ib) == pytest.approx(6 * 5e-6 + 1.75e9 / 50e9)
    assert all_to_all_s(1e9, 4, ib) == pytest.approx(2 * 5e-6 + 0.75e9 / 50e9)
    assert send_s(1e6, ib) == pytest.approx(5e-6 + 1e6 / 50e9)


def test_moe_weight_reads_grow_with_batch(catalog: Catalog) -> None:
    assert expected_distinct_experts(256, 8, 1) == pytest.approx(8)
    counts = [expected_distinct_experts(256, 8, t) for t in (1, 8, 64, 512, 4096)]
    assert counts == sorted(counts) and counts[-1] == pytest.approx(256, rel=1e-3)
    r = replica(catalog, "qwen3-30b-a3b", "h100")
    small, large = decode_step(r, 1, 1024), decode_step(r, 64, 1024)
    # batch 1 reads ~3 B active parameters; batch 64 touches nearly all 128 experts per layer
    assert small.bytes_per_chip < 8e9 < 50e9 < large.bytes_per_chip


def test_moe_tensor_parallel_pays_all_to_all(catalog: Catalog) -> None:
    moe = decode_step(replica(catalog, "mixtral-8x7b", "h100", tp=4), 32, 1024)
    assert moe.interconnect_s > 0


def test_mla_decode_reads_a_small_cache(catalog: Catalog) -> None:
    r = replica(catalog, "deepseek-v3", "h200", "fp8", tp=8)
    short, long = decode_step(r, 32, 1024), decode_step(r, 32, 32768)
    kv_growth = long.bytes_per_chip - short.bytes_per_chip
    assert kv_growth == pytest.approx(32 * 31744 * 61 * 576 * 2, rel=0.01)  # MLA: replicated


def test_speculative_decoding(catalog: Catalog) -> None:
    assert expected_tokens(Speculation(4, 0.0)) == pytest.approx(1.0)
    assert expected_tokens(Speculation(4, 0.8)) == pytest.approx((1 - 0.8**5) / 0.2)
    r = replica(catalog, "llama-3.1-70b", "h100", tp=4)
    spec = Speculation(draft_tokens=4, acceptance=0.8)
    plain1, spec1 = (decode_cost(r, 1, 2048, s).seconds for s in (None, spec))
    assert spec1 < 0.5 * plain1  # bandwidth-bound: verifying 5 tokens costs about one step
    bad = Speculation(draft_tokens=4, acceptance=0.1, draft_cost=0.3)
    assert decode_cost(r, 256, 2048, bad).seconds > decode_cost(r, 256, 2048, None).seconds
    assert parse_speculation("4:0.7").acceptance == 0.7
    for text in ("4", "x:0.5", "0:0.5", "4:1.5"):
        with pytest.raises(PlannerError):
            parse_speculation(text)
