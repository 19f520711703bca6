"""Speculative decoding: a draft proposes ``draft_tokens``, the target verifies them in one step.

With a per-token acceptance rate ``a`` (independent), one verification step yields on average
``(1 - a^(k+1)) / (1 - a)`` tokens (the accepted prefix plus the target's own next token). A step
costs one target pass over ``k + 1`` tokens per sequence plus ``k`` draft passes, each taken as
``draft_cost`` of a one-token target step (a small draft model or an EAGLE/MTP head).

>>> round(expected_tokens(Speculation(draft_tokens=4, acceptance=0.7)), 3)
2.773
"""

from __future__ import annotations

from dataclasses import dataclass

from inferplane.planner.errors import PlannerError

DEFAULT_DRAFT_COST = 0.05


@dataclass(frozen=True)
class Speculation:
    """Draft length, per-token acceptance rate, and a draft pass's cost relative to the target."""

    draft_tokens: int
    acceptance: float
    draft_cost: float = DEFAULT_DRAFT_COST

    def __post_init__(self) -> None:
        if self.draft_tokens < 1 or not 0.0 <= self.acceptance < 1.0 or self.draft_cost < 0:
            raise PlannerError(
                "speculation needs draft tokens >= 1, acceptance in [0, 1), draft cost >= 0")


def describe(spec: Speculation | None) -> str:
    """The setting in words, for a plan's title.

    >>> describe(Speculation(4, 0.7))
    'speculative decoding 4 draft tokens, 70% accepted (2.77 tokens/step)'
    >>> describe(None)
    'no speculative decoding'
    """
    if spec is None:
        return "no speculative decoding"
    return (f"speculative decoding {spec.draft_tokens} draft token"
            f"{'' if spec.draft_tokens == 1 else 's'}, {spec.acceptance:.0%} accepted "
            f"({expected_tokens(spec):.3g} tokens/step)")


def expected_tokens(spec: Speculation) -> float:
    """Mean tokens one verification step emits per sequence."""
    a, k = spec.acceptance, spec.draft_tokens
    return (1.0 - a ** (k + 1)) / (1.0 - a)


def parse_speculation(text: str) -> Speculation:
    """``"4:0.7"`` or ``"4:0.7:0.05"``: draft tokens, acceptance, optional draft cost.

    >>> parse_speculation("3:0.6").draft_tokens
    3
    """
    parts = text.split(":")
    try:
        if len(parts) not in (2, 3):
            raise ValueError(text)
        k, a = int(parts[0]), float(parts[1])
        cost = float(parts[2]) if len(parts) == 3 else DEFAULT_DRAFT_COST
    except ValueError:
        raise PlannerError(
            f"bad --spec {text!r}: expected DRAFT_TOKENS:ACCEPTANCE[:DRAFT_COST], e.g. 4:0.7"
        ) from None
    return Speculation(draft_tokens=k, acceptance=a, draft_cost=cost)
