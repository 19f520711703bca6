"""The reference and current windows of one model (or one model and tenant), and the verdict
of each feature's test between them. Pure: numpy, and the random generator it is given.

The reference is the first ``reference_size`` samples after the start (or the reset); the
current window the latest ``window_size`` since. Each feature is tested when both windows hold
``min_samples``; below that its verdict is insufficient data (no p-value, never drifted).
Drift is declared where the p-value is under ``alpha / k``, k the number of features tested
(Bonferroni: the chance that a stable workload raises any alarm in one evaluation is at most
``alpha``).

>>> w = Windows(reference_size=4, window_size=4)
>>> for n in (10, 11, 12, 13, 50, 51, 52, 53):
...     w.add(Sample(n, 5, "stop", "ok", False, "latin", None))
>>> rows = w.evaluate("m", None, min_samples=4, alpha=0.01, permutations=0,
...                   rng=np.random.default_rng(0))
>>> [(r.feature, r.statistic, r.drifted) for r in rows if r.feature.endswith("tokens")]
[('prompt_tokens', 1.0, False), ('completion_tokens', 0.0, False)]
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from inferplane.drift.features import Sample
from inferplane.drift.stats import TestResult, chi_squared, ks_two_sample, mmd_permutation

Samples = Sequence[Sample]


@dataclass(frozen=True, slots=True)
class Report:
    """One feature's verdict, in the shape ``GET /admin/v1/drift`` returns."""

    model: str
    tenant: str | None
    feature: str
    test: str
    statistic: float
    p_value: float | None  # None: insufficient data
    threshold: float  # drift where p_value < threshold
    drifted: bool
    reference_n: int
    current_n: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _categories(pick: Callable[[Sample], str]) -> Callable[[Samples, Samples], TestResult]:
    def test(reference: Samples, current: Samples) -> TestResult:
        return chi_squared(Counter(pick(s) for s in reference), Counter(pick(s) for s in current))
    return test


def _numbers(pick: Callable[[Sample], float]) -> Callable[[Samples, Samples], TestResult]:
    def test(reference: Samples, current: Samples) -> TestResult:
        return ks_two_sample([pick(s) for s in reference], [pick(s) for s in current])
    return test


@dataclass(frozen=True, slots=True)
class Feature:
    name: str
    test: str  # the test's name, as reported
    run: Callable[[Samples, Samples], TestResult]


#: The features tested on every window pair, in report order; the embedding test
#: (``topic``) is added where both windows hold embeddings.
FEATURES = (
    Feature("prompt_tokens", "ks", _numbers(lambda s: s.prompt_tokens)),
    Feature("completion_tokens", "ks", _numbers(lambda s: s.completion_tokens)),
    Feature("finish_reason", "chi2", _categories(lambda s: s.finish_reason)),
    Feature("outcome", "chi2", _categories(lambda s: s.outcome)),
    Feature("refusal", "chi2", _categories(lambda s: "yes" if s.refused else "no")),
    Feature("script", "chi2", _categories(lambda s: s.script)),
)
TOPIC = "topic"
FEATURE_NAMES = (*(f.name for f in FEATURES), TOPIC)


class Windows:
    """The reference window and the sliding current one of one model (or model and tenant)."""

    __slots__ = ("current", "reference", "reference_size", "since_evaluated")

    def __init__(self, reference_size: int, window_size: int) -> None:
        self.reference_size = reference_size
        self.reference: list[Sample] = []
        self.current: deque[Sample] = deque(maxlen=window_size)
        self.since_evaluated = 0

    def add(self, sample: Sample) -> None:
        if len(self.reference) < self.reference_size:
            self.reference.append(sample)
        else:
            self.current.append(sample)
        self.since_evaluated += 1

    def reset(self) -> None:
        """The current window becomes the reference (the traffic now is the new normal);
        the current window starts empty."""
        self.reference = list(self.current)[-self.reference_size:]
        self.current.clear()
        self.since_evaluated = 0

    def evaluate(self, model: str, tenant: str | None, *, min_samples: int, alpha: float,
                 permutations: int, rng: np.random.Generator) -> list[Report]:
        """Every feature's verdict between the two windows as they are now."""
        self.since_evaluated = 0
        reference, current = self.reference, list(self.current)
        n_ref, n_cur = len(reference), len(current)
        ref_vectors = [s.embedding for s in reference if s.embedding is not None]
        cur_vectors = [s.embedding for s in current if s.embedding is not None]
        embedded = bool(ref_vectors) or bool(cur_vectors)
        tested = len(FEATURES) + (1 if embedded else 0)
        threshold = alpha / tested
        enough = n_ref >= min_samples and n_cur >= min_samples
        rows: list[Report] = []
        for feature in FEATURES:
            result = feature.run(reference, current) if enough else None
            rows.append(_row(model, tenant, feature.name, feature.test, result, threshold,
                             n_ref, n_cur))
        if embedded:
            n_ref, n_cur = len(ref_vectors), len(cur_vectors)
            result = None
            if n_ref >= min_samples and n_cur >= min_samples:
                result = mmd_permutation(np.stack(ref_vectors), np.stack(cur_vectors),
                                         permutations, rng)
            rows.append(_row(model, tenant, TOPIC, "mmd", result, threshold, n_ref, n_cur))
        return rows


def _row(model: str, tenant: str | None, feature: str, test: str, result: TestResult | None,
         threshold: float, n_ref: int, n_cur: int) -> Report:
    if result is None:
        return Report(model, tenant, feature, test, 0.0, None, threshold, False, n_ref, n_cur)
    return Report(model, tenant, feature, test, result.statistic, result.p_value, threshold,
                  result.p_value < threshold, n_ref, n_cur)
