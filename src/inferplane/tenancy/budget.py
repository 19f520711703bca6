"""Budgets and durations as people write them, and the periods budgets reset on.

>>> parse_budget("100usd/month")
Budget(usd=100.0, period='month')
>>> parse_duration("90d"), parse_duration("12h"), parse_duration("30m")
(7776000.0, 43200.0, 1800.0)
>>> import datetime as dt
>>> t = dt.datetime(2026, 11, 23, 15, 30, tzinfo=dt.UTC).timestamp()
>>> [dt.datetime.fromtimestamp(period_start(p, t), dt.UTC).isoformat()[:10]
...  for p in ("day", "week", "month")]
['2026-11-23', '2026-11-23', '2026-11-01']
>>> period_start("total", t)
0.0
>>> [dt.datetime.fromtimestamp(period_end(p, t), dt.UTC).isoformat()[:10]
...  for p in ("day", "week", "month")]
['2026-11-24', '2026-11-30', '2026-12-01']
>>> period_end("total", t) is None
True
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from dataclasses import dataclass
from typing import Literal, get_args

Period = Literal["day", "week", "month", "total"]
PERIODS: tuple[str, ...] = get_args(Period)
_BUDGET = re.compile(r"\s*\$?([0-9]+(?:\.[0-9]+)?)\s*(?:usd)?\s*(?:/\s*([a-z]+))?\s*", re.I)
MAX_BUDGET_USD = 9_000_000  # budgets are counted in nano-dollars, exact in a double to 2**53
MAX_RPM = 2**31 - 1  # the rpm columns are 32-bit integers
MAX_TPM = 10**12
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw])\s*")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True, slots=True)
class Budget:
    usd: float
    period: Period

    def __str__(self) -> str:
        return f"{self.usd:g}usd/{self.period}"


def parse_budget(text: str) -> Budget:
    """``100usd/month``, ``$5/day``, ``20usd`` (a monthly budget) or ``50usd/total``."""
    match = _BUDGET.fullmatch(text)
    period = (match.group(2) or "month").lower() if match else ""
    if match is None or period not in PERIODS:
        raise ValueError(f"cannot read the budget {text!r}: write e.g. 100usd/month "
                         f"(periods: {', '.join(PERIODS)})")
    usd = float(match.group(1))
    if not (math.isfinite(usd) and usd <= MAX_BUDGET_USD):
        raise ValueError(f"the budget {text!r} is over the largest supported, "
                         f"{MAX_BUDGET_USD:,} usd")
    return Budget(usd, period)  # type: ignore[arg-type]


def parse_duration(text: str) -> float:
    """Seconds in ``90d``, ``12h``, ``30m``, ``45s`` or ``2w``."""
    match = _DURATION.fullmatch(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"cannot read the duration {text!r}: write e.g. 90d, 12h or 30m")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def period_start(period: str, now: float) -> float:
    """When the budget period containing ``now`` began (UTC; weeks start on Monday)."""
    return _period_start(period, int(now // 86400))  # every period begins at a UTC midnight


def period_end(period: str, now: float) -> float | None:
    """When the budget period containing ``now`` ends: the next one's start (a total budget
    never resets: None)."""
    if period == "total":
        return None
    start = period_start(period, now)
    day = int(start // 86400)
    step = {"day": 1, "week": 7, "month": 31}[period]  # a month: its start + 31 days is next
    return _period_start(period, day + step)


@dataclass(frozen=True, slots=True)
class BudgetStanding:
    """Where a budget stands in its current period."""

    scope: str  # tenant:<name> or key:<id>
    usd: float
    spent_usd: float
    period_end: float | None  # None: a total budget


@functools.lru_cache(maxsize=64)
def _period_start(period: str, day_number: int) -> float:
    if period == "total":
        return 0.0
    day = dt.datetime.fromtimestamp(day_number * 86400, dt.UTC)
    if period == "day":
        return day.timestamp()
    if period == "week":
        return (day - dt.timedelta(days=day.weekday())).timestamp()
    if period == "month":
        return day.replace(day=1).timestamp()
    raise ValueError(f"unknown budget period {period!r}")
