"""Liveness and readiness probes, and the metrics endpoint."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.auth import authenticate
from inferplane.api.error_responses import error_response
from inferplane.errors import InferplaneError
from inferplane.gateway import Gateway
from inferplane.observe.metrics import CONTENT_TYPE
from inferplane.tenancy.keys import Scope


async def healthz(_request: Request) -> Response:
    """The gateway process is alive and serving HTTP: ``/healthz``, and ``/health`` (what vLLM
    and TGI answer, which load clients and orchestrators probe)."""
    return Response(b'{"status":"ok"}', media_type="application/json")


async def readyz(request: Request) -> Response:
    """Every model has a ready deployment (the engine has loaded); 503 until then."""
    gateway: Gateway = request.app.state.gateway
    deployments = {name: await p.status() for name, p in gateway.providers.items()}
    ready = gateway.ready
    body = {"status": "ready" if ready else "starting", "deployments": deployments}
    return Response(orjson.dumps(body), 200 if ready else 503, media_type="application/json")


async def metrics(request: Request) -> Response:
    """Prometheus metrics (``observe/``). They name tenants, so once keys are in use
    a scraper needs a ``viewer`` key."""
    gateway: Gateway = request.app.state.gateway
    try:
        await authenticate(gateway, request, Scope.VIEWER)
    except InferplaneError as exc:
        return error_response(exc)
    await gateway.metrics.refresh()
    return Response(gateway.metrics.exposition(), media_type=CONTENT_TYPE)


routes = [Route("/healthz", healthz, methods=["GET"]), Route("/health", healthz, methods=["GET"]),
          Route("/readyz", readyz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]
