"""Time of one decode step and of one prefill on a replica: a roofline per kind of work.

For each pipeline stage and micro-batch:

* linear layers: ``max(weight bytes / (BW x e_bw), 2 x active params x tokens / (peak x e_c))``,
  MoE expert bytes counted for the distinct experts the tokens touch (``moe.py``);
* attention: ``max(KV bytes / (BW x e_bw), attention FLOPs / (bf16 peak x e_c))``;
* tensor parallel: two all-reduces of the activations per layer (attention and MLP), or one
  all-reduce plus an all-to-all dispatch and combine per MoE layer (experts spread over the
  tensor-parallel ranks, i.e. expert parallelism);
* pipeline: ``pp`` micro-batches of ``batch / pp`` sequences keep every stage busy, so a token
  step takes ``pp x stage time`` plus the stage sends, and each stage reads its weights once per
  micro-batch: pipelining buys memory capacity, not decode bandwidth;
* a fixed ``step_overhead_s`` per step (scheduling, sampling, launch gaps).

Each part's time is attributed to what bound it (bandwidth, compute, interconnect, overhead), so
the plan can say what limits a layout.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferplane.planner.attention import (
    decode_attention_flops,
    kv_bytes,
    kv_shards,
    prefill_attention_flops,
)
from inferplane.planner.interconnect import all_to_all_s, allreduce_s, send_s
from inferplane.planner.layout import Replica
from inferplane.planner.moe import expected_distinct_experts
from inferplane.planner.precision import PRECISIONS, compute_rate_key
from inferplane.planner.weights import param_counts

ACTIVATION_BYTES = 2  # activations travel in 16 bits


@dataclass(frozen=True)
class StepTime:
    """Seconds of one step, split by what bound each part, and the work per chip."""

    bandwidth_s: float
    compute_s: float
    interconnect_s: float
    overhead_s: float
    bytes_per_chip: float
    flops_per_chip: float
    peak_flops: float  # the rate the linear layers compute at on this chip
    occupancy_s: float  # how long each chip is held by this step (prefill: one stage's share)

    @property
    def total_s(self) -> float:
        return self.bandwidth_s + self.compute_s + self.interconnect_s + self.overhead_s

    @property
    def parts(self) -> dict[str, float]:
        """Seconds by what bound them: 'bandwidth', 'compute', 'interconnect', 'overhead'."""
        return {"bandwidth": self.bandwidth_s, "compute": self.compute_s,
                "interconnect": self.interconnect_s, "overhead": self.overhead_s}

    @property
    def bound(self) -> str:
        """The part with the largest share."""
        parts = self.parts
        return max(parts, key=lambda k: parts[k])

    def share(self, part: str) -> float:
        return self.parts[part] / self.total_s if self.total_s > 0 else 0.0

    @property
    def compute_busy(self) -> float | None:
        """The share of the step the compute units are busy at their peak rate (None: the
        chip publishes no rate), whether or not that time shows as the ``compute`` part."""
        if self.peak_flops <= 0 or self.total_s <= 0:
            return None
        return self.flops_per_chip / self.peak_flops / self.total_s

    def breakdown(self) -> str:
        """What bound the step's time, part by part, leaving out the parts that took none; and,
        when the compute hid under the memory reads (a part is charged to the slower of the
        two), how busy it was all the same.

        >>> StepTime(0.008, 0.0, 0.002, 0.0, 1e9, 1e12, 1e15, 0.0).breakdown()
        'time bound by bandwidth 80%, interconnect 20%; compute under the memory reads, busy 10%'
        """
        bound = ", ".join(f"{part} {self.share(part):.0%}" for part, seconds in self.parts.items()
                          if seconds > 0)
        busy = self.compute_busy
        if self.compute_s > 0 or busy is None:
            return f"time bound by {bound}"
        return f"time bound by {bound}; compute under the memory reads, busy {busy:.0%}"


class _Parts:
    """Accumulates roofline parts: each adds its time to the bucket of what bound it."""

    def __init__(self) -> None:
        self.bandwidth = self.compute = self.interconnect = 0.0

    def roof(self, memory_s: float, compute_s: float) -> None:
        if memory_s >= compute_s:
            self.bandwidth += memory_s
        else:
            self.compute += compute_s


def linear_peak_flops(replica: Replica) -> float:
    """The FLOP/s rate the replica's linear layers run at (0 if the chip publishes none)."""
    key = compute_rate_key(replica.quant, replica.hardware.peak_tflops)
    return replica.hardware.peak_flops(key) if key is not None else 0.0


def attention_peak_flops(replica: Replica) -> float:
    key = compute_rate_key(PRECISIONS["bf16"], replica.hardware.peak_tflops) \
        or compute_rate_key(replica.quant, replica.hardware.peak_tflops)
    return replica.hardware.peak_flops(key) if key is not None else 0.0


def _stage(replica: Replica, tokens: float, kv_read: float, attn_flops: float) -> tuple[
        _Parts, float, float]:
    """One pipeline stage processing ``tokens`` tokens: parts, bytes and FLOPs per chip."""
    m, hw, eff = replica.model, replica.hardware, replica.hardware.efficiency
    tp, pp = replica.tp, replica.pp
    counts, w = param_counts(m), replica.weights
    distinct = 0.0 if m.moe is None else expected_distinct_experts(
        m.moe.experts, m.moe.active, tokens)
    w_bytes = w.read_per_step(distinct) / (tp * pp)
    lin_flops = 2 * counts.active_linear * tokens / (tp * pp)
    kv_chip = kv_read / (pp * kv_shards(m, tp))
    attn_chip = attn_flops / (tp * pp)
    bw = hw.bandwidth_bytes_s * eff.bandwidth
    lin_peak, attn_peak = linear_peak_flops(replica), attention_peak_flops(replica)
    parts = _Parts()
    parts.roof(w_bytes / bw, lin_flops / (lin_peak * eff.compute))
    parts.roof(kv_chip / bw, attn_chip / (attn_peak * eff.compute))
    layers = m.layers / pp
    moe_layers = counts.moe_layers / pp
    act = tokens * m.hidden * ACTIVATION_BYTES
    if tp > 1:
        link = replica.tp_link
        dense_layers = layers - moe_layers
        parts.interconnect += 2 * dense_layers * allreduce_s(act, tp, link)
        if moe_layers and m.moe is not None:
            dispatch = act * m.moe.active / tp
            parts.interconnect += moe_layers * (
                allreduce_s(act, tp, link) + 2 * all_to_all_s(dispatch, tp, link))
    return parts, w_bytes + kv_chip, lin_flops + attn_chip


def _through_stages(replica: Replica, parts: _Parts, tokens: float, bytes_per_chip: float,
                    flops_per_chip: float) -> StepTime:
    """``pp`` stages of ``parts`` each, the sends of ``tokens`` between them, and the overhead.

    ``occupancy_s`` is left at 0 for the caller to set.
    """
    pp = replica.pp
    sends = (pp - 1) * send_s(tokens * replica.model.hidden * ACTIVATION_BYTES, replica.pp_link)
    return StepTime(
        bandwidth_s=pp * parts.bandwidth, compute_s=pp * parts.compute,
        interconnect_s=pp * parts.interconnect + sends,
        overhead_s=replica.hardware.efficiency.step_overhead_s,
        bytes_per_chip=bytes_per_chip, flops_per_chip=flops_per_chip,
        peak_flops=linear_peak_flops(replica), occupancy_s=0.0)


def decode_step(replica: Replica, batch: float, context: float,
                tokens_per_seq: int = 1) -> StepTime:
    """One decode step: ``batch`` sequences at ``context`` tokens each add ``tokens_per_seq``.

    ``tokens_per_seq > 1`` is a speculative-decoding verification step.
    """
    batch = max(batch, 1e-9)
    pp = replica.pp
    micro = batch / pp
    tokens = micro * tokens_per_seq
    kv_read = micro * kv_bytes(replica.model, replica.kv_quant, context)
    attn = tokens * decode_attention_flops(replica.model, context)
    parts, nbytes, flops = _stage(replica, tokens, kv_read, attn)
    step = _through_stages(replica, parts, tokens, pp * nbytes, pp * flops)
    return replace(step, occupancy_s=step.total_s)


def prefill(replica: Replica, prompt: float, batch: int = 1) -> StepTime:
    """Prefill of ``batch`` prompts of ``prompt`` tokens: the latency through all stages.

    The pipeline is not overlapped within one prompt, so latency sums the stages; across
    requests the stages overlap, so a replica's prefill occupancy is ``total_s / pp``.
    """
    m, pp = replica.model, replica.pp
    tokens = batch * prompt
    kv_write = batch * kv_bytes(m, replica.kv_quant, prompt)
    attn = batch * prefill_attention_flops(m, prompt)
    parts, nbytes, flops = _stage(replica, tokens, kv_write, attn)  # one stage, all tokens
    step = _through_stages(replica, parts, tokens, nbytes, flops)
    return replace(step, occupancy_s=step.total_s / pp)
