"""What each engine replica reports of its load, and the deployment's load they add up to. Pure.

A replica posts a :class:`ReplicaLoad` every ``report_interval_s``; a report older than
:data:`STALE_AFTER` intervals is dropped (a replica that died stops counting at once, not when
Serve notices it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

STALE_AFTER = 4  # report intervals


@dataclass(frozen=True, slots=True)
class ReplicaLoad:
    """One replica's engine at one moment: sequences decoding, waiting for a slot, its slots,
    the KV cache's share in use, and the requests Serve has given it (``ongoing``)."""

    replica: str
    at: float
    running: int = 0
    waiting: int = 0
    slots: int = 1
    kv_cache_usage: float = 0.0
    ongoing: int = 0
    ready: bool = True
    pid: int = 0  # the replica's process (to find it on its node)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReplicaLoad:
        return cls(**{k: data[k] for k in cls.__slots__ if k in data})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fresh(reports: Iterable[ReplicaLoad], now: float, interval_s: float) -> list[ReplicaLoad]:
    """The reports recent enough to stand for a live replica, by replica name.

    >>> old, new = ReplicaLoad("a", at=0.0), ReplicaLoad("b", at=9.0)
    >>> [r.replica for r in fresh([old, new], now=10.0, interval_s=0.5)]
    ['b']
    """
    horizon = now - STALE_AFTER * interval_s
    return sorted((r for r in reports if r.at >= horizon), key=lambda r: r.replica)


def summary(replicas: list[ReplicaLoad]) -> dict[str, Any]:
    """The deployment's load: totals over its ready replicas, and each replica's own.

    ``in_flight`` is what the replicas hold (running plus waiting, or Serve's ongoing count
    where that is higher: requests between the proxy and the engine); ``capacity`` their slots.

    >>> s = summary([ReplicaLoad("a", 0, running=2, waiting=1, slots=2, kv_cache_usage=0.5),
    ...              ReplicaLoad("b", 0, running=0, slots=2)])
    >>> [s[k] for k in ("replicas", "running", "waiting", "in_flight", "capacity")]
    [2, 2, 1, 3, 4]
    >>> s["kv_cache_usage"]
    0.25
    """
    ready = [r for r in replicas if r.ready]
    return {
        "replicas": len(ready),
        "running": sum(r.running for r in ready),
        "waiting": sum(r.waiting for r in ready),
        "in_flight": sum(max(r.running + r.waiting, r.ongoing) for r in ready),
        "capacity": sum(r.slots for r in ready),
        "kv_cache_usage": (sum(r.kv_cache_usage for r in ready) / len(ready)) if ready else 0.0,
        "per_replica": [r.to_dict() for r in replicas],
    }
