"""Faults queued through the control API, and the delivery plan each one turns into.

A fault is a JSON object ``{"kind": ..., "count": 1, "path": None, "protocol": None, ...}``.
The next inference request whose path starts with ``path`` (and whose protocol is
``protocol``: openai, azure, anthropic, gemini) takes the first matching fault in queue order;
``count`` requests take it before it is gone (``-1``: until cleared). Kinds and their fields:

- ``status``: answer ``status`` (default 500) with the route's error body; ``retry_after``
  seconds adds a ``Retry-After`` header; ``message`` overrides the text.
- ``slow_first_token``: wait ``delay_ms`` before the first chunk (or before a whole body).
- ``slow_drip``: wait ``delay_ms`` before every chunk (a whole body is sent in 4 parts).
- ``reset_mid_stream``: after ``after_chunks`` chunks (default 2) abort the connection:
  ``mode`` ``"rst"`` (default) sends a TCP reset, ``"close"`` a FIN without ending the chunked
  body. A whole body is cut after its first half.
- ``malformed_json``: status 200, but the body (or the second SSE data line) is cut mid-JSON.
- ``hang``: never answer (no headers) until the client goes away; with ``after_chunks`` the
  headers and that many chunks are sent first.
- ``stream_error``: after ``after_chunks`` chunks, the protocol's in-stream error event (Anthropic
  ``event: error``, OpenAI/Gemini ``data: {"error": ...}``) for ``status`` (default: the
  protocol's overloaded status), then the stream ends. On a whole body it acts as ``status``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class Plan:
    """How one response is delivered; ``NORMAL`` is the plan of a request without a fault."""

    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    first_delay: float = 0.0
    chunk_delay: float = 0.0
    cut_after: int | None = None
    cut: str = "rst"  # "rst" | "close" | "hang" | "error"
    malformed: bool = False
    error_status: int | None = None

    @property
    def hang(self) -> bool:
        """Send nothing at all: a hang with no chunks before it."""
        return self.cut == "hang" and self.cut_after is None


NORMAL = Plan()


@dataclass(slots=True)
class Fault:
    kind: str
    count: int = 1
    path: str | None = None
    protocol: str | None = None
    status: int | None = None
    retry_after: float | None = None
    message: str | None = None
    delay_ms: float = 0.0
    after_chunks: int | None = None
    mode: str = "rst"

    def matches(self, path: str, protocol: str) -> bool:
        return ((self.path is None or path.startswith(self.path))
                and (self.protocol is None or self.protocol == protocol))

    def plan(self) -> Plan:
        return PLANS[self.kind](self)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _stream_cut(cut: str, default_after: int | None) -> Callable[[Fault], Plan]:
    def plan(f: Fault) -> Plan:
        after = default_after if f.after_chunks is None else f.after_chunks
        return Plan(cut_after=after, cut=cut, error_status=f.status)
    return plan


#: fault kind -> its delivery plan
PLANS: dict[str, Callable[[Fault], Plan]] = {
    "status": lambda f: Plan(status=f.status or 500, retry_after=f.retry_after,
                             message=f.message),
    "slow_first_token": lambda f: Plan(first_delay=f.delay_ms / 1000),
    "slow_drip": lambda f: Plan(chunk_delay=f.delay_ms / 1000),
    "reset_mid_stream": lambda f: Plan(cut_after=2 if f.after_chunks is None else f.after_chunks,
                                       cut="close" if f.mode == "close" else "rst"),
    "malformed_json": lambda f: Plan(malformed=True),
    "hang": _stream_cut("hang", None),
    "stream_error": _stream_cut("error", 2),
}

_TYPES: dict[str, tuple[type, ...]] = {
    "kind": (str,), "count": (int,), "path": (str,), "protocol": (str,), "status": (int,),
    "retry_after": (int, float), "message": (str,), "delay_ms": (int, float),
    "after_chunks": (int,), "mode": (str,),
}
_FIELDS = frozenset(f.name for f in fields(Fault))


def parse_fault(raw: Any) -> Fault:
    """A ``Fault`` from its JSON object; ``ValueError`` says what is wrong with it."""
    if not isinstance(raw, dict):
        raise ValueError("a fault is a JSON object")
    unknown = set(raw) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fault fields: {sorted(unknown)}")
    if raw.get("kind") not in PLANS:
        raise ValueError(f"kind must be one of {sorted(PLANS)}")
    for key, value in raw.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, _TYPES[key])):
            raise ValueError(f"{key}: wrong type {type(value).__name__}")
    fault = Fault(**raw)
    if fault.count == 0 or fault.count < -1:
        raise ValueError("count must be positive, or -1 for every request")
    return fault


class FaultQueue:
    """Pending faults in order; each matching request takes one use of the first that matches."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []

    def push(self, faults: list[Fault]) -> None:
        self._faults.extend(faults)

    def take(self, path: str, protocol: str) -> Fault | None:
        for i, fault in enumerate(self._faults):
            if fault.matches(path, protocol):
                if fault.count > 0:
                    fault.count -= 1
                    if fault.count == 0:
                        del self._faults[i]
                return fault
        return None

    def clear(self) -> int:
        n = len(self._faults)
        self._faults.clear()
        return n

    def pending(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults]

    def __bool__(self) -> bool:
        return bool(self._faults)
