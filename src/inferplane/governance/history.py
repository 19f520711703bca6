"""Which version of a model served at a moment: the stages and kills in force then, replayed
from the registry's events (pure); the ledger adds which versions actually answered."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class State:
    """The registry's view of one model at one moment."""

    at: float
    stages: Mapping[str, str]  # version -> stage then (registered versions only)
    kills: Mapping[str, str]  # "kind name" -> reason, the kills in force then
    percents: Mapping[str, float] = field(default_factory=dict)  # shadow/canary -> percent

    @property
    def production(self) -> list[str]:
        return sorted(v for v, s in self.stages.items() if s == "production")


def state_at(events: Iterable[Mapping[str, Any]], at: float) -> State:
    """Replay ``events`` (oldest first) up to ``at``, inclusive.

    >>> evs = [{"ts": 1, "action": "register", "kind": "version", "target": "v1",
    ...         "to_stage": None, "reason": None},
    ...        {"ts": 2, "action": "rollout", "kind": "version", "target": "v1",
    ...         "to_stage": "production", "reason": None},
    ...        {"ts": 3, "action": "kill", "kind": "model", "target": "m", "to_stage": None,
    ...         "reason": "bad"}]
    >>> state_at(evs, 2.5).production, state_at(evs, 3).kills
    (['v1'], {'model m': 'bad'})
    >>> state_at([*evs, {"ts": 4, "action": "rollout", "kind": "version", "target": "v2",
    ...                  "to_stage": "canary", "reason": None, "details": {"percent": 20.0}}],
    ...          4).percents
    {'v2': 20.0}
    """
    stages: dict[str, str] = {}
    kills: dict[str, str] = {}
    percents: dict[str, float] = {}
    for event in events:
        if event["ts"] > at:
            break
        action, name = event["action"], f"{event['kind']} {event['target']}"
        if action == "register":
            stages[event["target"]] = "registered"
        elif event["to_stage"] is not None and event["kind"] == "version":
            stages[event["target"]] = event["to_stage"]
            percent = (event.get("details") or {}).get("percent")
            if event["to_stage"] in ("shadow", "canary") and percent is not None:
                percents[event["target"]] = percent
            else:
                percents.pop(event["target"], None)
        elif action == "kill":
            kills[name] = event["reason"] or ""
        elif action == "unkill":
            kills.pop(name, None)
    return State(at, stages, kills, percents)
