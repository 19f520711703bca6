"""The ASGI application: routes, error mapping, and the gateway's lifespan."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount

from inferplane.api import anthropic_routes, openai_routes, probes
from inferplane.api.admin import build_admin
from inferplane.api.error_responses import http_exception, unhandled_exception
from inferplane.config import Config
from inferplane.gateway import Gateway

WORKER_CONFIG_ENV = "INFERPLANE_WORKER_CONFIG"  # the validated configuration, as JSON


def worker_app() -> Starlette:
    """The app of one of ``inferplane up --workers N``'s processes (each has its own WAL)."""
    config = Config.model_validate_json(os.environ[WORKER_CONFIG_ENV])
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s worker {os.getpid()} %(name)s: "
                               "%(message)s")
    return build_app(config, worker=True)


def build_app(
    config: Config, on_start: Callable[[Gateway], Awaitable[None]] | None = None,
    *, worker: bool = False,
) -> Starlette:
    gateway = Gateway(config, worker=worker)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        if on_start is not None:
            await on_start(gateway)
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(
        routes=[*openai_routes.routes, *anthropic_routes.routes, *probes.routes,
                Mount("/admin", app=build_admin(gateway))],
        exception_handlers={HTTPException: http_exception, Exception: unhandled_exception},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
