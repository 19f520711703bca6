"""Model aliases -> the deployment that serves a request.

This first router keeps deployments in configuration order and takes the first one that is
ready; policies (cost, latency, residency) and fallbacks plug in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inferplane.errors import ModelNotFound, ServiceUnavailable

if TYPE_CHECKING:
    from inferplane.config import Config, DeploymentConfig
    from inferplane.providers.base import Provider


@dataclass(frozen=True, slots=True)
class Target:
    deployment: DeploymentConfig
    provider: Provider


class Router:
    def __init__(self, config: Config, providers: Mapping[str, Provider]) -> None:
        self._targets: dict[str, list[Target]] = {}
        for model in config.models:
            targets = [
                Target(d, providers[d.name]) for d in config.deployments if d.model == model.name
            ]
            for name in (model.name, *model.aliases):
                self._targets[name] = targets

    def model_names(self) -> list[str]:
        return list(self._targets)

    def targets(self, model: str) -> list[Target]:
        targets = self._targets.get(model)
        if targets is None:
            raise ModelNotFound(
                f"The model '{model}' does not exist. Available: {', '.join(self._targets)}.",
                param="model",
            )
        return targets

    def route(self, model: str) -> Target:
        for target in self.targets(model):
            if target.provider.ready:
                return target
        raise ServiceUnavailable(
            f"No deployment of '{model}' is ready (starting or restarting); retry shortly."
        )
