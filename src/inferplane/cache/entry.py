"""What the cache keeps of an answer, its bytes, and the events that replay it.

An entry holds the answer's text, why it ended, its usage (what the client is told on a hit)
and what producing it cost (:class:`Saved`: what a hit saves). Tool calls are never kept
(``policy.storable``). Entries are JSON with a format version and the digest of their key:
bytes of another version, another key or no valid form at all read as a miss.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any, cast, get_args

import orjson

from inferplane.protocol.types import (
    Finished,
    FinishReason,
    StreamEvent,
    TextDelta,
    Usage,
)

FORMAT = 1
_FINISH_REASONS = frozenset(get_args(FinishReason))


@dataclass(frozen=True, slots=True)
class Saved:
    """What the request that produced an entry cost: what each hit on it saves."""

    cost_usd: float = 0.0
    energy_j: float | None = None
    co2_g: float | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    digest: str  # the key's digest, checked on reading
    text: str
    finish_reason: FinishReason
    usage: Usage
    saved: Saved
    created: float  # Unix time it was kept
    stop_sequence: str | None = None
    deployment: str | None = None  # the deployment that produced it


def encode(entry: Entry) -> bytes:
    u, s = entry.usage, entry.saved
    return orjson.dumps({
        "v": FORMAT, "digest": entry.digest, "text": entry.text,
        "finish": entry.finish_reason, "stop": entry.stop_sequence,
        "usage": [u.prompt_tokens, u.completion_tokens, u.cached_tokens,
                  u.cache_write_tokens, u.reasoning_tokens],
        "saved": [s.cost_usd, s.energy_j, s.co2_g],
        "created": entry.created, "deployment": entry.deployment,
    })


def decode(data: bytes, digest: str) -> Entry | None:
    """The entry in ``data`` if it is one of this format for the key ``digest``; else None.

    >>> e = Entry("d1", "hi", "stop", Usage(3, 1), Saved(0.5), 1.0)
    >>> decode(encode(e), "d1") == e, decode(encode(e), "d2"), decode(b"{", "d1")
    (True, None, None)
    """
    try:
        obj: Any = orjson.loads(data)
        if obj["v"] != FORMAT or obj["digest"] != digest or obj["finish"] not in _FINISH_REASONS:
            return None
        cost, energy, co2 = obj["saved"]
        return Entry(
            digest=digest, text=str(obj["text"]),
            finish_reason=cast(FinishReason, obj["finish"]), stop_sequence=obj["stop"],
            usage=Usage(*(int(n) for n in obj["usage"])),
            saved=Saved(float(cost), energy, co2), created=float(obj["created"]),
            deployment=obj["deployment"],
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


async def replay(entry: Entry) -> AsyncGenerator[StreamEvent, None]:
    """The entry as the events of a generation, for the client's protocol to render: its text,
    then how it finished."""
    if entry.text:
        yield TextDelta(entry.text)
    yield Finished(entry.finish_reason, entry.usage, stop_sequence=entry.stop_sequence)
