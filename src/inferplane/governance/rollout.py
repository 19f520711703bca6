"""Which versions change stage on a rollout, a promotion and a rollback (pure).

A staged rollout puts one **candidate** per model in shadow or canary next to the model's
production (its incumbent): the candidate is compared with it on live traffic
(``rollout_gates``), and a rollback must leave the candidate serving nothing, which only a
production version guarantees (a model without one sends its requests to every version that
may serve, the rolled-back candidate among them). So shadow and canary need a version in
production, and a model has at most one candidate at a time. Rolling a candidate out again to
its own stage changes its percent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from inferplane.errors import GovernanceRefused, InvalidRequest
from inferplane.governance.stages import CANDIDATE, Stage, why_not

# The share of requests a candidate gets when the rollout names none: a shadow sees a copy of
# every request, a canary serves one in twenty.
DEFAULT_PERCENT = {Stage.SHADOW: 100.0, Stage.CANARY: 5.0}


@dataclass(frozen=True, slots=True)
class Move:
    version: str
    from_stage: Stage
    to_stage: Stage


def resting_stage(approved: bool) -> Stage:
    """Where a version leaving production goes: approved if its approvals were enough."""
    return Stage.APPROVED if approved else Stage.REGISTERED


def rollout_percent(stage: Stage, percent: float | None) -> float | None:
    """The percent a rollout to ``stage`` records: the given one (0 < P <= 100) or the
    stage's default; None for production (it takes every request).

    >>> rollout_percent(Stage.CANARY, None), rollout_percent(Stage.SHADOW, 25)
    (5.0, 25.0)
    >>> rollout_percent(Stage.PRODUCTION, None) is None
    True
    """
    if stage not in CANDIDATE:
        if percent is not None:
            raise InvalidRequest(f"A rollout to {stage} takes every request; a percent applies "
                                 "to shadow and canary.", param="percent")
        return None
    if percent is None:
        return DEFAULT_PERCENT[stage]
    if not 0 < percent <= 100:
        raise InvalidRequest(f"The percent must be over 0 and at most 100, got {percent:g}.",
                             param="percent")
    return float(percent)


def plan_rollout(stages: Mapping[str, Stage], approved: Mapping[str, bool], version: str,
                 target: Stage, *, require_approval: bool) -> list[Move]:
    """The moves that put ``version`` (one of ``stages``, a model's versions) in ``target``:
    for production, the versions now in production step down.

    >>> s = {"v1": Stage.PRODUCTION, "v2": Stage.APPROVED}
    >>> ok = {"v1": True, "v2": True}
    >>> [(m.version, m.to_stage.value)
    ...  for m in plan_rollout(s, ok, "v2", Stage.PRODUCTION, require_approval=True)]
    [('v2', 'production'), ('v1', 'approved')]
    >>> [(m.version, m.to_stage.value)
    ...  for m in plan_rollout(s, ok, "v2", Stage.CANARY, require_approval=True)]
    [('v2', 'canary')]
    """
    current = stages[version]
    if target in CANDIDATE:
        why = _candidate_refusal(stages, version, target)
        if why is not None:
            raise GovernanceRefused(f"Cannot roll '{version}' out to {target}: {why}.")
        if current is target:  # a new percent
            return [Move(version, current, target)]
    why = why_not(current, target, require_approval=require_approval)
    if why is not None:
        raise GovernanceRefused(f"Cannot roll '{version}' out to {target}: {why}.")
    moves = [Move(version, current, target)]
    if target is Stage.PRODUCTION:
        moves += [Move(v, Stage.PRODUCTION, resting_stage(approved.get(v, False)))
                  for v, s in sorted(stages.items()) if s is Stage.PRODUCTION and v != version]
    return moves


def _candidate_refusal(stages: Mapping[str, Stage], version: str, target: Stage) -> str | None:
    """Why ``version`` may not become its model's candidate in ``target``, or None.

    >>> _candidate_refusal({"v1": Stage.APPROVED, "v2": Stage.APPROVED}, "v2", Stage.CANARY)
    'the model has no version in production to compare it with and to fall back to'
    """
    others = {v: s for v, s in stages.items() if v != version}
    busy = sorted(v for v, s in others.items() if s in CANDIDATE)
    if busy:
        return (f"'{busy[0]}' is in {others[busy[0]]}: promote it or roll it back first (one "
                "candidate per model)")
    if stages[version] is Stage.PRODUCTION:
        return "it is in production already"
    if Stage.PRODUCTION not in others.values():
        return "the model has no version in production to compare it with and to fall back to"
    return None


def candidate_of(stages: Mapping[str, Stage]) -> str | None:
    """The model's version in shadow or canary, if any.

    >>> candidate_of({"v1": Stage.PRODUCTION, "v2": Stage.CANARY})
    'v2'
    """
    return next((v for v, s in sorted(stages.items()) if s in CANDIDATE), None)


def plan_candidate_rollback(stages: Mapping[str, Stage], approved: Mapping[str, bool],
                            version: str) -> list[Move]:
    """The move that takes ``version`` out of shadow or canary (to approved, or registered
    when its approvals are not enough); none when it is not a candidate any more, so that
    several processes rolling it back at once move it once.

    >>> plan_candidate_rollback({"v2": Stage.CANARY}, {"v2": True}, "v2")
    [Move(version='v2', from_stage=<Stage.CANARY: 'canary'>, to_stage=<Stage.APPROVED: 'approved'>)]
    >>> plan_candidate_rollback({"v2": Stage.APPROVED}, {"v2": True}, "v2")
    []
    """
    current = stages.get(version)
    if current not in CANDIDATE:
        return []
    return [Move(version, current, resting_stage(approved.get(version, False)))]


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
