"""Weights and KV-cache memory against the models' known sizes; what fits where."""

from __future__ import annotations

import pytest

from inferplane.planner.attention import kv_bytes, kv_bytes_per_token, kv_shards
from inferplane.planner.catalog import Catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.layout import layouts, min_chips_for_weights
from inferplane.planner.precision import PRECISIONS, precision
from inferplane.planner.weights import weight_bytes

from .conftest import replica

BF16, FP8, INT4, FP4 = (PRECISIONS[p] for p in ("bf16", "fp8", "int4", "fp4"))


def test_llama_weights_in_bf16(catalog: Catalog) -> None:
    assert weight_bytes(catalog.models["llama-3.1-70b"], BF16).total / 1e9 == \
        pytest.approx(141, rel=0.005)
    assert weight_bytes(catalog.models["llama-3.1-8b"], BF16).total / 1e9 == \
        pytest.approx(16.06, rel=0.005)


def test_quantized_weights_shrink_but_embeddings_stay_16_bit(catalog: Catalog) -> None:
    m = catalog.models["llama-3.1-70b"]
    bf16, fp8, int4 = (weight_bytes(m, p).total / 1e9 for p in (BF16, FP8, INT4))
    assert fp8 == pytest.approx(72.7, rel=0.01)  # 68.4 GB of linear weights + 4.2 GB embeddings
    assert bf16 / 2 < fp8 < bf16 / 2 + 4.3
    assert int4 == pytest.approx(39.5, rel=0.01)  # 4 bits + one 16-bit scale per 128 weights


def test_native_fp4_of_gpt_oss_keeps_attention_in_bf16(catalog: Catalog) -> None:
    m = catalog.models["gpt-oss-120b"]
    native = weight_bytes(m, FP4).total / 1e9
    assert native == pytest.approx(65.3, rel=0.02)  # the published checkpoint: ~60.8 GiB
    assert weight_bytes(m, BF16).total / 1e9 == pytest.approx(233.6, rel=0.01)


def test_kv_cache_per_token(catalog: Catalog) -> None:
    assert kv_bytes_per_token(catalog.models["llama-3.1-8b"], BF16) == 128 * 1024
    assert kv_bytes_per_token(catalog.models["llama-3.1-70b"], BF16) == 320 * 1024
    assert kv_bytes_per_token(catalog.models["llama-3.1-8b"], FP8) == 64 * 1024
    # MLA: one latent of 512 + 64 per token and layer
    assert kv_bytes_per_token(catalog.models["deepseek-v3"], BF16) == 61 * 576 * 2


def test_sliding_window_caps_kv_growth(catalog: Catalog) -> None:
    gemma = catalog.models["gemma-3-27b"]
    per_layer = 2 * 16 * 128 * 2
    assert kv_bytes(gemma, BF16, 512) == 62 * 512 * per_layer  # all layers hold all tokens
    long = kv_bytes(gemma, BF16, 32768)
    assert long == (10 * 32768 + 52 * 1024) * per_layer
    assert long < 0.2 * kv_bytes_per_token(gemma, BF16) * 32768


def test_kv_shards_follow_kv_heads_and_mla_replicates(catalog: Catalog) -> None:
    assert kv_shards(catalog.models["llama-3.1-70b"], 16) == 8
    assert kv_shards(catalog.models["llama-3.1-70b"], 4) == 4
    assert kv_shards(catalog.models["deepseek-v3"], 8) == 1


def test_70b_bf16_cannot_fit_one_h100(catalog: Catalog) -> None:
    assert not replica(catalog, "llama-3.1-70b", "h100").fits_weights
    assert min_chips_for_weights(catalog.models["llama-3.1-70b"], catalog.hardware["h100"],
                                 BF16) == 2
    assert replica(catalog, "llama-3.1-70b", "h100", tp=2).fits_weights
    # fp8 with 16-bit embeddings is 72.7 GB: over the 72 GB an engine may use on one H100
    assert not replica(catalog, "llama-3.1-70b", "h100", "fp8").fits_weights
    assert replica(catalog, "llama-3.1-70b", "h100", "int4").fits_weights
    assert replica(catalog, "llama-3.1-70b", "h200", "fp8").fits_weights
    assert replica(catalog, "llama-3.1-70b", "mi300x").fits_weights
    assert replica(catalog, "llama-3.1-8b", "h100").max_sequences(2300) == \
        int((72e9 - 16.06e9) // (2300 * 131072))


def test_layouts_start_at_the_memory_minimum(catalog: Catalog) -> None:
    candidates = list(layouts(catalog.models["llama-3.1-70b"], catalog.hardware["h100"],
                              BF16, BF16))
    assert min(r.chips for r in candidates) == 2
    assert all(r.tp <= 8 for r in candidates)  # TP stays inside the NVLink domain
    assert {(r.tp, r.pp) for r in candidates if r.chips == 16} == {(1, 16), (2, 8), (4, 4), (8, 2)}


def test_unknown_precision(catalog: Catalog) -> None:
    with pytest.raises(PlannerError, match="unknown precision 'fp6'"):
        precision("fp6")
