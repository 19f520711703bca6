"""A BERT encoder's forward pass in numpy: token ids in, one hidden vector per token out.

Enough of BERT for sentence embeddings (absolute positions, one segment, GELU, post-layer
norm), read from Hugging Face weight names. Inference only, float32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float32]

# Abramowitz & Stegun 7.1.26: erf to within 1.5e-7, which keeps GELU exact at float32.
_P = 0.3275911
_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def erf(x: Array) -> Array:
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _P * a)
    poly = t * (_A[0] + t * (_A[1] + t * (_A[2] + t * (_A[3] + t * _A[4]))))
    out: Array = (sign * (1.0 - poly * np.exp(-a * a))).astype(np.float32)
    return out


def gelu(x: Array) -> Array:
    return (0.5 * x * (1.0 + erf(x / np.float32(np.sqrt(2.0))))).astype(np.float32)


def layer_norm(x: Array, weight: Array, bias: Array, eps: float) -> Array:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: Array = ((x - mean) / np.sqrt(var + eps) * weight + bias).astype(np.float32)
    return out


@dataclass(frozen=True)
class Linear:
    weight_t: Array  # (in, out): transposed once at load
    bias: Array

    def __call__(self, x: Array) -> Array:
        return x @ self.weight_t + self.bias


@dataclass(frozen=True)
class Layer:
    qkv: Linear  # query, key and value in one product: (hidden, 3 * hidden)
    attention_out: Linear
    attention_norm: tuple[Array, Array]
    intermediate: Linear
    output: Linear
    output_norm: tuple[Array, Array]


@dataclass(frozen=True)
class Bert:
    words: Array
    positions: Array
    token_type: Array
    embedding_norm: tuple[Array, Array]
    layers: tuple[Layer, ...]
    heads: int
    eps: float

    @classmethod
    def from_weights(cls, weights: dict[str, npt.NDArray[np.generic]], *, heads: int,
                     eps: float = 1e-12) -> Bert:
        def tensor(name: str) -> Array:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def linear(prefix: str) -> Linear:
            return Linear(np.ascontiguousarray(tensor(f"{prefix}.weight").T),
                          tensor(f"{prefix}.bias"))

        def fused(*parts: Linear) -> Linear:
            return Linear(np.ascontiguousarray(np.concatenate([p.weight_t for p in parts], axis=1)),
                          np.concatenate([p.bias for p in parts]))

        def norm(prefix: str) -> tuple[Array, Array]:
            return tensor(f"{prefix}.weight"), tensor(f"{prefix}.bias")

        count = 1 + max(int(name.split(".")[2]) for name in weights
                        if name.startswith("encoder.layer."))
        layers = tuple(
            Layer(
                qkv=fused(*(linear(f"encoder.layer.{i}.attention.self.{part}")
                            for part in ("query", "key", "value"))),
                attention_out=linear(f"encoder.layer.{i}.attention.output.dense"),
                attention_norm=norm(f"encoder.layer.{i}.attention.output.LayerNorm"),
                intermediate=linear(f"encoder.layer.{i}.intermediate.dense"),
                output=linear(f"encoder.layer.{i}.output.dense"),
                output_norm=norm(f"encoder.layer.{i}.output.LayerNorm"),
            )
            for i in range(count)
        )
        return cls(
            words=tensor("embeddings.word_embeddings.weight"),
            positions=tensor("embeddings.position_embeddings.weight"),
            token_type=tensor("embeddings.token_type_embeddings.weight"),
            embedding_norm=norm("embeddings.LayerNorm"),
            layers=layers,
            heads=heads,
            eps=eps,
        )

    def __call__(self, ids: npt.NDArray[np.int64], mask: npt.NDArray[np.int64]) -> Array:
        """Hidden states ``(batch, length, hidden)`` for padded ``ids`` and their ``mask``."""
        batch, length = ids.shape
        x = self.words[ids] + self.positions[:length] + self.token_type[0]
        x = layer_norm(x, *self.embedding_norm, self.eps)
        hidden = x.shape[-1]
        head_dim = hidden // self.heads
        scale = np.float32(1.0 / np.sqrt(head_dim))
        # padding keys get a large negative score, so they take no attention
        bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e9)).astype(np.float32)

        for layer in self.layers:
            # (b, l, 3*h*d) -> 3 x (b, h, l, d)
            q, k, v = layer.qkv(x).reshape(batch, length, 3, self.heads, head_dim).transpose(
                2, 0, 3, 1, 4)
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores -= scores.max(axis=-1, keepdims=True)
            probs = np.exp(scores)
            probs /= probs.sum(axis=-1, keepdims=True)
            context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
            x = layer_norm(x + layer.attention_out(context), *layer.attention_norm, self.eps)
            x = layer_norm(x + layer.output(gelu(layer.intermediate(x))), *layer.output_norm,
                           self.eps)
        return x
