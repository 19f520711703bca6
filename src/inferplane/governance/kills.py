"""The kill switch: what a kill names (a deployment, every deployment of a model, or every
deployment of a provider) and which kill, if any, stops a deployment."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from inferplane.config import DeploymentConfig
from inferplane.errors import NotFound


class KillKind(StrEnum):
    DEPLOYMENT = "deployment"
    MODEL = "model"
    PROVIDER = "provider"


@dataclass(frozen=True, slots=True)
class Kill:
    kind: KillKind
    name: str
    reason: str
    actor: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "name": self.name, "reason": self.reason,
                "actor": self.actor, "ts": self.ts}

    def describe(self) -> str:
        """>>> Kill(KillKind.PROVIDER, "openai", "leaking data", "cli:ann", 0).describe()
        'killed (provider openai: leaking data)'
        """
        return f"killed ({self.kind} {self.name}: {self.reason})"


def stopping(kills: Iterable[Kill], deployment: str, model: str, provider: str) -> Kill | None:
    """The first kill that stops a deployment named ``deployment`` of ``model`` on
    ``provider``: the deployment's own, else its model's, else its provider's.

    >>> k = Kill(KillKind.MODEL, "chat", "bad answers", "key:x", 0)
    >>> stopping([k], "chat-a", "chat", "openai") is k, stopping([k], "e-1", "embed", "openai")
    (True, None)
    """
    found: dict[KillKind, Kill] = {}
    for kill in kills:
        wanted = {KillKind.DEPLOYMENT: deployment, KillKind.MODEL: model,
                  KillKind.PROVIDER: provider}[kill.kind]
        if kill.name == wanted:
            found.setdefault(kill.kind, kill)
    return next((found[k] for k in KillKind if k in found), None)


def known_targets(kind: KillKind, deployments: Iterable[DeploymentConfig]) -> list[str]:
    """The names a kill of ``kind`` may name in a configuration with ``deployments``.

    >>> known_targets(KillKind.PROVIDER, [DeploymentConfig(name="a", model="m", provider="p")])
    ['p']
    """
    attribute = {KillKind.DEPLOYMENT: "name", KillKind.MODEL: "model",
                 KillKind.PROVIDER: "provider"}[kind]
    return sorted({getattr(d, attribute) for d in deployments})


def check_target(kind: KillKind, name: str, deployments: Iterable[DeploymentConfig]) -> None:
    """Raise NotFound when the configuration has no ``kind`` called ``name`` (a typo must not
    look like a kill that worked)."""
    known = known_targets(kind, deployments)
    if name not in known:
        raise NotFound(f"No {kind} named '{name}' in the configuration; known: "
                       f"{', '.join(known)}.")
