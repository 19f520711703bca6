"""The ``drift`` section: drift detection, off the request path (docs/observability.md#drift).
Off by default: the request path then only checks that it is off."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from inferplane.config.problems import Section, invalid


class DriftConfig(Section):
    """How each model's traffic is compared with its reference window."""

    enabled: bool = False
    # the first this many sampled requests of a model (or tenant) after start or reset
    reference_size: int = Field(200, ge=10, le=10_000)
    # the latest this many sampled requests, compared with the reference
    window_size: int = Field(200, ge=10, le=10_000)
    # below this many in either window a feature's verdict is "insufficient data"
    min_samples: int = Field(100, ge=10, le=10_000)
    # the chance a stable workload raises any alarm in one evaluation of one model (split
    # evenly between its features: Bonferroni)
    alpha: float = Field(0.001, gt=0, lt=1)
    # the prompt's embedding (all-MiniLM-L6-v2, shipped in a package) for the topic test
    embeddings: bool = True
    # the share of requests looked at (1: every one)
    sample_rate: float = Field(1.0, gt=0, le=1)
    # re-test a window after this many new samples
    evaluate_every: int = Field(25, ge=1, le=10_000)
    # relabellings for the embedding test's permutation p-value
    permutations: int = Field(200, ge=20, le=10_000)
    # finished requests waiting for the worker; more are dropped (and counted)
    queue_size: int = Field(1024, ge=1, le=1_000_000)
    # tenants tracked on their own per model (the busiest first come); others only in the model's
    max_tenants: int = Field(20, ge=0, le=1000)

    @model_validator(mode="after")
    def _min_fits(self) -> Self:
        if self.min_samples > min(self.reference_size, self.window_size):
            raise invalid("drift_min_samples",
                          f"min_samples ({self.min_samples}) is larger than a window "
                          f"({min(self.reference_size, self.window_size)}): no verdict could "
                          "ever be reached", "lower min_samples, or raise reference_size and "
                          "window_size", field="min_samples")
        return self
