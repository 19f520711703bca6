"""Engines on Ray Serve (``inferplane.ray``): the application's OpenAI-compatible route, plus
the load every replica reports, on the app's ``/load`` route, read by a scraper once a second
(``engines/scraper.py``, kind ``ray-serve``) like a managed engine's metrics.

What it adds to ``provider: openai`` at the same URL: the router sees the replicas' own load
(every gateway's requests, and the replicas' slots as the deployment's capacity, which grows
and shrinks as Serve scales), ``/readyz`` and the engine gauges report it per deployment (the
replicas' running and waiting sequences, KV-cache use, and how many replicas are up), and the
deployment is ready once a replica has answered (or the app answers that it has no ``/load``).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from inferplane.engines.engine_metrics import EngineReading
from inferplane.engines.scraper import EngineScraper, constant
from inferplane.protocol.types import CONTINUOUS_USAGE
from inferplane.providers.base import register
from inferplane.providers.openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig

POLL_S = 1.0


def app_root(base_url: str) -> str:
    """The application's root, where its load route is, beside its OpenAI one.

    >>> app_root("http://engines:8000/v1"), app_root("http://engines:8000/chat/v1/")
    ('http://engines:8000', 'http://engines:8000/chat')
    """
    return base_url.rstrip("/").removesuffix("/v1")


@register
class RayServeProvider(OpenAICompatProvider):
    name = "ray"
    endpoints = frozenset({"chat.completions", "completions"})
    tools = False  # the embedded engine has no tool-call format (vLLM's: `provider: openai`)
    features = frozenset({"logprobs", "ignore_eos", CONTINUOUS_USAGE, "response_format"})
    default_base_url = "http://127.0.0.1:8000/v1"  # Serve's own default

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        self.readings: Mapping[str, EngineReading] = {}
        self.scraper: EngineScraper | None = None

    def load_scraper(self, readings: MutableMapping[str, EngineReading]) -> EngineScraper:
        self.readings = readings
        self.scraper = EngineScraper(self.deployment.name, "ray-serve",
                                     constant(app_root(self.base_url)), POLL_S, readings)
        return self.scraper

    @property
    def ready(self) -> bool:
        return self.http.started and self.scraper is not None and self.scraper.answered

    async def status(self) -> dict[str, Any]:
        status = await super().status()
        reading = self.readings.get(self.deployment.name)
        if reading is not None:
            status.update(reading.load.as_status())
        return status

    def describe(self) -> str:
        return f"Ray Serve {self.upstream_model} at {self.base_url}"
