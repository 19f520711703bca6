"""The four-eyes rule: who may approve a version, and when its approvals are enough.

An approval counts when it comes from an identity holding the ``approve`` scope that is not
the version's proposer (the identity that registered it, or any that wrote its model card)
and has not approved it already, once the card holds every required field and, when
evaluation is required, the latest evaluation passed. ``required`` distinct approvals make the
version approved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inferplane.errors import Conflict, GovernanceRefused, InferplaneError, SelfApproval


@dataclass(frozen=True, slots=True)
class Proposal:
    """What the rule looks at for one version."""

    version: str
    proposers: frozenset[str]  # who registered it and who wrote its card
    approvers: frozenset[str]  # who approved it so far
    missing_card_fields: Sequence[str]
    evaluation_passed: bool | None  # None: no evaluation recorded
    retired: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """An approval that counts: the approvals after it, and whether they are enough."""

    count: int
    required: int

    @property
    def enough(self) -> bool:
        return self.count >= self.required


def judge(proposal: Proposal, actor: str, required: int, *, require_evaluation: bool
          ) -> Verdict | InferplaneError:
    """The verdict on ``actor`` approving ``proposal``, or the error refusing it.

    >>> p = Proposal("v2", frozenset({"key:alice"}), frozenset(), [], None)
    >>> judge(p, "key:bob", 2, require_evaluation=False)
    Verdict(count=1, required=2)
    >>> judge(p, "key:alice", 2, require_evaluation=False).code
    'self_approval'
    """
    v = proposal.version
    if proposal.retired:
        return GovernanceRefused(f"The version '{v}' is retired; it cannot be approved.")
    if actor in proposal.proposers:
        return SelfApproval(
            f"{actor} proposed the version '{v}' (registered it or wrote its card) and may not "
            "approve it: four eyes means another identity with the 'approve' scope.")
    if actor in proposal.approvers:
        return Conflict(f"{actor} has already approved the version '{v}'.")
    if proposal.missing_card_fields:
        return GovernanceRefused(
            f"The version '{v}' cannot be approved: its model card lacks "
            f"{', '.join(proposal.missing_card_fields)}. Store a complete card with "
            f"`inferplane models card {v} --edit FILE`.", code="card_incomplete")
    if require_evaluation and not proposal.evaluation_passed:
        state = "has no evaluation" if proposal.evaluation_passed is None else (
            "failed its latest evaluation")
        return GovernanceRefused(
            f"The version '{v}' cannot be approved: it {state}, and governance requires a "
            "passed evaluation.", code="evaluation_required")
    return Verdict(len(proposal.approvers) + 1, required)

