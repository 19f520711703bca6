"""The endpoints a batch line may call: a registry keyed by the line's ``url``.

Every handler has one contract: the line's parsed ``body``, the caller it runs as, and the
line's :class:`LineContext` in; the HTTP status and the JSON body the endpoint would have
answered out. A handler runs the line through the gateway's normal ``Generation`` path
(routing, tenancy checks, the ledger record under ``ctx.request_id``), never beside it. The API
layer registers its handlers (``api/batch_endpoints.py``); a new endpoint registers its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from inferplane.errors import InferplaneError
from inferplane.tenancy.records import Principal

if TYPE_CHECKING:
    from inferplane.gateway import Gateway


@dataclass(frozen=True, slots=True)
class LineContext:
    """What a handler knows of the line beyond its body."""

    gateway: Gateway
    batch_id: str
    request_id: str  # the same every time this line runs: its ledger record's id
    refused: InferplaneError | None = None  # the batch's key can no longer be used: why


Answer = tuple[int, dict[str, Any]]
Handler = Callable[[dict[str, Any], Principal, LineContext], Awaitable[Answer]]

ENDPOINTS: dict[str, Handler] = {}


def register(url: str, handler: Handler) -> None:
    """Let batch lines call ``url`` (e.g. ``/v1/chat/completions``) through ``handler``."""
    ENDPOINTS[url] = handler
