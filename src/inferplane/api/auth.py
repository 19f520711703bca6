"""Who sent an HTTP request: its API key (or loopback in open mode), checked for a scope."""

from __future__ import annotations

from starlette.requests import Request

from inferplane.gateway import Gateway
from inferplane.tenancy.keys import Scope
from inferplane.tenancy.records import Principal


async def authenticate(gateway: Gateway, request: Request,
                       scope: Scope = Scope.INFERENCE) -> Principal:
    """Who sent ``request`` (its key, or loopback in open mode), holding ``scope``."""
    client = request.client.host if request.client is not None else None
    return await gateway.access.authenticate(request.headers, client, scope)
