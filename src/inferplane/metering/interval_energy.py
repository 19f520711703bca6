"""Energy per request of an engine whose steps Inferplane cannot see (a managed vLLM or SGLang
server), from a device counter read between requests (pure: readings and token counts are fed
in, no clock, no device).

The counter (NVML's total energy of the engine's GPUs, ``energy_counters.NvmlCounter``) is read
at every request's end and every tick; the joules between two readings are that *interval's*.
Each interval's joules are split among the requests open during it in proportion to the tokens
each put through in it: output tokens counted as they stream; tokens not seen as they stream
(the prompt, a relayed stream's text) in the interval the request ends in, from its final usage.
An interval with no request open is *idle*, charged to nobody and reported apart; one with
requests open but no tokens counted is split equally among them.

So, as with the embedded engine's per-step split (``energy.py``), the requests' joules plus the
idle joules equal the counter's delta exactly over any run: the method is ``measured``.
"""

from __future__ import annotations

from inferplane.metering.energy import apportion


class IntervalEnergy:
    """
    >>> e = IntervalEnergy(first_reading_j=1000.0)
    >>> e.open("a"); e.open("b")
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
        self.idle_j = 0.0
        self.charged_j = 0.0

    @property
    def open_requests(self) -> int:
        return len(self._tokens)

    def open(self, request_id: str) -> None:
        self._tokens[request_id] = 0.0
        self._joules[request_id] = 0.0

    def tokens(self, request_id: str, count: float) -> None:
        """``count`` tokens of an open request went through the engine."""
        if request_id in self._tokens and count > 0:
            self._tokens[request_id] += count

    def reading(self, total_j: float) -> None:
        """The counter reads ``total_j``: the interval since the last reading ends."""
        delta, self._last = max(0.0, total_j - self._last), total_j
        if not self._tokens:
            self.idle_j += delta
            return
        names = list(self._tokens)
        for name, joules in zip(names, apportion(delta, [self._tokens[n] for n in names]),
                                strict=True):
            self._joules[name] += joules
            self._tokens[name] = 0.0
        self.charged_j += delta

    def close(self, request_id: str, total_j: float, remaining_tokens: float) -> float:
        """The request ended with ``remaining_tokens`` not counted yet, the counter reading
        ``total_j``: its joules."""
        self.tokens(request_id, remaining_tokens)
        self.reading(total_j)
        self._tokens.pop(request_id, None)
        return self._joules.pop(request_id, 0.0)

    def abandon(self, request_id: str, total_j: float) -> float:
        """The request failed: what it had used, as :meth:`close` without tokens to add."""
        return self.close(request_id, total_j, 0.0)
