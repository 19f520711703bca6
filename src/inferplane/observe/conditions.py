"""The firing conditions the gateway knows of itself, for the dashboard: open circuit breakers,
kills in force, serious-incident reports due within a day (or overdue), and rollbacks in the
last day. Pure: the admin API hands over what it read (docs/observability.md).

Each condition has a severity (``critical``, ``warning``, ``info``), what it is about, a
one-line summary and since when it holds (Unix seconds; None when unknown or, for a deadline,
when the summary says when it is due). The list comes most
severe first, then newest first.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from inferplane.governance.kills import Kill
from inferplane.routing.health import BreakerState

DAY_S = 86_400.0
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}
# A breaker's state -> the severity it fires at (a closed breaker fires nothing).
BREAKER_SEVERITY = {BreakerState.OPEN: "critical", BreakerState.HALF_OPEN: "warning"}


@dataclass(frozen=True, slots=True)
class Condition:
    kind: str  # breaker, kill, incident_deadline, rollback
    severity: str
    subject: str
    summary: str
    since: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def breaker_conditions(states: Mapping[str, BreakerState]) -> list[Condition]:
    """The deployments whose breaker is open or half-open.

    >>> [c.summary for c in breaker_conditions({"a": BreakerState.OPEN,
    ...                                         "b": BreakerState.CLOSED})]
    ['circuit breaker open: requests go elsewhere']
    """
    return [Condition("breaker", BREAKER_SEVERITY[state], name,
                      f"circuit breaker {state.value}: " + (
                          "requests go elsewhere" if state is BreakerState.OPEN
                          else "trial requests only"), None)
            for name, state in sorted(states.items()) if state in BREAKER_SEVERITY]


def kill_conditions(kills: Iterable[Kill]) -> list[Condition]:
    return [Condition("kill", "warning", f"{k.kind} {k.name}",
                      f"killed by {k.actor}: {k.reason}", k.ts) for k in kills]


def deadline_conditions(pending: Iterable[tuple[str, float]], now: float,
                        horizon_s: float = DAY_S) -> list[Condition]:
    """The incident reports still owed that are due within ``horizon_s`` (critical once
    overdue), the soonest per system.

    >>> [(c.severity, c.summary) for c in deadline_conditions(
    ...     [("hr", 1_000.0 + 7_200), ("hr", 1_000.0 + 9_000), ("bank", 100.0),
    ...      ("far", 1_000.0 + 3 * DAY_S)], now=1_000.0)]
    [('critical', 'incident report overdue by 0.2 h'), ('warning', 'incident report due in 2.0 h')]
    """
    soonest: dict[str, float] = {}
    for system, due in pending:
        soonest[system] = min(due, soonest.get(system, due))
    out = []
    for system, due in sorted(soonest.items(), key=lambda kv: kv[1]):
        left = due - now
        if left > horizon_s:
            continue
        summary = (f"incident report overdue by {-left / 3600:.1f} h" if left < 0
                   else f"incident report due in {left / 3600:.1f} h")
        out.append(Condition("incident_deadline", "critical" if left < 0 else "warning",
                             f"system {system}", summary, None))
    return out


def rollback_conditions(events: Iterable[Mapping[str, Any]], now: float,
                        recent_s: float = DAY_S) -> list[Condition]:
    """The registry's rollback events of the last ``recent_s`` seconds."""
    return [Condition("rollback", "info", f"version {e['target']}",
                      f"rolled back from {e['from_stage']} to {e['to_stage']} by {e['actor']}"
                      + (f": {e['reason']}" if e.get("reason") else ""), e["ts"])
            for e in events if e["action"] == "rollback" and now - e["ts"] <= recent_s]


def firing(conditions: Iterable[Condition]) -> list[Condition]:
    """Most severe first, then newest first (those without a time last).

    >>> [c.subject for c in firing([Condition("kill", "warning", "a", "", 5.0),
    ...                             Condition("breaker", "critical", "b", "", None),
    ...                             Condition("kill", "warning", "c", "", 9.0)])]
    ['b', 'c', 'a']
    """
    return sorted(conditions, key=lambda c: (SEVERITY_ORDER[c.severity],
                                             -(c.since if c.since is not None else -1e18)))
