"""Energy per request of an engine whose steps Inferplane cannot see (a managed vLLM or SGLang
server), from a device counter read between requests (pure: readings and token counts are fed
in, no clock, no device).

The counter (NVML's total energy of the engine's GPUs, ``energy_counters.NvmlCounter``) is read
at every request's start and end and every tick; the joules between two readings are that
*interval's*: the set of open requests changes only at a reading, so no request is given
energy used before it opened (the idle watts before it, or others' work).
Each interval's joules are split among the requests open during it in proportion to the tokens
each put through: output tokens counted as they stream, the prompt's when the request's first
byte comes back (its prompt has been read by then); tokens not seen by then, at its end, from
its final usage. An interval waits to be split until every request open in it has started (a
prompt read in it is counted only at the request's first byte, later): it is then split by the
tokens its requests counted from its start on. An interval with no request open is *idle*,
charged to nobody and reported apart. A request's end splits every interval it was open in
that still waits (by the tokens counted so far; equally where none were).

So, as with the embedded engine's per-step split (``energy.py``), the requests' joules plus the
idle joules equal the counter's delta exactly over any run: the method is ``measured``.
"""

from __future__ import annotations

from collections.abc import Callable

from inferplane.metering.energy import apportion


class IntervalEnergy:
    """
    >>> e = IntervalEnergy(first_reading_j=1000.0)
    >>> e.open("a", 1000.0); e.open("b", 1000.0)
    >>> e.tokens("a", 30); e.tokens("b", 10)
    >>> e.reading(1040.0)   # 40 J: 30 to a, 10 to b
    >>> e.close("b", 1050.0, remaining_tokens=0)   # 10 J more, split equally: b ends on 15 J
    15.0
    >>> e.close("a", 1050.0, remaining_tokens=0)   # nothing since: a has 30 + 5
    35.0
    >>> e.reading(1060.0); e.idle_j
    10.0
    """

    def __init__(self, first_reading_j: float) -> None:
        self._last = first_reading_j
        self._tokens: dict[str, float] = {}  # open requests: tokens in the current interval
        self._joules: dict[str, float] = {}  # open requests: joules so far
        self._unstarted: set[str] = set()  # open requests whose prompt is not counted yet
        # intervals not split yet: their joules, and their requests' tokens from their start on
        self._waiting: list[tuple[float, dict[str, float]]] = []
        self.idle_j = 0.0
        self.charged_j = 0.0

    @property
    def open_requests(self) -> int:
        return len(self._tokens)

    def open(self, request_id: str, total_j: float) -> None:
        """The request starts, the counter reading ``total_j``: the interval before ends."""
        self.reading(total_j)
        self._tokens[request_id] = 0.0
        self._joules[request_id] = 0.0
        self._unstarted.add(request_id)

    def started(self, request_id: str, prompt_tokens: float) -> None:
        """The request's first byte came back: its prompt, ``prompt_tokens`` long, was read."""
        self._unstarted.discard(request_id)
        self.tokens(request_id, prompt_tokens)

    def tokens(self, request_id: str, count: float) -> None:
        """``count`` tokens of an open request went through the engine."""
        if request_id in self._tokens and count > 0:
            self._tokens[request_id] += count
            self._unstarted.discard(request_id)

    def reading(self, total_j: float) -> None:
        """The counter reads ``total_j``: the interval since the last reading ends."""
        delta, self._last = max(0.0, total_j - self._last), total_j
        if not self._tokens:
            self.idle_j += delta
            return
        for _, counted in self._waiting:
            for name in counted:
                counted[name] += self._tokens[name]
        self._waiting.append((delta, dict(self._tokens)))
        for name in self._tokens:
            self._tokens[name] = 0.0
        self._split(lambda counted: not (self._unstarted & counted.keys())
                    and any(counted.values()))

    def _split(self, ready: Callable[[dict[str, float]], bool]) -> None:
        """The waiting intervals that are ``ready``, split by their requests' tokens."""
        still: list[tuple[float, dict[str, float]]] = []
        for delta, counted in self._waiting:
            if not ready(counted):
                still.append((delta, counted))
                continue
            names = list(counted)
            for name, joules in zip(names, apportion(delta, [counted[n] for n in names]),
                                    strict=True):
                self._joules[name] += joules
            self.charged_j += delta
        self._waiting = still

    def close(self, request_id: str, total_j: float, remaining_tokens: float) -> float:
        """The request ended with ``remaining_tokens`` not counted yet, the counter reading
        ``total_j``: its joules."""
        self.started(request_id, remaining_tokens)
        self.reading(total_j)
        self._split(lambda counted: request_id in counted)
        self._tokens.pop(request_id, None)
        return self._joules.pop(request_id, 0.0)

    def abandon(self, request_id: str, total_j: float) -> float:
        """The request failed: what it had used, as :meth:`close` without tokens to add."""
        return self.close(request_id, total_j, 0.0)
