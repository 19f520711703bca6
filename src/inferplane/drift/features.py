"""What one finished request contributes to drift detection, computed off the request path:
its prompt's script (or ``code``), whether its answer is a refusal, its outcome class. Pure.

>>> script_of("How do I reset my password?"), script_of("Как сбросить пароль?")
('latin', 'cyrillic')
>>> script_of("如何重置密码"), script_of("def f(x):\\n    return x + 1")
('han', 'code')
>>> script_of("1234 !!"), refused("I'm sorry, but I can't help with that.", "stop")
('none', True)
>>> outcome(200), outcome(429), outcome(502), outcome(499)
('ok', 'client_error', 'server_error', 'cancelled')
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

#: How much of a text is read for its script and code-likeness (characters).
SCAN_CHARS = 600
#: The first word of a letter's Unicode name -> its script (others count as ``other``).
SCRIPTS = {
    "LATIN": "latin", "CYRILLIC": "cyrillic", "GREEK": "greek", "ARABIC": "arabic",
    "HEBREW": "hebrew", "DEVANAGARI": "devanagari", "THAI": "thai", "HANGUL": "hangul",
    "HIRAGANA": "kana", "KATAKANA": "kana", "CJK": "han", "BENGALI": "bengali",
    "TAMIL": "tamil", "GEORGIAN": "georgian", "ARMENIAN": "armenian",
}
#: Every value :func:`script_of` may give: a bounded label set.
SCRIPT_VALUES = frozenset({*SCRIPTS.values(), "other", "none", "code"})
_CODE_LINE = re.compile(
    r"^\s*(def |class |import |from \S+ import|return\b|#include|function\b|const |let |var |"
    r"public |private |fn |func |package |SELECT |if \(|for \(|while \(|}|\{|@\w+)",
    re.MULTILINE)
_CODE_MARKS = re.compile(r"[{};=<>\[\]]|\w\(|::|->|=>|\+\+|==|!=")
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry,? (but )?i|i can(no|')t (help|assist|comply|provide|do)"
    r"|i cannot (help|assist|comply|provide|do)|i (won'?t|will not|am unable to|'m unable to)"
    r"|as an ai\b|i must decline)", re.IGNORECASE)
_OUTCOMES = {2: "ok", 4: "client_error", 5: "server_error"}


def code_like(text: str) -> bool:
    """Whether ``text`` reads as source code: a fenced block, two lines that start like code,
    or punctuation typical of code in more than 4% of its characters."""
    if "```" in text:
        return True
    if len(_CODE_LINE.findall(text)) >= 2:
        return True
    return len(text) >= 20 and len(_CODE_MARKS.findall(text)) > 0.04 * len(text)


def script_of(text: str) -> str:
    """The script most of the letters in ``text`` are written in (lower case, one of
    :data:`SCRIPT_VALUES`), ``code`` when it reads as code, ``none`` when it has no letters."""
    head = text[:SCAN_CHARS]
    if code_like(head):
        return "code"
    counts: dict[str, int] = {}
    for ch in head:
        if ch.isascii():
            if ch.isalpha():
                counts["latin"] = counts.get("latin", 0) + 1
            continue
        if not ch.isalpha():
            continue
        word = unicodedata.name(ch, "OTHER").split(" ", 1)[0]
        script = SCRIPTS.get(word, "other")
        counts[script] = counts.get(script, 0) + 1
    if not counts:
        return "none"
    return max(counts.items(), key=lambda kv: kv[1])[0]


def refused(completion: str, finish_reason: str | None) -> bool:
    """Whether the answer declines: the content filter stopped it, or it opens like an
    English refusal ("I'm sorry, but I can't ...")."""
    return finish_reason == "content_filter" or bool(_REFUSAL.match(completion[:200]))


def outcome(status: int) -> str:
    """The request's outcome class: ok, client_error, server_error, or cancelled (499)."""
    if status == 499:
        return "cancelled"
    return _OUTCOMES.get(status // 100, "server_error")


class EndedRequest(NamedTuple):
    """What the request path hands over at the end of a request: counts and labels, and the
    two texts, which live only until the worker has read them (never stored or exported).
    A tuple: the cheapest thing to make on the request path."""

    model: str
    tenant: str | None
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None
    status: int
    prompt: str
    completion: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One request's features, as the windows keep them (no text)."""

    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "none" when it did not finish (an error)
    outcome: str
    refused: bool
    script: str
    embedding: npt.NDArray[np.float32] | None  # the prompt's, where embeddings are on


def sample(done: EndedRequest, embedding: npt.NDArray[np.float32] | None) -> Sample:
    return Sample(done.prompt_tokens, done.completion_tokens, done.finish_reason or "none",
                  outcome(done.status), refused(done.completion, done.finish_reason),
                  script_of(done.prompt), embedding)
