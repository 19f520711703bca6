"""The ``governance`` section: whether a model version must be approved before it serves, by
how many people, what its model card must hold, whether an evaluation must have passed, and
how fast kills and stage changes reach every gateway process, and the staged rollout's gates
(docs/governance.md).
``inferplane.config`` re-exports every class here."""

from __future__ import annotations

from pydantic import Field, field_validator

from inferplane.config.problems import Section, invalid, one_of

# What a model card can be required to hold: its metadata keys, then its sections.
CARD_METADATA = ("license", "base_model", "datasets", "model-index")
CARD_SECTIONS = ("intended_use", "out_of_scope_use", "limitations", "risks", "training_data",
                 "evaluation", "environmental_impact")
DEFAULT_CARD_FIELDS = ["license", "intended_use", "out_of_scope_use", "limitations", "risks",
                       "training_data"]


class RolloutConfig(Section):
    """The staged rollout: how often each gateway process judges a candidate (shadow or canary)
    against its production incumbent, over which window of the ledger, with which gates; and
    how many shadow requests a process sends at once."""

    check_interval_s: float = Field(2.0, gt=0, le=3600)
    window_s: float = Field(60.0, gt=0, le=86_400)
    min_requests: int = Field(20, ge=1)  # the candidate's, in the window, before any verdict
    max_error_rate: float = Field(0.05, ge=0, le=1)  # the candidate's own
    max_error_rate_increase: float = Field(0.02, ge=0, le=1)  # over the incumbent's
    max_ttft_p95_ratio: float = Field(1.5, gt=0)  # candidate p95 / incumbent p95
    max_cost_ratio: float = Field(1.5, gt=0)  # candidate cost per 1M tokens / incumbent's
    shadow_concurrency: int = Field(8, ge=1, le=1024)  # more at once are dropped (counted)


class GovernanceConfig(Section):
    """Model lifecycle rules. Without the section nothing needs approval, as before."""

    require_approval: bool = False  # a version serves only once approved
    approvals: int = Field(1, ge=1, le=10)  # distinct approvers, none of them its proposer
    require_evaluation: bool = False  # approval also needs the latest evaluation passed
    # what a card must hold before approval: metadata keys (license, base_model, datasets,
    # model-index) and section keys (intended_use, out_of_scope_use, limitations, risks,
    # training_data, evaluation)
    card_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_CARD_FIELDS))
    poll_interval_ms: int = Field(250, gt=0, le=500)  # changes reach every process within
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    # the model evaluation suites' judge checks ask (inferplane eval), unless --judge names one
    judge_model: str | None = Field(None, min_length=1, examples=["chat-large"])

    @field_validator("card_fields")
    @classmethod
    def _known_fields(cls, names: list[str]) -> list[str]:
        known = (*CARD_METADATA, *CARD_SECTIONS)
        for name in names:
            if name not in known:
                raise invalid("card_field", f"unknown model card field '{name}'",
                              one_of(name, known))
        return names
