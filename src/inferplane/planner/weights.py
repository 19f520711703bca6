"""Parameter counts and weight bytes of a model, from its shape alone.

Counts follow the published configs: gated MLPs (three matrices), no biases (they are a rounding
error), RMSNorm weights, one router matrix per MoE layer. Embeddings and the output head are kept
at 16 bits under every quantization (what common FP8/INT4 recipes do); with
``native_quant_scope: experts`` only the routed experts take the model's native precision.

>>> from inferplane.planner.catalog import load_catalog
>>> m = load_catalog().find_model("llama-3.1-70b")
>>> round(param_counts(m).total / 1e9, 1)
70.6
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from inferplane.planner.catalog import Model
from inferplane.planner.precision import PRECISIONS, Precision

BF16 = PRECISIONS["bf16"]


@dataclass(frozen=True)
class ParamCounts:
    """Parameters by role, summed over all layers (``expert`` is one routed expert in one layer)."""

    embedding: int
    lm_head: int  # the output projection; shares storage with ``embedding`` when tied
    attention: int
    dense_mlp: int
    shared_experts: int
    routed_experts: int
    router: int
    norms: int
    expert: int
    moe_layers: int
    experts_per_layer: int
    active_experts: int
    tied: bool

    @property
    def body(self) -> int:
        """Everything every token passes through except the embedding and routed experts."""
        return self.attention + self.dense_mlp + self.shared_experts + self.router + self.norms

    @property
    def total(self) -> int:
        head = 0 if self.tied else self.lm_head
        return self.embedding + head + self.body + self.routed_experts

    @property
    def active(self) -> int:
        """Parameters one token uses, embedding and head stored once (most authors' count)."""
        return self.total - self.routed_experts + self.moe_layers * self.active_experts \
            * self.expert

    @property
    def active_linear(self) -> int:
        """Parameters one token multiplies (head, body, its experts): 2x this is its FLOPs."""
        routed = self.moe_layers * self.active_experts * self.expert
        return self.lm_head + self.body + routed


def _attention_params(m: Model) -> int:
    if m.mla is not None:
        a = m.mla
        qk = a.qk_nope_head_dim + a.qk_rope_head_dim
        q = (m.hidden * a.q_lora_rank + a.q_lora_rank * m.heads * qk
             if a.q_lora_rank else m.hidden * m.heads * qk)
        kv = m.hidden * (a.kv_lora_rank + a.qk_rope_head_dim) \
            + a.kv_lora_rank * m.heads * (a.qk_nope_head_dim + a.v_head_dim)
        norms = a.q_lora_rank + a.kv_lora_rank
        return q + kv + m.heads * a.v_head_dim * m.hidden + norms
    q_dim, kv_dim = m.heads * m.head_dim, m.kv_heads * m.head_dim
    return m.hidden * q_dim + 2 * m.hidden * kv_dim + q_dim * m.hidden


@functools.cache
def param_counts(m: Model) -> ParamCounts:
    """How many parameters ``m`` has, by role."""
    moe = m.moe
    moe_layers = 0 if moe is None else m.layers - moe.dense_layers
    dense_layers = m.layers - moe_layers
    expert = 0 if moe is None else 3 * m.hidden * moe.expert_intermediate
    return ParamCounts(
        embedding=m.vocab * m.hidden,
        lm_head=m.vocab * m.hidden,
        attention=m.layers * _attention_params(m),
        dense_mlp=dense_layers * 3 * m.hidden * m.intermediate,
        shared_experts=0 if moe is None else moe_layers * moe.shared_experts * expert,
        routed_experts=0 if moe is None else moe_layers * moe.experts * expert,
        router=0 if moe is None else moe_layers * m.hidden * moe.experts,
        norms=(2 * m.layers + 1) * m.hidden,
        expert=expert,
        moe_layers=moe_layers,
        experts_per_layer=0 if moe is None else moe.experts,
        active_experts=0 if moe is None else moe.active,
        tied=m.tied_embeddings,
    )


@dataclass(frozen=True)
class WeightBytes:
    """Bytes of a model's weights at one quantization, split by how often a step reads them."""

    embedding: float  # stored; a step reads only the rows of its tokens
    lm_head: float  # read in full by every step (the same bytes as embedding when tied)
    body: float  # read in full by every step
    expert: float  # one routed expert in one layer
    moe_layers: int
    experts_per_layer: int
    tied: bool

    @property
    def total(self) -> float:
        head = 0.0 if self.tied else self.lm_head
        return self.embedding + head + self.body + self.expert * self.moe_layers \
            * self.experts_per_layer

    def read_per_step(self, distinct_experts: float) -> float:
        """Bytes one forward pass reads when ``distinct_experts`` per MoE layer are touched."""
        return self.lm_head + self.body + self.expert * self.moe_layers * distinct_experts


@functools.cache
def weight_bytes(m: Model, quant: Precision) -> WeightBytes:
    """Weight bytes of ``m`` with its linear layers stored at ``quant``."""
    c = param_counts(m)
    body_quant = BF16 if (m.native_quant_scope == "experts" and quant.name == m.native_quant) \
        else quant
    small = (c.router + c.norms) * BF16.bytes_per_param
    return WeightBytes(
        embedding=c.embedding * BF16.bytes_per_param,
        lm_head=c.lm_head * BF16.bytes_per_param,
        body=(c.attention + c.dense_mlp + c.shared_experts) * body_quant.bytes_per_param + small,
        expert=c.expert * quant.bytes_per_param,
        moe_layers=c.moe_layers,
        experts_per_layer=c.experts_per_layer,
        tied=c.tied,
    )
