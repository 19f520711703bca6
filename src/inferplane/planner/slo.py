"""Latency SLOs: ``ttft=1s,tpot=50ms`` held at a percentile (p99 unless ``p=`` says otherwise).

>>> parse_slo("ttft=1s,tpot=50ms")
Slo(ttft_s=1.0, tpot_s=0.05, percentile=99.0)
>>> parse_slo("tpot=0.2,p=50").ttft_s
inf
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from inferplane.planner.errors import PlannerError

_UNITS = {"": 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "m": 60.0, "min": 60.0}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*([a-z]*)\s*$")
PERCENTILES = (50.0, 99.0)


@dataclass(frozen=True)
class Slo:
    """Targets for time to first token and time per output token, at a percentile."""

    ttft_s: float = math.inf
    tpot_s: float = math.inf
    percentile: float = 99.0

    def describe(self) -> str:
        parts = []
        if math.isfinite(self.ttft_s):
            parts.append(f"TTFT <= {format_seconds(self.ttft_s)}")
        if math.isfinite(self.tpot_s):
            parts.append(f"TPOT <= {format_seconds(self.tpot_s)}")
        target = " and ".join(parts) or "none"
        return f"p{self.percentile:g} {target}"


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number with an optional unit (s, ms, us, m)."""
    match = _DURATION.match(text.lower())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(text)
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_slo(text: str) -> Slo:
    """An :class:`Slo` from ``key=value`` pairs (ttft, tpot, p); a clear error otherwise."""
    values: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        try:
            if not sep or key not in ("ttft", "tpot", "p") or key in values:
                raise ValueError(item)
            values[key] = float(value.strip().lstrip("p")) if key == "p" \
                else parse_duration(value)
        except ValueError:
            raise PlannerError(
                f"bad SLO {text!r}: expected e.g. 'ttft=1s,tpot=50ms' (optional p=99; units "
                "s, ms, us)") from None
    if not values.keys() & {"ttft", "tpot"}:
        raise PlannerError(f"bad SLO {text!r}: give ttft=..., tpot=... or both")
    percentile = values.get("p", 99.0)
    if percentile not in PERCENTILES:
        raise PlannerError(f"bad SLO {text!r}: p must be one of 50, 99")
    if any(v <= 0 for k, v in values.items() if k != "p"):
        raise PlannerError(f"bad SLO {text!r}: targets must be positive")
    return Slo(ttft_s=values.get("ttft", math.inf), tpot_s=values.get("tpot", math.inf),
               percentile=percentile)


def format_seconds(seconds: float) -> str:
    """``0.05`` -> ``50ms``; ``1.5`` -> ``1.5s``."""
    if not math.isfinite(seconds):
        return "inf"
    if seconds < 1:
        return f"{seconds * 1e3:.3g}ms"
    return f"{seconds:.3g}s"
