"""Words for counts, the same wherever a count is printed."""

from __future__ import annotations


def plural(n: int, word: str, words: str | None = None) -> str:
    """``n`` and the word, singular for exactly one.

    >>> plural(1, "chip"), plural(0, "record"), plural(2, "replica"), plural(3, "x", "xs!")
    ('1 chip', '0 records', '2 replicas', '3 xs!')
    """
    return f"{n} {word if n == 1 else (words or word + 's')}"
