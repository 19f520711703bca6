"""Which requests a canary takes: a fixed share of conversations or users, the same ones for as
long as the share stays the same. Pure.

A request's sticky key is the most stable thing that names who sends it: the client's session
header, else the ``user`` the request names, else its tenant's key, else (no stickiness) the
request's own id. The key and the model are hashed to a point in [0, 1); the canary takes the
points below its share, so raising the share from 5% to 20% keeps the first 5% on the canary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

SESSION_HEADER = "x-inferplane-session"
_SCALE = float(1 << 64)


def sticky_key(headers: Mapping[str, str], user: str | None, key_id: str | None,
               request_id: str) -> str:
    """The most stable name of who sends a request.

    >>> sticky_key({}, "alice", "k1", "r1"), sticky_key({}, None, None, "r1")
    ('user:alice', 'request:r1')
    """
    if session := headers.get(SESSION_HEADER):
        return f"session:{session}"
    if user:
        return f"user:{user}"
    if key_id:
        return f"key:{key_id}"
    return f"request:{request_id}"


def point(model: str, key: str) -> float:
    """Where ``key`` falls in [0, 1) for ``model``'s rollouts."""
    digest = hashlib.blake2b(f"{model}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE


def takes(percent: float, model: str, key: str) -> bool:
    """Whether the canary at ``percent`` (0-100) takes ``key``'s requests to ``model``.

    >>> takes(0, "m", "user:a"), takes(100, "m", "user:a")
    (False, True)
    """
    return point(model, key) * 100 < percent
