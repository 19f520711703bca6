"""The embedded engine's numpy samplers draw from softmax(logits / temperature), exactly."""

from __future__ import annotations

import numpy as np
import pytest

from inferplane.engines.sampling import BLOCK, Greedy, Temperature, numpy_sampler


def test_temperature_sampling_follows_the_softmax_across_blocks() -> None:
    """Likely tokens spread over several blocks and at the very end: the frequencies of 40,000
    draws match the softmax within sampling error (4 standard deviations)."""
    rng = np.random.default_rng(0)
    logits = rng.normal(-8.0, 1.0, size=3 * BLOCK + 17).astype(np.float32)
    hot = [0, 5, BLOCK - 1, BLOCK, 2 * BLOCK + 3, logits.size - 1]
    logits[hot] = np.array([2.0, 1.0, 0.5, 1.5, 0.0, 1.0], dtype=np.float32)
    for temperature in (1.0, 0.7):
        expected = np.exp(logits.astype(np.float64) / temperature)
        expected /= expected.sum()
        sampler = Temperature(temperature, seed=1)
        draws = 40_000
        counts = np.bincount([sampler(logits) for _ in range(draws)], minlength=logits.size)
        for token in hot:
            p = expected[token]
            sd = (p * (1 - p) / draws) ** 0.5
            assert abs(counts[token] / draws - p) < 4 * sd + 1e-4, (temperature, token)
        assert counts.sum() == draws


def test_a_seed_reproduces_the_draws() -> None:
    logits = np.linspace(0, 1, 5000, dtype=np.float32)
    a, b = Temperature(1.0, seed=42), Temperature(1.0, seed=42)
    assert [a(logits) for _ in range(50)] == [b(logits) for _ in range(50)]


def test_which_requests_take_the_numpy_path() -> None:
    assert isinstance(numpy_sampler(0.0, 0.5, None, None), Greedy)
    assert isinstance(numpy_sampler(0.8, 1.0, 3, None), Temperature)
    assert numpy_sampler(0.8, 0.9, 3, None) is None  # top_p: llama.cpp's chain
    assert numpy_sampler(0.0, 1.0, None, "root ::= \"x\"") is None  # a grammar: the chain
    with pytest.raises(ValueError):
        Temperature(0.0, None)
