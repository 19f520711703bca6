"""The stages of a model version and the transitions between them.

::

    registered ──approve (N approvals)──> approved ──> shadow ──> canary ──> production
         │                                   ^  └────────────────────────────────┘ │
         │                                   └─ rollback / replaced ───────────────┘
         └─────────────> retired <── (from every stage; retired is final)

Without ``governance.require_approval`` a registered version may go straight to shadow,
canary or production. Shadow and canary are the staged rollout's (:data:`CANDIDATE`): a
shadow version sees mirrored requests only, a canary serves its share of the model's requests.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    REGISTERED = "registered"
    APPROVED = "approved"
    SHADOW = "shadow"
    CANARY = "canary"
    PRODUCTION = "production"
    RETIRED = "retired"


# Stages an operator may roll a version to.
BY_HAND = frozenset({Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION})
# The staged rollout's stages: a candidate compared with the production it would replace.
CANDIDATE = frozenset({Stage.SHADOW, Stage.CANARY})
# Stages in which a version has passed approval (or needed none).
APPROVED_OR_LATER = frozenset({Stage.APPROVED, Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION})

_ROLLOUT = (Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)
_NEXT: dict[Stage, frozenset[Stage]] = {
    Stage.REGISTERED: frozenset({Stage.APPROVED, Stage.RETIRED}),
    Stage.APPROVED: frozenset({*_ROLLOUT, Stage.RETIRED}),
    Stage.SHADOW: frozenset({Stage.CANARY, Stage.PRODUCTION, Stage.APPROVED, Stage.RETIRED}),
    Stage.CANARY: frozenset({Stage.PRODUCTION, Stage.APPROVED, Stage.RETIRED}),
    Stage.PRODUCTION: frozenset({Stage.APPROVED, Stage.REGISTERED, Stage.RETIRED}),
    Stage.RETIRED: frozenset(),
}


def allowed(current: Stage, target: Stage, *, require_approval: bool) -> bool:
    """Whether a version may move from ``current`` to ``target``.

    >>> allowed(Stage.REGISTERED, Stage.PRODUCTION, require_approval=True)
    False
    >>> allowed(Stage.REGISTERED, Stage.PRODUCTION, require_approval=False)
    True
    >>> allowed(Stage.RETIRED, Stage.APPROVED, require_approval=False)
    False
    """
    if target in _NEXT[current]:
        return True
    return not require_approval and current is Stage.REGISTERED and target in _ROLLOUT


def why_not(current: Stage, target: Stage, *, require_approval: bool) -> str | None:
    """None when the move is allowed, else one sentence saying why not.

    >>> why_not(Stage.REGISTERED, Stage.CANARY, require_approval=True)
    'a registered version must be approved before it goes to canary'
    """
    if allowed(current, target, require_approval=require_approval):
        return None
    if current is Stage.RETIRED:
        return "a retired version stays retired; register a new version instead"
    if current is target:
        return f"the version is already in {target}"
    if current is Stage.REGISTERED and target in _ROLLOUT:
        return f"a registered version must be approved before it goes to {target}"
    if target is Stage.APPROVED:
        return "a version becomes approved through approvals, not by a stage change"
    return f"no transition from {current} to {target}"


def serves(stage: Stage, *, require_approval: bool, model_has_production: bool) -> str | None:
    """None when a version in ``stage`` takes its model's requests, else why it does not.

    A model with a version in production sends its requests to its production versions only;
    one without sends them to every version that may serve (approved ones when approval is
    required, any but retired ones otherwise), as before governance existed. A canary serves
    its share of the requests (the router splits them per request: ``canary.py``); a shadow
    version serves none (it is sent mirrored copies).

    >>> serves(Stage.APPROVED, require_approval=True, model_has_production=False) is None
    True
    >>> serves(Stage.REGISTERED, require_approval=True, model_has_production=False)
    'not approved'
    >>> serves(Stage.APPROVED, require_approval=True, model_has_production=True)
    'not in production (another version is)'
    >>> serves(Stage.CANARY, require_approval=True, model_has_production=True) is None
    True
    """
    if stage is Stage.RETIRED:
        return "retired"
    if stage is Stage.SHADOW:
        return "in shadow (it only sees mirrored requests)"
    if stage is Stage.CANARY:
        return None
    if require_approval and stage not in APPROVED_OR_LATER:
        return "not approved"
    if model_has_production and stage is not Stage.PRODUCTION:
        return "not in production (another version is)"
    return None
