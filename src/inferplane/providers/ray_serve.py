"""Engines on Ray Serve (``inferplane.ray``): the application's OpenAI-compatible route, plus
the load every replica reports, read from the app's ``/load`` route once a second.

What it adds to ``provider: openai`` at the same URL: the router sees the replicas' own load
(every gateway's requests, and the replicas' slots as the deployment's capacity, which grows
and shrinks as Serve scales), ``/readyz`` and the engine gauges report it per deployment (the
replicas' running and waiting sequences, KV-cache use, and how many replicas are up), and the
deployment is ready once a replica has answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from inferplane.errors import UpstreamError
from inferplane.protocol.types import CONTINUOUS_USAGE
from inferplane.providers.base import UpstreamLoad, register
from inferplane.providers.openai_compat import OpenAICompatProvider

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig

log = logging.getLogger("inferplane.providers")
POLL_S = 1.0
LOAD_TIMEOUT_S = 2.0


def load_url(base_url: str) -> str:
    """The application's load route beside its OpenAI one.

    >>> load_url("http://engines:8000/v1"), load_url("http://engines:8000/chat/v1")
    ('http://engines:8000/load', 'http://engines:8000/chat/load')
    """
    root = base_url.rstrip("/")
    return f"{root.removesuffix('/v1')}/load"


@register
class RayServeProvider(OpenAICompatProvider):
    name = "ray"
    endpoints = frozenset({"chat.completions", "completions"})
    tools = False  # the embedded engine has no tool-call format (vLLM's: `provider: openai`)
    features = frozenset({"logprobs", "ignore_eos", CONTINUOUS_USAGE, "response_format"})
    default_base_url = "http://127.0.0.1:8000/v1"  # Serve's own default

    def __init__(self, deployment: DeploymentConfig) -> None:
        super().__init__(deployment)
        self.load_url = load_url(self.base_url)
        self.last: dict[str, Any] = {}
        self._answered = False
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await super().start()
        self._watch = asyncio.create_task(self._poll(), name=f"ray-load-{self.deployment.name}")

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await super().stop()

    async def _poll(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(POLL_S)

    async def refresh(self) -> None:
        """Read the replicas' load once; a failed read leaves none (the router then counts
        only its own requests) until the next."""
        try:
            reading = await self.http.get_json(self.load_url, LOAD_TIMEOUT_S)
        except UpstreamError as exc:
            # no load route (an app of its own, vLLM's): an OpenAI deployment without load
            self._answered = self._answered or exc.upstream_status == 404
            log.debug("%s: no load reading: %s", self.deployment.name, exc)
            self.last = {}
            return
        if isinstance(reading, dict) and "in_flight" in reading:
            self.last = reading
            self._answered = self._answered or reading.get("replicas", 0) > 0

    @property
    def ready(self) -> bool:
        return self.http.started and self._answered

    def upstream_load(self) -> UpstreamLoad | None:
        last = self.last
        if not last:
            return None
        return UpstreamLoad(int(last["in_flight"]), int(last.get("capacity") or 0) or None)

    async def status(self) -> dict[str, Any]:
        status = await super().status()
        keys = ("replicas", "running", "waiting", "kv_cache_usage", "capacity", "per_replica")
        status.update({k: self.last[k] for k in keys if k in self.last})
        return status

    def describe(self) -> str:
        return f"Ray Serve {self.upstream_model} at {self.base_url}"
