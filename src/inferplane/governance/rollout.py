"""Moving a model's production by hand: which versions change stage on a rollout to
production and on a rollback (pure). Shadow and canary, with their percentages and gates,
come with the staged rollout; the registry and these moves are shaped for them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inferplane.errors import GovernanceRefused
from inferplane.governance.stages import Stage, why_not


@dataclass(frozen=True, slots=True)
class Move:
    version: str
    from_stage: Stage
    to_stage: Stage


def resting_stage(approved: bool) -> Stage:
    """Where a version leaving production goes: approved if its approvals were enough."""
    return Stage.APPROVED if approved else Stage.REGISTERED


def plan_rollout(stages: Mapping[str, Stage], approved: Mapping[str, bool], version: str,
            target: Stage, *, require_approval: bool) -> list[Move]:
    """The moves that put ``version`` (one of ``stages``, a model's versions) in ``target``:
    for production, the versions now in production step down.

    >>> s = {"v1": Stage.PRODUCTION, "v2": Stage.APPROVED}
    >>> ok = {"v1": True, "v2": True}
    >>> [(m.version, m.to_stage.value)
    ...  for m in plan_rollout(s, ok, "v2", Stage.PRODUCTION, require_approval=True)]
    [('v2', 'production'), ('v1', 'approved')]
    """
    current = stages[version]
    why = why_not(current, target, require_approval=require_approval)
    if why is not None:
        raise GovernanceRefused(f"Cannot roll '{version}' out to {target}: {why}.")
    moves = [Move(version, current, target)]
    if target is Stage.PRODUCTION:
        moves += [Move(v, Stage.PRODUCTION, resting_stage(approved.get(v, False)))
                  for v, s in sorted(stages.items()) if s is Stage.PRODUCTION and v != version]
    return moves


def plan_rollback(stages: Mapping[str, Stage], approved: Mapping[str, bool],
             replaced: Sequence[str]) -> list[Move]:
    """The moves that give production back to ``replaced`` (the versions the latest rollout
    to production took it from): they return, the versions now in production step down.

    >>> s = {"v1": Stage.APPROVED, "v2": Stage.PRODUCTION}
    >>> [(m.version, m.to_stage.value) for m in plan_rollback(s, {"v1": True}, ["v1"])]
    [('v1', 'production'), ('v2', 'registered')]
    """
    back = [v for v in replaced if stages.get(v) not in (None, Stage.RETIRED, Stage.PRODUCTION)]
    if not back:
        raise GovernanceRefused("There is no earlier production version to roll back to (it "
                                "was retired, or production was never replaced).")
    moves = [Move(v, stages[v], Stage.PRODUCTION) for v in back]
    moves += [Move(v, Stage.PRODUCTION, resting_stage(approved.get(v, False)))
              for v, s in sorted(stages.items()) if s is Stage.PRODUCTION]
    return moves
