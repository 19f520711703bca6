"""The ``systems`` section: the AI systems Inferplane serves, each a set of models and tenants
with the people responsible for it, for the EU AI Act duties (docs/compliance.md).
``inferplane.config`` re-exports every class here."""

from __future__ import annotations

from pydantic import Field

from inferplane.config.problems import Section


class SystemConfig(Section):
    """One AI system: what it is for, what serves it, who answers for it. What is left out here
    is marked TO BE COMPLETED in its technical documentation, never guessed."""

    name: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                      examples=["triage"])
    description: str | None = Field(None, min_length=1)  # what the system is
    intended_purpose: str | None = Field(None, min_length=1)  # Annex IV 1(a)
    models: list[str] = Field(min_length=1)  # the model names (not aliases) it uses
    tenants: list[str] = Field(default_factory=list)  # whose requests are the system's; []: all
    high_risk: bool = False  # an Annex III high-risk system: six months of logs at least
    provider: str | None = Field(None, min_length=1)  # who places it on the market (Art. 3(3))
    deployer: str | None = Field(None, min_length=1)  # who uses it (Art. 3(4))
