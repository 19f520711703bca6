"""Stop-string matching over streamed text, holding back what might become a stop string."""

from __future__ import annotations


class Stopper:
    """Feed text pieces; get back the text that is safe to emit.

    Text that could be the start of a stop string is held back until the next piece decides.

    >>> s = Stopper(("END",))
    >>> s.feed("hello E"), s.stopped
    ('hello ', False)
    >>> s.feed("ND more"), s.stopped, s.matched
    ('', True, 'END')
    """

    __slots__ = ("_held", "_longest", "_stops", "matched", "stopped")

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = tuple(s for s in stops if s)
        self._longest = max((len(s) for s in self._stops), default=0)
        self._held = ""
        self.stopped = False
        self.matched: str | None = None  # the stop string that ended the text

    def feed(self, piece: str) -> str:
        if self.stopped:
            return ""
        if not self._stops:
            return piece
        text = self._held + piece
        cut = self._first_stop(text)
        hold = self._partial_start(text, len(text) if cut < 0 else cut)
        if hold is not None:  # a stop may begin here and end in a later piece: wait for it
            self._held = text[hold:]
            return text[:hold]
        self._held = ""
        if cut >= 0:
            self._stop_at(text, cut)
            return text[:cut]
        return text

    def flush(self) -> str:
        """The held-back text, once generation ended for another reason."""
        held, self._held = self._held, ""
        if self.stopped:
            return ""
        cut = self._first_stop(held)
        if cut >= 0:
            self._stop_at(held, cut)
            return held[:cut]
        return held

    def _stop_at(self, text: str, cut: int) -> None:
        self.stopped = True
        self.matched = next(s for s in self._stops if text.startswith(s, cut))

    def _first_stop(self, text: str) -> int:
        """Where the earliest complete stop string begins, or -1."""
        return min((i for i in (text.find(s) for s in self._stops) if i >= 0), default=-1)

    def _partial_start(self, text: str, before: int) -> int | None:
        """The earliest index below ``before`` from which the rest of ``text`` is a proper
        prefix of a stop string (a stop that could still complete), or None."""
        for i in range(max(0, len(text) - self._longest + 1), before):
            tail = text[i:]
            if any(len(tail) < len(s) and s.startswith(tail) for s in self._stops):
                return i
        return None
