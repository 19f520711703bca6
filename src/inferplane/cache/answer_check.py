"""Whether two answers to paraphrased questions are the same answer: how verification judges
a kept answer against the one the upstream gave (the registry :data:`COMPARERS`, by the
``semantic.compare`` setting). A comparer may have no verdict (None): then nothing is learned
about the kept question."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from inferplane.cache.embedder import Caller, Embedder
from inferplane.cache.judge import Judge


@dataclass(frozen=True, slots=True)
class Answers:
    """A verification's texts: the new question, the kept answer (the candidate) and the
    upstream's answer to the new question (the reference), and the request it is for."""

    question: str
    kept: str
    fresh: str
    caller: Caller | None = None


@dataclass(frozen=True, slots=True)
class Means:
    """What comparers may use: the cache's embedder, the answer similarity that counts as the
    same (``compare: embedding``) and the judge model (``compare: judge``)."""

    embedder: Embedder
    answer_similarity: float
    judge: Judge | None = None


Comparer = Callable[[Answers, Means], Awaitable[bool | None]]


def same_text(kept: str, fresh: str) -> bool:
    """Equal once whitespace is normalised.

    >>> same_text("Paris.\\n", " Paris."), same_text("Paris.", "Lyon.")
    (True, False)
    """
    return kept.split() == fresh.split()


async def _exact(answers: Answers, means: Means) -> bool | None:
    """The same text: for deterministic answers."""
    return same_text(answers.kept, answers.fresh)


async def _embedding(answers: Answers, means: Means) -> bool | None:
    """Their embeddings' cosine similarity reaches ``answer_similarity`` (equal texts always
    do)."""
    if same_text(answers.kept, answers.fresh):
        return True
    a, b = await means.embedder.embed([answers.kept, answers.fresh], answers.caller)
    return float(a @ b) >= means.answer_similarity


async def _judge(answers: Answers, means: Means) -> bool | None:
    """The judge model's verdict (equal texts need none)."""
    if same_text(answers.kept, answers.fresh):
        return True
    assert means.judge is not None  # the configuration requires it with compare: judge
    return await means.judge.same(answers.question, answers.fresh, answers.kept,
                                  answers.caller)


COMPARERS: Final[dict[str, Comparer]] = {"exact": _exact, "embedding": _embedding,
                                         "judge": _judge}
