"""The ``drift`` section: off by default, its bounds, and a min_samples no window can reach
reported with its line and fix."""

from __future__ import annotations

from inferplane.config import DriftConfig, parse_config
from inferplane.providers.base import provider_names

KNOWN = provider_names()


def test_off_by_default_and_read_from_the_file() -> None:
    config, problems = parse_config("", known_providers=KNOWN)
    assert config is not None and not problems
    assert config.drift == DriftConfig() and not config.drift.enabled
    config, problems = parse_config(
        "drift: {enabled: true, window_size: 400, sample_rate: 0.5}\n", known_providers=KNOWN)
    assert config is not None and not problems, problems
    assert config.drift.enabled and config.drift.window_size == 400
    assert config.drift.sample_rate == 0.5


def test_problems_are_located() -> None:
    text = "drift:\n  enabled: true\n  reference_size: 50\n  min_samples: 80\n"
    config, problems = parse_config(text, "inferplane.yaml", known_providers=KNOWN)
    assert config is None and len(problems) == 1
    problem = str(problems[0])
    assert "min_samples (80) is larger than a window (50)" in problem
    assert "lower min_samples" in problem and "drift" in problem
    _, problems = parse_config("drift: {alpha: 0}\n", known_providers=KNOWN)
    assert problems and "alpha" in str(problems[0])
    _, problems = parse_config("drift: {sample_rate: 1.5}\n", known_providers=KNOWN)
    assert problems and "sample_rate" in str(problems[0])
