"""The server's settings: set from the command line, some changeable through the control API."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import orjson

#: Settings the control API may change while the server runs.
MUTABLE = frozenset({"think_ms", "token_delay_ms", "cached_tokens", "reasoning_tokens",
                     "models", "log_requests", "omit_usage", "reply"})


@dataclass(frozen=True, slots=True)
class Settings:
    """How one upstream instance behaves.

    ``api_key`` None accepts any key or none; ``models`` empty accepts any model name.
    ``think_ms`` is the time to first token, ``token_delay_ms`` the time per further token;
    ``cached_tokens`` and ``reasoning_tokens`` are reported in the usage fields each protocol has.
    ``omit_usage`` leaves OpenAI chat usage out (as some OpenAI-compatible servers do).
    ``reply``, when set, is every text reply instead of the echo (one answer to every question).
    """

    name: str = "upstream"
    api_key: str | None = None
    models: tuple[str, ...] = ()
    think_ms: float = 0.0
    token_delay_ms: float = 0.0
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    embedding_dim: int = 1536
    log_requests: bool = True
    omit_usage: bool = False
    reply: str | None = None

    @property
    def listed_models(self) -> tuple[str, ...]:
        """The names model listings show: the configured ones, or one placeholder."""
        return self.models or (f"{self.name}-echo",)

    def to_json(self) -> bytes:
        return orjson.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, raw: bytes | str) -> Settings:
        data = orjson.loads(raw)
        data["models"] = tuple(data.get("models") or ())
        return cls(**data)

    def updated(self, changes: dict[str, Any]) -> Settings:
        """A copy with ``changes`` applied; only the ``MUTABLE`` fields may change."""
        unknown = set(changes) - MUTABLE
        if unknown:
            raise ValueError(f"not changeable: {sorted(unknown)}")
        if "models" in changes:
            changes = {**changes, "models": tuple(changes["models"] or ())}
        return dataclasses.replace(self, **changes)
