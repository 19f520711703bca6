"""A judge model's verdict on a kept answer: is it a right answer to the new question, given
the answer the upstream just gave to it? (``compare: judge``.) The question to the judge and the
reading of its verdict are pure; the judge is a model of this gateway, asked through the
gateway's own requests (one ledger record per verdict, for the request that caused it)."""

from __future__ import annotations

import re
import uuid

from inferplane.cache.embedder import JUDGING, Caller, OwnRequests
from inferplane.protocol.types import GenerationRequest, Message, SamplingParams

INSTRUCTIONS = (
    "You check answers. You get a question, a reference answer to it, and a candidate answer. "
    "Reply SAME when the candidate gives the same information as the reference in answer to "
    "this question (the wording may differ), and DIFFERENT when it does not: another fact, "
    "number, entity, order or polarity, or an answer to another question. Reply with the one "
    "word only."
)
_VERDICT = re.compile(r"\b(SAME|DIFFERENT)\b", re.IGNORECASE)
VERDICT_TOKENS = 8  # room for the word, whatever the judge's tokenizer


def judge_messages(question: str, reference: str, candidate: str) -> tuple[Message, ...]:
    """What the judge is asked: the instructions, then the three texts, each marked.

    >>> [m.role for m in judge_messages("q", "a", "b")]
    ['system', 'user']
    """
    body = (f"Question:\n{question}\n\nReference answer:\n{reference}\n\n"
            f"Candidate answer:\n{candidate}\n\nSAME or DIFFERENT?")
    return (Message("system", INSTRUCTIONS), Message("user", body))


def verdict(reply: str) -> bool | None:
    """The judge's reply read as a verdict: True (same), False (different), None (neither
    word, or both: no verdict, so no observation).

    >>> verdict("SAME"), verdict(" different."), verdict("Same answer"), verdict("maybe")
    (True, False, True, None)
    >>> verdict("SAME or DIFFERENT") is None
    True
    """
    words = {m.upper() for m in _VERDICT.findall(reply)}
    return None if len(words) != 1 else words == {"SAME"}


class Judge:
    """A model of this gateway that judges answers (``semantic.judge``)."""

    def __init__(self, model: str, own: OwnRequests) -> None:
        self.model = model
        self.own = own

    async def same(self, question: str, reference: str, candidate: str,
                   caller: Caller | None) -> bool | None:
        req = GenerationRequest(
            id=f"judge-{uuid.uuid4().hex}", endpoint="chat.completions", model=self.model,
            params=SamplingParams(max_tokens=VERDICT_TOKENS, temperature=0.0),
            messages=judge_messages(question, reference, candidate))
        return verdict(await self.own.answer(req, caller, JUDGING))
