"""Which deployments and versions one AI system (a ``systems:`` entry) is made of, and whether
a usage record belongs to it. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inferplane.config import Config, DeploymentConfig, SystemConfig
from inferplane.errors import NotFound


@dataclass(frozen=True, slots=True)
class Scope:
    system: SystemConfig
    deployments: tuple[DeploymentConfig, ...]

    @property
    def models(self) -> tuple[str, ...]:
        return tuple(self.system.models)

    @property
    def versions(self) -> tuple[str, ...]:
        """The versions the configuration deploys (a deployment's version, else its name)."""
        return tuple(getattr(d, "version", None) or d.name for d in self.deployments)

    def covers(self, record: Mapping[str, Any]) -> bool:
        """Whether a usage record (a mapping with ``model`` and ``tenant``) is the system's."""
        tenants = self.system.tenants
        return record.get("model") in self.system.models and (
            not tenants or record.get("tenant") in tenants)

    def covers_entry(self, data: Mapping[str, Any], kind: str) -> bool:
        """Whether an audit entry's data concerns the system: its models, its tenants, itself,
        or the gateway as a whole (configuration loads, ledger commits)."""
        if kind in ("config.load", "ledger.batch"):
            return True
        if data.get("system") == self.system.name:
            return True
        if data.get("model") in self.system.models or data.get("target") in self.versions:
            return True
        return bool(self.system.tenants) and data.get("tenant") in self.system.tenants


def scope_of(config: Config, name: str) -> Scope:
    """The system called ``name`` with its deployments; NotFound naming those there are."""
    system = config.system(name)
    if system is None:
        known = ", ".join(s.name for s in config.systems) or "none: add a `systems:` section"
        raise NotFound(f"No system '{name}' in the configuration (systems: {known}).")
    return Scope(system, tuple(d for d in config.deployments if d.model in system.models))
