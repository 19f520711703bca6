"""Whether two answers to paraphrased questions are the same answer: how verification judges
a kept answer against the one the upstream gave (the registry :data:`COMPARERS`, by the
``semantic.compare`` setting)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

from inferplane.cache.embedder import Embedder

Comparer = Callable[[str, str, Embedder, float], Awaitable[bool]]


def same_text(kept: str, fresh: str) -> bool:
    """Equal once whitespace is normalised.

    >>> same_text("Paris.\\n", " Paris."), same_text("Paris.", "Lyon.")
    (True, False)
    """
    return kept.split() == fresh.split()


async def _exact(kept: str, fresh: str, embedder: Embedder, threshold: float) -> bool:
    """The same text: for deterministic answers."""
    return same_text(kept, fresh)


async def _embedding(kept: str, fresh: str, embedder: Embedder, threshold: float) -> bool:
    """Their embeddings' cosine similarity reaches ``threshold`` (equal texts always do)."""
    if same_text(kept, fresh):
        return True
    a, b = await embedder.embed([kept, fresh])
    return float(a @ b) >= threshold


COMPARERS: Final[dict[str, Comparer]] = {"exact": _exact, "embedding": _embedding}
