"""Whether two answers to paraphrased questions are the same answer: how verification judges
a kept answer against the one the upstream gave (the registry :data:`COMPARERS`, by the
``semantic.compare`` setting)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from inferplane.embedding import TextEncoder

Comparer = Callable[[str, str, TextEncoder, float], bool]


def _exact(kept: str, fresh: str, encoder: TextEncoder, threshold: float) -> bool:
    """Equal once whitespace is normalised: for deterministic answers.

    >>> _exact("Paris.\\n", " Paris.", None, 0.0), _exact("Paris.", "Lyon.", None, 0.0)
    (True, False)
    """
    return kept.split() == fresh.split()


def _embedding(kept: str, fresh: str, encoder: TextEncoder, threshold: float) -> bool:
    """Their embeddings' cosine similarity reaches ``threshold`` (equal texts always do)."""
    if kept.split() == fresh.split():
        return True
    a, b = encoder.encode([kept, fresh])
    return float(a @ b) >= threshold


COMPARERS: Final[dict[str, Comparer]] = {"exact": _exact, "embedding": _embedding}
