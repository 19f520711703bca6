"""The catalogs: required entries, sources and dates on every figure, published parameter counts."""

from __future__ import annotations

import pytest

from inferplane.planner.catalog import Catalog
from inferplane.planner.errors import PlannerError
from inferplane.planner.weights import param_counts

REQUIRED_HARDWARE = (
    "h100", "h200", "b200", "b300", "gb200", "rubin", "mi300x", "mi325x", "mi355x", "tpu-v5e",
    "tpu-v6e", "tpu-v7", "trainium2", "trainium3", "inferentia2", "gaudi3", "cerebras-wse3",
    "groq-lpu", "epyc-2c", "epyc-9654",
)
REQUIRED_MODELS = (
    "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen3-8b", "qwen3-32b", "qwen3-30b-a3b",
    "qwen3-235b-a22b", "deepseek-v3", "mixtral-8x7b", "gemma-3-27b", "gpt-oss-20b",
    "gpt-oss-120b", "mistral-small-24b",
)


def test_required_hardware_is_there_with_sources(catalog: Catalog) -> None:
    assert set(REQUIRED_HARDWARE) <= set(catalog.hardware)
    for hw in catalog.hardware.values():
        assert hw.source, hw.id
        assert hw.memory_gb > 0 and hw.bandwidth_gb_s > 0 and hw.peak_tflops, hw.id
        for price in hw.prices:
            assert price.usd_per_hour > 0 and price.date and price.source, hw.id


def test_rubin_is_marked_preliminary(catalog: Catalog) -> None:
    assert catalog.hardware["rubin"].status == "preliminary"
    assert "bf16" not in catalog.hardware["rubin"].peak_tflops  # not published: not guessed


def test_h100_figures_match_the_datasheet(catalog: Catalog) -> None:
    h100 = catalog.find_hardware("H100")
    assert (h100.memory_gb, h100.bandwidth_gb_s, h100.tdp_w) == (80, 3350, 700)
    assert h100.peak_tflops["bf16"] == 989 and h100.peak_tflops["fp8"] == 1979
    assert h100.scale_up.kind == "nvlink" and h100.scale_up.gb_s == 450
    assert h100.scale_up.domain == 8


def test_median_price_and_provider_price(catalog: Catalog) -> None:
    h100 = catalog.hardware["h100"]
    median = h100.price()
    assert median is not None and median.usd_per_hour == 2.85
    lambda_price = h100.price("lambda")
    assert lambda_price is not None and lambda_price.usd_per_hour == 2.99
    assert h100.price("no-such-cloud") is None
    assert catalog.hardware["b300"].price() is None


@pytest.mark.parametrize("model_id", REQUIRED_MODELS)
def test_parameter_counts_match_published_totals(catalog: Catalog, model_id: str) -> None:
    """The planner's own count from the shape is within 2% of the authors' total."""
    model = catalog.models[model_id]
    assert model.source.startswith("https://")
    assert model.params_b is not None
    counts = param_counts(model)
    assert counts.total / 1e9 == pytest.approx(model.params_b, rel=0.02)
    if model.active_params_b is not None:
        # Authors differ on counting the input embedding in "active"; accept either convention.
        with_embedding = counts.active / 1e9
        without = (counts.active - counts.embedding) / 1e9
        assert min(abs(with_embedding - model.active_params_b),
                   abs(without - model.active_params_b)) / model.active_params_b < 0.03


def test_attention_variants_are_recorded(catalog: Catalog) -> None:
    ds = catalog.models["deepseek-v3"]
    assert ds.mla is not None and ds.mla.kv_lora_rank == 512 and ds.mla.qk_rope_head_dim == 64
    gemma = catalog.models["gemma-3-27b"]
    assert gemma.sliding_window is not None and gemma.sliding_window.size == 1024
    assert gemma.sliding_window.global_layers(gemma.layers) == 10
    oss = catalog.models["gpt-oss-120b"]
    assert oss.sliding_window is not None and oss.sliding_window.global_layers(36) == 18
    assert oss.moe is not None and (oss.moe.experts, oss.moe.active) == (128, 4)


def test_unknown_names_raise_a_planner_error_with_suggestions(catalog: Catalog) -> None:
    with pytest.raises(PlannerError, match="did you mean h100"):
        catalog.find_hardware("h10")
    with pytest.raises(PlannerError, match="unknown model 'gpt-5'"):
        catalog.find_model("gpt-5")
    assert catalog.find_hardware("Trillium").id == "tpu-v6e"
