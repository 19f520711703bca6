"""Numeric precisions: bytes per weight (with block-scale overhead) and the rate they compute at.

A weight precision is served by the fastest datapath the chip publishes among its
``compute_with`` list: fp8 weights run on fp8 units where they exist, else are widened to bf16
(weight-only quantization: memory and bandwidth shrink, arithmetic does not).

>>> PRECISIONS["int4"].bytes_per_param  # 4 bits + a 16-bit scale per 128 weights
0.515625
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.planner.errors import PlannerError


@dataclass(frozen=True)
class Precision:
    """One storage format of weights or KV cache."""

    name: str
    bits: int
    scale_bits_per_param: float  # block scales: e.g. one 16-bit scale per 128 int4 weights
    compute_with: tuple[str, ...]  # peak_tflops keys to try, fastest first

    @property
    def bytes_per_param(self) -> float:
        return (self.bits + self.scale_bits_per_param) / 8


PRECISIONS: dict[str, Precision] = {
    p.name: p
    for p in (
        Precision("bf16", 16, 0.0, ("bf16",)),
        Precision("fp8", 8, 0.0, ("fp8", "bf16")),
        Precision("int8", 8, 0.0, ("int8", "fp8", "bf16")),
        # int4 weight-only (GPTQ/AWQ style): one 16-bit scale per group of 128 weights.
        Precision("int4", 4, 16 / 128, ("bf16",)),
        # fp4 (MXFP4 / NVFP4): one 8-bit scale per block of 32 (MXFP4) - 16 (NVFP4) weights.
        Precision("fp4", 4, 8 / 32, ("fp4", "fp8", "bf16")),
    )
}

KV_PRECISIONS = ("bf16", "fp8", "int8")


def precision(name: str) -> Precision:
    """The precision called ``name``, or a :class:`PlannerError` naming the known ones."""
    try:
        return PRECISIONS[name.lower()]
    except KeyError:
        known = ", ".join(PRECISIONS)
        raise PlannerError(f"unknown precision {name!r}; known: {known}") from None


def compute_rate_key(p: Precision, peak_tflops: dict[str, float]) -> str | None:
    """The ``peak_tflops`` key this precision computes at on a chip, or None if none is published.

    >>> compute_rate_key(PRECISIONS["fp8"], {"bf16": 989.0})
    'bf16'
    """
    for key in p.compute_with:
        if key in peak_tflops:
            return key
    return None
