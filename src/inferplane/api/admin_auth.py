"""Who is calling the admin API: FastAPI dependencies that authenticate the request's key for
a scope (``Viewer``, ``Admin``, ``LedgerReader``), the gateway the app serves, and the actor a
change is recorded under."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request

from inferplane.api.auth import authenticate
from inferplane.gateway import Gateway
from inferplane.tenancy.keys import Scope as KeyScope
from inferplane.tenancy.records import Principal


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _needs(scope: KeyScope) -> Callable[[Request], Awaitable[Principal]]:
    async def principal(request: Request) -> Principal:
        return await authenticate(gateway_of(request), request, scope)

    return principal


Viewer = Annotated[Principal, Depends(_needs(KeyScope.VIEWER))]
Admin = Annotated[Principal, Depends(_needs(KeyScope.ADMIN))]
LedgerReader = Annotated[Principal, Depends(_needs(KeyScope.READ_LEDGER))]


def actor(principal: Principal) -> str:
    return "open:loopback" if principal.key is None else f"key:{principal.key.id}"
