"""The reference and current windows of one model, and their verdicts."""

from __future__ import annotations

import numpy as np

from inferplane.drift.features import Sample
from inferplane.drift.windows import FEATURE_NAMES, Windows


def s(prompt: int = 10, finish: str = "stop", outcome: str = "ok", refused: bool = False,
      script: str = "latin", vector: np.ndarray | None = None) -> Sample:
    return Sample(prompt, 20, finish, outcome, refused, script, vector)


def evaluate(w: Windows, alpha: float = 0.01) -> dict[str, object]:
    rows = w.evaluate("m", "t", min_samples=30, alpha=alpha, permutations=100,
                      rng=np.random.default_rng(0))
    return {r.feature: r for r in rows}


def test_the_reference_fills_first_then_the_current_window_slides() -> None:
    w = Windows(reference_size=3, window_size=2)
    for n in range(6):
        w.add(s(prompt=n))
    assert [x.prompt_tokens for x in w.reference] == [0, 1, 2]
    assert [x.prompt_tokens for x in w.current] == [4, 5]
    assert w.since_evaluated == 6


def test_insufficient_data_has_no_p_value_and_no_drift() -> None:
    w = Windows(40, 40)
    for _ in range(40 + 29):
        w.add(s(finish="length"))
    rows = evaluate(w)
    assert all(r.p_value is None and not r.drifted for r in rows.values())  # type: ignore[attr-defined]
    assert rows["finish_reason"].current_n == 29  # type: ignore[attr-defined]


def test_a_shift_in_one_feature_is_drift_there_only() -> None:
    rng = np.random.default_rng(5)
    w = Windows(100, 100)
    for i in range(100):
        w.add(s(prompt=int(rng.integers(5, 50)), finish="stop" if i % 10 else "length"))
    for i in range(100):
        w.add(s(prompt=int(rng.integers(5, 50)), finish="length" if i % 2 else "stop"))
    rows = evaluate(w)
    assert set(rows) == set(FEATURE_NAMES) - {"topic"}  # no embeddings: no topic test
    assert rows["finish_reason"].drifted  # type: ignore[attr-defined]
    assert not rows["prompt_tokens"].drifted  # type: ignore[attr-defined]
    # Bonferroni: alpha split over the six features tested
    assert rows["script"].threshold == 0.01 / 6  # type: ignore[attr-defined]


def test_embeddings_add_the_topic_test() -> None:
    rng = np.random.default_rng(2)

    def unit(shift: float) -> np.ndarray:
        v = rng.normal(size=8)
        v[0] += shift
        return (v / np.linalg.norm(v)).astype(np.float32)

    w = Windows(60, 60)
    for _ in range(60):
        w.add(s(vector=unit(0.0)))
    for _ in range(60):
        w.add(s(vector=unit(4.0)))
    rows = evaluate(w)
    topic = rows["topic"]
    assert topic.test == "mmd" and topic.drifted  # type: ignore[attr-defined]
    assert topic.threshold == 0.01 / 7  # type: ignore[attr-defined]


def test_reset_makes_the_current_window_the_reference() -> None:
    w = Windows(50, 50)
    for _ in range(50):
        w.add(s(script="latin"))
    for _ in range(50):
        w.add(s(script="code"))
    assert evaluate(w)["script"].drifted  # type: ignore[attr-defined]
    w.reset()
    assert [x.script for x in w.reference] == ["code"] * 50 and not w.current
    for _ in range(50):
        w.add(s(script="code"))
    assert not evaluate(w)["script"].drifted  # type: ignore[attr-defined]
