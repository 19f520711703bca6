"""The in-process text encoder: its numeric pieces, its file reader and its sentence vectors."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from inferplane.embedding import shipped_encoder
from inferplane.embedding.bert import erf, gelu
from inferplane.embedding.safetensors_file import read_tensors
from inferplane.errors import ConfigError

REFERENCE = Path(__file__).parent.parent / "data" / "minilm_reference.json"


def test_erf_matches_the_math_library() -> None:
    xs = np.linspace(-6, 6, 2001, dtype=np.float32)
    exact = np.array([math.erf(float(x)) for x in xs])
    assert np.max(np.abs(erf(xs) - exact)) < 5e-7  # 1.5e-7, plus float32 rounding


def test_gelu_is_the_exact_form() -> None:
    xs = np.array([-3.0, -1.0, 0.0, 0.5, 2.0], dtype=np.float32)
    exact = [0.5 * x * (1 + math.erf(x / math.sqrt(2))) for x in xs.tolist()]
    assert np.allclose(gelu(xs), exact, atol=1e-6)


def test_safetensors_reader(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([7, -1], dtype=np.int64)
    header = {"__metadata__": {"format": "pt"},
              "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
              "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + a.tobytes() + b.tobytes())
    tensors = read_tensors(path)
    assert set(tensors) == {"a", "b"}
    assert np.array_equal(tensors["a"], a) and np.array_equal(tensors["b"], b)


def test_safetensors_reader_refuses_other_files(tmp_path: Path) -> None:
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", 5) + b"nojso")
    with pytest.raises(ConfigError, match="not a safetensors file"):
        read_tensors(path)


def test_sentence_vectors_are_unit_float32_rows() -> None:
    vectors = shipped_encoder().encode(["one", "two words here", ""])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert shipped_encoder().encode([]).shape == (0, 384)


def test_padding_does_not_change_a_vector() -> None:
    """A short text encoded beside a long one (so padded) gets the vector it gets alone."""
    encoder = shipped_encoder()
    short = "reset my password"
    alone = encoder.encode([short])[0]
    padded = encoder.encode([short, "a much longer sentence " * 12])[0]
    assert np.allclose(alone, padded, atol=1e-5)


def test_paraphrases_are_nearer_than_unrelated_texts() -> None:
    v = shipped_encoder().encode([
        "How do I reset my password?",
        "What is the way to change my password?",
        "The train to Lyon leaves at noon.",
    ])
    assert v[0] @ v[1] > 0.7 > 0.2 > v[0] @ v[2]


def test_vectors_match_the_reference_implementation() -> None:
    """Vectors computed by the model's reference implementation (PyTorch, transformers), with
    the same mean pooling and normalisation: tests/data/minilm_reference.json says how."""
    reference = json.loads(REFERENCE.read_text())
    ours = shipped_encoder().encode(reference["texts"])
    theirs = np.array(reference["vectors"], dtype=np.float32)
    assert np.max(np.abs(ours - theirs)) < 1e-5  # 3.5e-7 seen
