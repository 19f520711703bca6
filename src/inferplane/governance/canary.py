"""Which requests a canary takes: a fixed share of conversations or users, the same ones for as
long as the share stays the same. Pure.

A request's sticky key is the most stable thing that names who sends it: the client's session
header, else the ``user`` the request names, else its tenant's key, else (no stickiness) the
request's own id. The key and the model are hashed to a point in [0, 1); the canary takes the
points below its share, so raising the share from 5% to 20% keeps the first 5% on the canary.

The router splits a model's deployments per request (:func:`split`): a request in the share
tries the canary's deployments first and the incumbent's after them (its fallback when every
canary deployment is unavailable or fails); a request outside it never reaches the canary.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class Split:
    """One model's candidate as a gateway process serves it: its version, its percent and the
    deployments that serve it."""

    version: str
    percent: float
    deployments: frozenset[str]

    def takes(self, model: str, key: str) -> bool:
        """Whether this candidate takes ``key``'s requests to ``model`` (no key: never)."""
        return bool(key) and takes(self.percent, model, key)


@dataclass(frozen=True, slots=True)
class Groups:
    """A request's deployments of one model, in the order of the groups it tries."""

    tried: tuple[tuple[str, ...], ...]
    turned_away: tuple[str, ...] = ()  # the canary's, for a request outside its share
    share: bool | None = None  # None: the model has no canary


def split(canary: Split | None, model: str, key: str, names: Sequence[str]) -> Groups:
    """How a request with sticky ``key`` to ``model`` uses its deployments ``names``.

    >>> c = Split("v2", 100.0, frozenset({"b"}))
    >>> split(c, "m", "user:x", ["a", "b"])
    Groups(tried=(('b',), ('a',)), turned_away=(), share=True)
    >>> split(Split("v2", 0.0, frozenset({"b"})), "m", "user:x", ["a", "b"])
    Groups(tried=(('a',),), turned_away=('b',), share=False)
    >>> split(None, "m", "user:x", ["a", "b"]).tried
    (('a', 'b'),)
    """
    if canary is None:
        return Groups((tuple(names),))
    ours = tuple(n for n in names if n in canary.deployments)
    rest = tuple(n for n in names if n not in canary.deployments)
    if canary.takes(model, key):
        return Groups((ours, rest), share=True)
    return Groups((rest,), ours, share=False)
