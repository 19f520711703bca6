"""KV-cache bytes and attention FLOPs, for GQA/MHA, MLA and sliding-window layers.

GQA stores K and V for each KV head; MLA stores one latent of ``kv_lora_rank + qk_rope_head_dim``
per token and layer (shared by all heads). A sliding-window layer keeps at most ``size`` tokens.

>>> from inferplane.planner.catalog import load_catalog
>>> from inferplane.planner.precision import PRECISIONS
>>> m = load_catalog().find_model("llama-3.1-8b")
>>> kv_bytes_per_token(m, PRECISIONS["bf16"]) / 1024
128.0
"""

from __future__ import annotations

from inferplane.planner.catalog import Model
from inferplane.planner.precision import Precision


def kv_bytes_per_token_layer(m: Model, kv: Precision) -> float:
    """KV bytes one token adds to one layer."""
    if m.mla is not None:
        return (m.mla.kv_lora_rank + m.mla.qk_rope_head_dim) * kv.bytes_per_param
    return 2 * m.kv_heads * m.head_dim * kv.bytes_per_param


def _layers_split(m: Model) -> tuple[int, int, int]:
    """(full-attention layers, sliding-window layers, the window in tokens)."""
    sw = m.sliding_window
    if sw is None:
        return m.layers, 0, 0
    full = sw.global_layers(m.layers)
    return full, m.layers - full, sw.size


def attended_tokens(m: Model, context: float) -> float:
    """Sum over layers of the tokens one query at position ``context`` attends to."""
    full, local, window = _layers_split(m)
    return full * context + local * min(context, window)


def kv_bytes_per_token(m: Model, kv: Precision) -> float:
    """KV bytes per token over all layers, as if every layer kept every token."""
    return m.layers * kv_bytes_per_token_layer(m, kv)


def kv_bytes(m: Model, kv: Precision, context: float) -> float:
    """KV bytes one sequence of ``context`` tokens holds (sliding layers capped at the window)."""
    return attended_tokens(m, context) * kv_bytes_per_token_layer(m, kv)


def kv_shards(m: Model, tp: int) -> int:
    """Into how many parts tensor parallelism splits the KV cache.

    GQA splits by KV head (heads are replicated once ``tp`` exceeds them); an MLA latent is
    shared by all heads, so engines replicate it on every tensor-parallel rank.
    """
    if m.mla is not None:
        return 1
    return max(1, min(tp, m.kv_heads))


def decode_attention_flops(m: Model, context: float) -> float:
    """FLOPs of one query token's attention (scores and weighted sum) at ``context``."""
    tokens = attended_tokens(m, context)
    if m.mla is not None:  # absorbed form: scores over the latent and rope part, output over latent
        a = m.mla
        return 2 * m.heads * (2 * a.kv_lora_rank + a.qk_rope_head_dim) * tokens
    return 4 * m.heads * m.head_dim * tokens


def prefill_attention_flops(m: Model, prompt: float) -> float:
    """FLOPs of causal attention over a whole prompt of ``prompt`` tokens."""
    full, local, window = _layers_split(m)
    pairs_full = prompt * (prompt + 1) / 2
    w = min(prompt, window)
    pairs_local = w * (w + 1) / 2 + (prompt - w) * w
    pairs = full * pairs_full + local * pairs_local
    if m.mla is not None:
        a = m.mla
        per_pair = 2 * m.heads * (a.qk_nope_head_dim + a.qk_rope_head_dim + a.v_head_dim)
    else:
        per_pair = 4 * m.heads * m.head_dim
    return per_pair * pairs
