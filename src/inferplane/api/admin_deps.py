"""What every admin API route shares: the strict body base, the gateway, and who is asking
(a key holding a scope, as a FastAPI dependency) and how a change names them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from pydantic import BaseModel, ConfigDict

from inferplane.api.auth import authenticate
from inferplane.gateway import Gateway
from inferplane.tenancy.keys import Scope
from inferplane.tenancy.records import Principal


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def _needs(scope: Scope) -> Callable[[Request], Awaitable[Principal]]:
    async def principal(request: Request) -> Principal:
        return await authenticate(gateway_of(request), request, scope)

    return principal


Viewer = Annotated[Principal, Depends(_needs(Scope.VIEWER))]
Admin = Annotated[Principal, Depends(_needs(Scope.ADMIN))]
Approver = Annotated[Principal, Depends(_needs(Scope.APPROVE))]
LedgerReader = Annotated[Principal, Depends(_needs(Scope.READ_LEDGER))]


def actor(principal: Principal) -> str:
    """How a change names who made it: ``key:<id>``, or ``open:loopback`` in open mode."""
    return "open:loopback" if principal.key is None else f"key:{principal.key.id}"
