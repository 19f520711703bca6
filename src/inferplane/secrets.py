"""Secret references: ``env:NAME`` or ``file:PATH``, resolved when a provider starts (API
keys) or when the configuration loads (the store's and Redis's URLs).

The configuration holds only the reference, so a secret never appears in a file Inferplane
reads, a log line or an error message; errors name the reference, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from inferplane.errors import ConfigError

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig


def resolve_secret(ref: str, *, owner: str) -> str:
    """The secret ``ref`` points to. ``owner`` names who needs it, for the error message.

    >>> os.environ["DOCTEST_KEY"] = "s3cret"
    >>> resolve_secret("env:DOCTEST_KEY", owner="deployment x")
    's3cret'
    """
    kind, _, name = ref.partition(":")
    if kind == "env":
        value = os.environ.get(name)
        if not value:
            raise ConfigError(f"{owner}: the environment variable {name} is not set or empty")
        return value
    if kind == "file":
        try:
            value = Path(name).expanduser().read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{owner}: cannot read the key file {name}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{owner}: the key file {name} is empty")
        return value
    raise ConfigError(f"{owner}: api_key must be env:NAME or file:PATH")


def secret_url(url: str, owner: str) -> str:
    """``url`` itself, or the URL an ``env:NAME`` / ``file:PATH`` reference points to (a URL
    with a password in it: ``store.url``, ``redis.url``).

    >>> secret_url("redis://cache:6379/0", "redis.url")
    'redis://cache:6379/0'
    """
    return resolve_secret(url, owner=owner) if url.startswith(("env:", "file:")) else url


def missing_secrets(deployments: Iterable[DeploymentConfig]) -> list[str]:
    """What keeps each deployment's key from resolving, checked before the gateway starts."""
    problems = []
    for d in deployments:
        if d.api_key is None:
            continue
        try:
            resolve_secret(d.api_key, owner=f"deployment {d.name}")
        except ConfigError as exc:
            problems.append(exc.message)
    return problems
