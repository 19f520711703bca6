"""What the ledger's records of one window say about a candidate and its incumbent: the
:class:`~inferplane.governance.rollout_gates.WindowStats` the gates compare. Pure.

For a **canary**, a live request counts for the candidate when the candidate took part in it:
it served it, or one of its deployments was attempted (an attempt that failed there counts as
the candidate's error even when the incumbent then served the request), or the request was in
the canary's share and its circuit was open (a broken canary must not escape its gates by
tripping its breaker). For a **shadow**, the candidate's requests are the shadow records
(``shadow_of`` set). The incumbent's are the live requests its versions served that the
candidate took no part in. An error is a 5xx or a failed attempt (not the client's 4xx, not a
client that left); time to first token, cost and tokens come from the successful requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from inferplane.governance.rollout_gates import WindowStats


@dataclass(frozen=True, slots=True)
class Row:
    """The fields of one usage record the gates read."""

    version: str | None
    status: int
    ttft_ms: float | None = None
    cost_usd: float = 0.0
    tokens: int = 0
    attempts: str | None = None  # JSON, as the ledger keeps it
    routing_reason: str | None = None  # JSON
    shadow_of: str | None = None


@dataclass(frozen=True, slots=True)
class Sides:
    """Who is compared: the candidate version, its deployments, whether it is a shadow, and
    the incumbent's versions."""

    candidate: str
    deployments: frozenset[str]
    shadow: bool
    incumbents: frozenset[str]


def _failed(attempt: dict[str, Any]) -> bool:
    status = attempt.get("status")
    return attempt.get("outcome", "ok") != "ok" and (status is None or status >= 500)


def _broken_share(reason: str | None, deployments: frozenset[str]) -> bool:
    """Whether a request in the canary's share was turned away by the canary's open circuit."""
    if not reason or '"canary"' not in reason:
        return False
    parsed = orjson.loads(reason)
    if not (parsed.get("canary") or {}).get("share"):
        return False
    return any(r.get("constraint") == "breaker" and r.get("deployment") in deployments
               for r in parsed.get("rejected", ()))


def _add(stats: WindowStats, row: Row, error: bool, answered: bool = True) -> None:
    """Count ``row``; its latency, cost and tokens when it is this side's answer."""
    stats.requests += 1
    stats.errors += error
    if answered and row.status == 200:
        if row.ttft_ms is not None:
            stats.ttft_ms.append(row.ttft_ms)
        stats.cost_usd += row.cost_usd
        stats.tokens += row.tokens


def tally(rows: Iterable[Row], sides: Sides) -> tuple[WindowStats, WindowStats]:
    """The candidate's and the incumbent's stats over ``rows``.

    >>> sides = Sides("v2", frozenset({"b"}), False, frozenset({"v1"}))
    >>> failed_then_served = Row("v1", 200, attempts='[{"deployment": "b", '
    ...                          '"outcome": "error", "status": 502}, {"deployment": "a"}]')
    >>> cand, inc = tally([failed_then_served, Row("v1", 200), Row("v2", 200)], sides)
    >>> (cand.requests, cand.errors), (inc.requests, inc.errors)
    ((2, 1), (1, 0))
    """
    candidate, incumbent = WindowStats(), WindowStats()
    for row in rows:
        if sides.shadow:
            if row.shadow_of is not None:
                if row.version == sides.candidate:
                    _add(candidate, row, row.status >= 500)
            elif row.version in sides.incumbents:
                _add(incumbent, row, row.status >= 500)
            continue
        if row.shadow_of is not None:
            continue
        attempts = orjson.loads(row.attempts) if row.attempts else []
        ours = [a for a in attempts if a.get("deployment") in sides.deployments]
        served = row.version == sides.candidate
        if served or ours:
            _add(candidate, row, any(map(_failed, ours)) or (served and row.status >= 500),
                 answered=served)
        elif _broken_share(row.routing_reason, sides.deployments):
            _add(candidate, row, True, answered=False)
        elif row.version in sides.incumbents or (row.version is None and attempts):
            _add(incumbent, row, row.status >= 500)
    return candidate, incumbent
