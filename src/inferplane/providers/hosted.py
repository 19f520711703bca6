"""What every adapter of a remote HTTP API shares: its base URL, key, model name and pool."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from inferplane.providers.base import Provider
from inferplane.providers.upstream import HttpUpstream
from inferplane.secrets import resolve_secret

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig


class HostedProvider(Provider):
    """A deployment reached over HTTP. Subclasses name their default URL and auth headers."""

    default_base_url: ClassVar[str]

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        self.base_url = (deployment.base_url or self.default_base_url).rstrip("/")
        self.upstream_model = deployment.upstream_model or deployment.model
        self.http = HttpUpstream(deployment.name, deployment.timeouts)

    def auth_headers(self, key: str) -> dict[str, str]:
        """The headers that carry the API key."""
        return {"authorization": f"Bearer {key}"}

    async def start(self) -> None:
        d = self.deployment
        headers = dict(d.headers)
        if d.api_key is not None:
            key = resolve_secret(d.api_key, owner=f"deployment {d.name}")
            headers.update(self.auth_headers(key))
        await self.http.start(headers)

    async def stop(self) -> None:
        await self.http.stop()

    @property
    def ready(self) -> bool:
        return self.http.started

    async def status(self) -> dict[str, Any]:
        return {"ready": self.ready, "base_url": self.base_url, "model": self.upstream_model}

    def describe(self) -> str:
        return f"{self.name} {self.upstream_model} at {self.base_url}"
