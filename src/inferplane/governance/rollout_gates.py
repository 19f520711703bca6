"""Rollout gates: does a candidate version do as well as the incumbent on live traffic? Pure.

Both versions' requests over the same window are compared on what a user feels and what the
operator pays: the error rate (5xx and timeouts, not the client's own 4xx), time to first token
at p95, and cost per million tokens. A candidate fails a gate when it is worse than the
incumbent by more than the gate allows, and only once it has served ``min_requests`` in the
window: too few requests prove nothing either way. The error gate also fails outright when the
candidate's errors alone exceed ``max_error_rate`` (a broken candidate next to an idle
incumbent must still roll back).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from inferplane.ledger.stats import percentile


@dataclass(frozen=True, slots=True)
class GateConfig:
    window_s: float = 60.0
    min_requests: int = 20
    max_error_rate: float = 0.05  # the candidate's own error rate, whatever the incumbent's
    max_error_rate_increase: float = 0.02  # over the incumbent's, in absolute terms
    max_ttft_p95_ratio: float = 1.5  # candidate p95 / incumbent p95
    max_cost_ratio: float = 1.5  # candidate cost per 1M tokens / incumbent's


@dataclass(slots=True)
class WindowStats:
    """One version's requests in the gate's window."""

    requests: int = 0
    errors: int = 0
    ttft_ms: list[float] = field(default_factory=list)
    cost_usd: float = 0.0
    tokens: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def cost_per_mtok(self) -> float | None:
        return self.cost_usd / self.tokens * 1e6 if self.tokens else None

    def ttft_p95(self) -> float | None:
        """The nearest-rank p95 of the window's TTFTs (``ledger.stats.percentile``).

        >>> WindowStats(5, ttft_ms=[5.0, 1.0, 3.0, 2.0, 4.0]).ttft_p95(), WindowStats().ttft_p95()
        (5.0, None)
        """
        return percentile(sorted(self.ttft_ms), 95)


class Outcome(Enum):
    PASS = "pass"
    FAIL = "fail"
    WAIT = "wait"  # not enough traffic yet


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: Outcome
    reasons: tuple[str, ...] = ()

    def text(self) -> str:
        return "; ".join(self.reasons) if self.reasons else self.outcome.value


def judge(candidate: WindowStats, incumbent: WindowStats, config: GateConfig) -> Verdict:
    """Whether ``candidate`` may go on, must roll back, or has not served enough to tell.

    >>> bad = WindowStats(requests=40, errors=10)
    >>> judge(bad, WindowStats(requests=400, errors=2), GateConfig()).outcome
    <Outcome.FAIL: 'fail'>
    >>> judge(WindowStats(requests=3, errors=3), WindowStats(), GateConfig()).outcome
    <Outcome.WAIT: 'wait'>
    """
    if candidate.requests < config.min_requests:
        return Verdict(Outcome.WAIT, (f"{candidate.requests} of {config.min_requests} requests "
                                      "needed in the window",))
    reasons = []
    rate, base = candidate.error_rate, incumbent.error_rate
    if rate > config.max_error_rate:
        reasons.append(f"error rate {rate:.1%} over the limit of {config.max_error_rate:.1%}")
    elif incumbent.requests and rate > base + config.max_error_rate_increase:
        reasons.append(f"error rate {rate:.1%} vs the incumbent's {base:.1%} (allowed "
                       f"+{config.max_error_rate_increase:.1%})")
    ttft, ttft_base = candidate.ttft_p95(), incumbent.ttft_p95()
    if ttft is not None and ttft_base and ttft > ttft_base * config.max_ttft_p95_ratio:
        reasons.append(f"TTFT p95 {ttft:.0f} ms vs the incumbent's {ttft_base:.0f} ms (allowed "
                       f"x{config.max_ttft_p95_ratio:g})")
    cost, cost_base = candidate.cost_per_mtok, incumbent.cost_per_mtok
    if cost is not None and cost_base and cost > cost_base * config.max_cost_ratio:
        reasons.append(f"cost ${cost:.2f}/1M tokens vs the incumbent's ${cost_base:.2f} "
                       f"(allowed x{config.max_cost_ratio:g})")
    return Verdict(Outcome.FAIL, tuple(reasons)) if reasons else Verdict(Outcome.PASS)


def promotion_due(outcome: Outcome, since: float, promote_after_s: float | None,
                  now: float) -> bool:
    """Whether a canary whose gates have given ``outcome`` since ``since`` is promoted now:
    they passed, without a break, for its ``promote_after_s`` (None: promoted by hand only).

    >>> promotion_due(Outcome.PASS, 100.0, 60.0, 170.0), promotion_due(Outcome.WAIT, 0, 1, 9)
    (True, False)
    """
    return (outcome is Outcome.PASS and promote_after_s is not None
            and now - since >= promote_after_s)
