"""The ASGI application: routes, error mapping, and the gateway's lifespan."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

from inferplane.api import (
    admin_cache,
    admin_dashboard,
    admin_drift,
    anthropic_routes,
    batch_endpoints,
    batches_routes,
    dashboard_page,
    files_routes,
    openai_routes,
    probes,
    responses_routes,
)
from inferplane.api.admin import build_admin
from inferplane.api.error_responses import (
    http_exception,
    inferplane_error,
    unhandled_exception,
)
from inferplane.config import Config
from inferplane.errors import InferplaneError
from inferplane.gateway import Gateway

WORKER_CONFIG_ENV = "INFERPLANE_WORKER_CONFIG"  # the validated configuration, as JSON


def worker_app() -> GatewayApp:
    """The app of one of ``inferplane up --workers N``'s processes (each has its own WAL)."""
    config = Config.model_validate_json(os.environ[WORKER_CONFIG_ENV])
    logging.basicConfig(level=logging.INFO,
                        format=f"%(asctime)s %(levelname)s worker {os.getpid()} %(name)s: "
                               "%(message)s")
    return build_app(config, on_stop=_log_stopped, worker=True)


async def _log_stopped(gateway: Gateway) -> None:
    logging.getLogger("inferplane").info("gateway %s", gateway.stopped())


Hook = Callable[[Gateway], Awaitable[None]]  # called with the gateway at start or stop


def build_app(config: Config, on_start: Hook | None = None, on_stop: Hook | None = None,
              *, worker: bool = False) -> GatewayApp:
    gateway = Gateway(config, worker=worker)
    batch_endpoints.register_endpoints()
    app = Starlette(
        routes=[*openai_routes.routes, *responses_routes.routes,
                *anthropic_routes.routes, *files_routes.routes, *batches_routes.routes,
                *probes.routes,
                *dashboard_page.routes,
                Mount("/admin", app=build_admin(gateway, [
                    admin_cache.router, admin_dashboard.router,
                    # only where drift is on: the dashboard reads the admin API's document
                    # to know whether to ask
                    *([admin_drift.router] if gateway.drift is not None else [])]))],
        exception_handlers={HTTPException: http_exception, InferplaneError: inferplane_error,
                            Exception: unhandled_exception},
    )
    app.state.gateway = gateway
    return GatewayApp(app, gateway, on_start, on_stop)


class GatewayApp:
    """The routes, with the gateway started before the first request and stopped after the
    last. A start refused for a known reason (a WAL directory of another store, a ledger in use,
    a setting the providers reject) fails with its one-line message, not a traceback.
    ``on_start`` runs once the gateway has started, ``on_stop`` once it has stopped (the engines
    and the ledger closed)."""

    def __init__(self, app: Starlette, gateway: Gateway, on_start: Hook | None,
                 on_stop: Hook | None = None) -> None:
        self.app = app
        self.gateway = gateway
        self.on_start = on_start
        self.on_stop = on_stop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        try:
            await self.gateway.start()
            if self.on_start is not None:
                await self.on_start(self.gateway)
        except InferplaneError as exc:
            await self.gateway.stop()
            await send({"type": "lifespan.startup.failed", "message": f"cannot start: {exc}"})
            return
        except BaseException:
            await self.gateway.stop()
            raise  # a bug: the server logs it with its traceback
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await self.gateway.stop()
        if self.on_stop is not None:
            await self.on_stop(self.gateway)
        await send({"type": "lifespan.shutdown.complete"})
