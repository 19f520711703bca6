"""The embedded llama.cpp engine as a Serve deployment: each replica supervises its own engine
worker (``engines/supervisor.py``, through the ``llamacpp`` provider), answers the
OpenAI-compatible routes (``openai_app.py``) and posts its load to the :class:`LoadBoard`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.applications import Starlette

from inferplane.config.deployments import DeploymentConfig
from inferplane.errors import EngineUnavailable
from inferplane.providers.llamacpp import LlamaCppProvider
from inferplane.ray.load import ReplicaLoad
from inferplane.ray.openai_app import engine_app
from inferplane.ray.settings import EngineAppConfig, read

log = logging.getLogger("inferplane.ray")


def replica_load(name: str, slots: int, status: dict[str, Any]) -> ReplicaLoad:
    """A replica's report from its provider's status (``engines/supervisor.py``'s ``STATS``)."""
    return ReplicaLoad(
        replica=name, at=0.0, running=int(status.get("running", 0)),
        waiting=int(status.get("waiting", 0)), slots=slots,
        kv_cache_usage=float(status.get("kv_cache_usage", 0.0)),
        ready=bool(status.get("ready", False)), pid=os.getpid())


@serve.deployment(name="Engine")
@serve.ingress()
class Engine:
    async def __init__(  # type: ignore[misc]  # Serve awaits an async constructor
            self, args: dict[str, Any], board: DeploymentHandle[Any]) -> None:
        self.settings: EngineAppConfig = read(args)
        s = self.settings
        self.provider = LlamaCppProvider(DeploymentConfig(
            name=s.deployment, model=s.model, provider="llamacpp", engine=s.engine_settings()))
        await self.provider.start()
        if not await self.provider.supervisor.wait_ready(s.engine.startup_timeout_s):
            await self.provider.stop()
            raise EngineUnavailable(f"the engine of {s.deployment!r} did not start")
        self.board: DeploymentHandle[Any] = board
        self.name = serve.get_replica_context().replica_id.unique_id
        self._reporter = asyncio.create_task(self._report(), name="load-report")

    def __serve_build_asgi_app__(self) -> Starlette:
        return engine_app(self.provider, self.settings.model, self._board_load)

    async def _board_load(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.board.snapshot.remote()
        return {"deployment": self.settings.deployment, "model": self.settings.model,
                "backend": "llamacpp", **result}

    async def _report(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a missed report only ages out
                status = await self.provider.status()
                load = replica_load(self.name, self.settings.slots, status)
                await self.board.report.remote(load.to_dict())
            await asyncio.sleep(self.settings.report_interval_s)

    async def check_health(self) -> None:
        if not self.provider.ready:
            raise EngineUnavailable(f"the engine of replica {self.name} is not ready")

    async def __del__(self) -> None:
        self._reporter.cancel()
        with contextlib.suppress(Exception):
            await self.board.gone.remote(self.name)
        await self.provider.stop()
