"""A replica's layout (tensor x pipeline parallel chips), its memory fit, and the layouts to try.

Tensor parallelism stays inside one scale-up domain (NVLink, Infinity Fabric, ICI...); pipeline
stages may cross to the scale-out network. Weights split evenly over all ``tp x pp`` chips;
the KV cache splits over pipeline stages and over tensor ranks as far as KV heads allow.

>>> from inferplane.planner.catalog import load_catalog
>>> from inferplane.planner.precision import PRECISIONS
>>> cat = load_catalog()
>>> r = Replica(cat.find_model("llama-3.1-70b"), cat.find_hardware("h100"),
...             PRECISIONS["bf16"], PRECISIONS["bf16"], tp=1, pp=1)
>>> r.fits_weights
False
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from inferplane.planner.attention import kv_bytes, kv_shards
from inferplane.planner.catalog import Hardware, Link, Model
from inferplane.planner.precision import Precision
from inferplane.planner.weights import WeightBytes, weight_bytes

MAX_CHIPS = 2048


@dataclass(frozen=True)
class Replica:
    """One copy of a model on ``tp x pp`` chips of one hardware, at one quantization."""

    model: Model
    hardware: Hardware
    quant: Precision
    kv_quant: Precision
    tp: int = 1
    pp: int = 1

    @property
    def chips(self) -> int:
        return self.tp * self.pp

    @property
    def weights(self) -> WeightBytes:
        return weight_bytes(self.model, self.quant)

    @property
    def weights_per_chip(self) -> float:
        return self.weights.total / self.chips

    @property
    def fits_weights(self) -> bool:
        return self.weights_per_chip < self.hardware.usable_bytes

    def kv_per_sequence_per_chip(self, context: float) -> float:
        """KV bytes one sequence of ``context`` tokens takes on each chip."""
        return kv_bytes(self.model, self.kv_quant, context) / (
            self.pp * kv_shards(self.model, self.tp))

    def max_sequences(self, context: float) -> int:
        """How many sequences of ``context`` tokens fit beside the weights (0 if none)."""
        free = self.hardware.usable_bytes - self.weights_per_chip
        per_seq = self.kv_per_sequence_per_chip(context)
        if free <= 0 or per_seq <= 0:
            return 0
        return int(free // per_seq)

    @property
    def tp_link(self) -> Link:
        return self.hardware.scale_up

    @property
    def pp_link(self) -> Link:
        """Stages share the scale-up domain while the whole replica fits in it."""
        up = self.hardware.scale_up
        return up if self.chips <= up.domain else self.hardware.scale_out

    def describe(self) -> str:
        return f"TP{self.tp}" + (f"xPP{self.pp}" if self.pp > 1 else "")


def min_chips_for_weights(model: Model, hardware: Hardware, quant: Precision) -> int:
    """The fewest chips whose usable memory holds the weights (not yet any KV cache)."""
    return max(1, math.ceil(weight_bytes(model, quant).total / hardware.usable_bytes))


def min_layout_chips(model: Model, hardware: Hardware, quant: Precision) -> int:
    """The chips of the smallest candidate layout: the memory minimum up to a power of two."""
    return 1 << math.ceil(math.log2(min_chips_for_weights(model, hardware, quant)))


def layouts(model: Model, hardware: Hardware, quant: Precision, kv_quant: Precision,
            widen: int = 3) -> Iterator[Replica]:
    """Candidate replicas: chip counts from the memory minimum (power of two), ``widen`` doublings.

    For each chip count, every power-of-two tensor-parallel degree that fits the scale-up domain
    and divides the query heads, the rest as pipeline stages (at most one layer per stage).
    """
    start = min_layout_chips(model, hardware, quant)
    n = start
    while n <= min(MAX_CHIPS, start << widen):
        tp = 1
        while tp <= min(n, hardware.scale_up.domain):
            pp = n // tp
            if model.heads % tp == 0 and pp <= model.layers:
                yield Replica(model, hardware, quant, kv_quant, tp=tp, pp=pp)
            tp *= 2
        n *= 2
