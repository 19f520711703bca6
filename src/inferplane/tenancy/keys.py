"""API keys: their format, their hash, and what a key allows.

A key is ``ipk_<id>_<secret>``: the 12-character ``id`` names it in lists, logs and the ledger;
the 43-character ``secret`` (256 random bits) is shown once and stored only as its SHA-256. A
salted slow hash (bcrypt, argon2) protects low-entropy passwords; a 256-bit random secret needs
none, and a fast hash keeps the check off the request path's budget.

>>> key = new_key()
>>> key_id(key.secret) == key.id and verify(key.secret, key.hash)
True
>>> key_id("sk-not-ours") is None
True
"""

from __future__ import annotations

import fnmatch
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "ipk_"
_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no 0/o, 1/l: ids are read aloud
_KEY = re.compile(r"ipk_([a-z2-9]{12})_[A-Za-z0-9_-]{43}")


class Scope(StrEnum):
    """What a key may do. ``viewer`` and ``admin`` reach every tenant (operator keys);
    ``inference`` and ``read:ledger`` act only within the key's own tenant. ``approve``
    approves model versions (docs/governance.md); ``admin`` does not imply it, so approving
    stays a duty of its own."""

    INFERENCE = "inference"
    READ_LEDGER = "read:ledger"
    VIEWER = "viewer"
    ADMIN = "admin"
    APPROVE = "approve"


@dataclass(frozen=True, slots=True)
class NewKey:
    id: str
    secret: str  # the whole key, shown once
    hash: str


def new_key() -> NewKey:
    """A fresh random key."""
    ident = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = f"{PREFIX}{ident}_{secrets.token_urlsafe(32)}"
    return NewKey(ident, secret, hash_secret(secret))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def verify(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def key_id(presented: str) -> str | None:
    """The id inside a well-formed key, else None (the key is then not ours)."""
    match = _KEY.fullmatch(presented)
    return match.group(1) if match else None


def model_allowed(patterns: tuple[str, ...], model: str) -> bool:
    """Whether ``model`` matches one of the key's model patterns (shell globs; none: all).

    >>> model_allowed(("chat-*",), "chat-small"), model_allowed(("chat-*",), "embed")
    (True, False)
    >>> model_allowed((), "anything")
    True
    """
    return not patterns or any(fnmatch.fnmatchcase(model, p) for p in patterns)
