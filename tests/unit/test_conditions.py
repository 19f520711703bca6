"""The firing conditions the dashboard lists (observe/conditions.py)."""

from __future__ import annotations

from typing import Any

from inferplane.governance.kills import Kill, KillKind
from inferplane.observe import conditions
from inferplane.routing.health import BreakerState

NOW = 1_800_000_000.0


def event(action: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"ts": ts, "action": action, "kind": "version", "target": "chat-v2",
            "from_stage": "canary", "to_stage": "registered", "actor": "watcher",
            "reason": None, **fields}


def test_open_and_half_open_breakers_fire_closed_ones_do_not() -> None:
    found = conditions.breaker_conditions({"b": BreakerState.HALF_OPEN, "a": BreakerState.OPEN,
                                           "c": BreakerState.CLOSED})
    assert [(c.subject, c.severity) for c in found] == [("a", "critical"), ("b", "warning")]


def test_each_kill_in_force_fires_with_its_reason_and_time() -> None:
    kill = Kill(KillKind.PROVIDER, "openai", "leaking data", "key:abc", NOW - 60)
    (found,) = conditions.kill_conditions([kill])
    assert found.subject == "provider openai" and "leaking data" in found.summary
    assert found.since == NOW - 60


def test_deadlines_within_a_day_fire_overdue_ones_critical() -> None:
    found = conditions.deadline_conditions(
        [("a", NOW + 3_600), ("a", NOW + 7_200), ("b", NOW - 60), ("c", NOW + 2 * 86_400)], NOW)
    assert [(c.subject, c.severity) for c in found] == [("system b", "critical"),
                                                        ("system a", "warning")]
    assert found[1].summary == "incident report due in 1.0 h"


def test_only_recent_rollbacks_fire() -> None:
    found = conditions.rollback_conditions(
        [event("rollback", NOW - 100, reason="gate failed: error rate"),
         event("rollback", NOW - 2 * 86_400), event("rollout", NOW - 50)], NOW)
    assert len(found) == 1
    assert found[0].summary == ("rolled back from canary to registered by watcher: "
                                "gate failed: error rate")


def test_firing_orders_by_severity_then_newest() -> None:
    kill = Kill(KillKind.MODEL, "chat", "bad", "key:a", NOW - 10)
    ordered = conditions.firing([
        *conditions.rollback_conditions([event("rollback", NOW - 5)], NOW),
        *conditions.kill_conditions([kill]),
        *conditions.breaker_conditions({"d": BreakerState.OPEN}),
    ])
    assert [c.kind for c in ordered] == ["breaker", "kill", "rollback"]
    assert ordered[0].to_dict()["severity"] == "critical"
