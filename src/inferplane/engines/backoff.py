"""How long a supervisor waits before it starts a dead engine again (pure).

Both supervisors (the embedded engine's worker, ``supervisor.py``; an engine server,
``managed.py``) double the wait after each failed run, from ``first_s`` up to ``max_s``, and go
back to ``first_s`` once a run got as far as serving.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Backoff:
    """
    >>> b = Backoff(first_s=0.5, max_s=2.0)
    >>> [b.next() for _ in range(4)]
    [0.5, 1.0, 2.0, 2.0]
    >>> b.reset(); b.next()
    0.5
    """

    first_s: float = 0.5
    max_s: float = 10.0
    _current: float = 0.0

    def next(self) -> float:
        """The wait before the next start, each one twice the last, capped."""
        self._current = self.first_s if self._current == 0.0 else min(self._current * 2,
                                                                        self.max_s)
        return self._current

    def reset(self) -> None:
        """A run served: the next failure waits ``first_s`` again."""
        self._current = 0.0
