"""The ASGI application: routes, error mapping, and the gateway's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from inferplane.api import anthropic, health, openai
from inferplane.api.errors import http_exception, unhandled_exception
from inferplane.config import Config
from inferplane.gateway import Gateway


def build_app(
    config: Config, on_start: Callable[[Gateway], Awaitable[None]] | None = None
) -> Starlette:
    gateway = Gateway(config)

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
        routes=[*openai.routes, *anthropic.routes, *health.routes],
        exception_handlers={HTTPException: http_exception, Exception: unhandled_exception},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app
