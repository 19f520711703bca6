"""How many distinct experts a batch touches: the MoE weight bytes a step must read.

Each token picks ``active`` of ``experts``; with routing taken as uniform and independent, the
expected number of distinct experts among ``tokens`` tokens is E (1 - (1 - k/E)^T). Real routers
are skewed, so this is an upper bound on bytes read (a lower bound on decode speed).

>>> round(expected_distinct_experts(256, 8, 1), 3)
8.0
>>> round(expected_distinct_experts(8, 2, 64), 3)
8.0
"""

from __future__ import annotations

import math


def expected_distinct_experts(experts: int, active: int, tokens: float) -> float:
    """Expected distinct experts per layer for ``tokens`` tokens, each routed to ``active``."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    if tokens <= 1:
        return float(active * tokens)
    return experts * (1.0 - math.pow(1.0 - active / experts, tokens))
