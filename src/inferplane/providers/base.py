"""The provider contract and registry.

A provider turns a canonical :class:`GenerationRequest` into a stream of canonical events for
one deployment. Built-ins register exactly like third-party adapters: by class decorator, or
from the ``inferplane.providers`` entry-point group.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, MutableMapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from inferplane.errors import ConfigError, InvalidRequest
from inferplane.protocol.types import (
    FEATURES,
    EmbeddingRequest,
    Embeddings,
    Endpoint,
    GenerationRequest,
    StreamEvent,
    UsageSink,
    Wire,
)

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig
    from inferplane.engines.engine_metrics import EngineReading
    from inferplane.engines.scraper import EngineScraper


class Provider(ABC):
    """One deployment's adapter. Only :meth:`stream` is required."""

    name: ClassVar[str]
    # What it can serve: the router leaves a deployment out for requests it cannot serve.
    endpoints: ClassVar[frozenset[Endpoint]] = frozenset({"chat.completions", "completions"})
    tools: ClassVar[bool] = True
    # The optional features it honours beside tools (``protocol.types.FEATURES``), and the
    # client protocol whose vendor extension fields (any other request field) it takes through
    # to its upstream: its own upstream's protocol, or None.
    features: ClassVar[frozenset[str]] = frozenset()
    extensions: ClassVar[Wire | None] = None

    def __init__(self, deployment: DeploymentConfig) -> None:
        self.deployment = deployment

    @abstractmethod
    def stream(
        self, request: GenerationRequest, meter: UsageSink
    ) -> AsyncGenerator[StreamEvent, None]:
        """Yield ``Started``, then ``TextDelta``s, then one ``Finished``; raise on failure.

        If the stream is closed before ``Finished`` (the client left), release the upstream
        work and report what it used so far with ``meter.finished(...)`` where it is known.
        """

    async def embed(self, request: EmbeddingRequest) -> Embeddings:
        """Embed ``request.inputs``; adapters that serve ``embeddings`` override this."""
        raise InvalidRequest(f"deployment {self.deployment.name!r} does not serve embeddings",
                             param="model")

    def serves(self, endpoint: Endpoint, needs: frozenset[str] = frozenset(),
               wire: Wire | None = None) -> bool:
        """Whether it serves ``endpoint`` with every feature of ``needs`` (what
        ``GenerationRequest.needs`` lists; vendor extensions written in the ``wire``
        protocol)."""
        return endpoint in self.endpoints and all(self.honours(n, wire) for n in needs)

    def honours(self, need: str, wire: Wire | None = None) -> bool:
        if need == "tools":
            return self.tools
        if need in FEATURES:
            return need in self.features
        return self.extensions is not None and self.extensions == wire

    async def start(self) -> None:  # noqa: B027  (an optional hook)
        """Acquire what the adapter needs (processes, connection pools)."""

    async def stop(self) -> None:  # noqa: B027  (an optional hook)
        """Release it; in-flight streams have finished or been cancelled."""

    @property
    def ready(self) -> bool:
        return True

    async def status(self) -> dict[str, Any]:
        """Health and load details for ``/readyz``."""
        return {"ready": self.ready}

    def load_scraper(self, readings: MutableMapping[str, EngineReading]
                     ) -> EngineScraper | None:
        """The reader of the upstream's own report of its load (``engines/scraper.py``), which
        fills ``readings`` under the deployment's name for the router, the engine gauges and
        ``/readyz``; None where the adapter knows of none (the deployment's
        ``engine_metrics`` may name one)."""
        return None

    def describe(self) -> str:
        """One line for the start-up banner."""
        return self.name


GROUP = "inferplane.providers"
_REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Class decorator: make ``cls`` available as ``provider: <cls.name>`` in the config."""
    _REGISTRY[cls.name] = cls
    return cls


def provider_names() -> set[str]:
    """Every provider a configuration may name: the entry-point group's (the built-ins are
    there too) and any registered in code."""
    return set(_REGISTRY) | {entry.name for entry in entry_points(group=GROUP)}


def provider_class(name: str) -> type[Provider]:
    if name not in _REGISTRY:
        for entry in entry_points(group=GROUP, name=name):
            register(entry.load())
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown provider {name!r}; known providers: {known}")
    return _REGISTRY[name]


def create(deployment: DeploymentConfig) -> Provider:
    return provider_class(deployment.provider)(deployment)
