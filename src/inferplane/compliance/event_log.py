"""The Art. 12 event log of one system for a period, as JSON lines: first a header naming the
system, the period and the signed checkpoint covering the audit entries; then the system's
usage records and audit entries of the period in time order, each tagged with its ``type``."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from typing import Any

import orjson


def lines(header: dict[str, Any], records: Iterable[dict[str, Any]],
          entries: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """The JSON lines of the log (pure; ``records`` and ``entries`` each in time order)."""
    yield orjson.dumps({"type": "header", **header}) + b"\n"
    tagged = heapq.merge(({"type": "usage", **r} for r in records),
                         ({"type": "audit", **e} for e in entries),
                         key=lambda item: item["ts"])
    for item in tagged:
        yield orjson.dumps(item) + b"\n"
