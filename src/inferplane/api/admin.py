"""The admin API under ``/admin/v1``: tenants, keys, deployments, the ledger and the admin
event record (model versions and kills: ``admin_models.py``), with its OpenAPI document at
``/admin/openapi.json``.

Who may do what: ``admin`` keys change and read everything, ``viewer`` keys read everything,
a tenant's ``read:ledger`` keys read that tenant's own ledger records and nothing else (another
tenant's record is "not found", never "forbidden"). Every change is recorded with its actor in
the admin events (``tenancy/store.py``). Errors use the OpenAI error format, as the data path
does; bodies are checked strictly (unknown fields, wrong types, oversized bodies: 4xx).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferplane.api import admin_models
from inferplane.api.admin_deps import Admin, Body, LedgerReader, Viewer, actor, gateway_of
from inferplane.api.audit import router as audit_router
from inferplane.api.error_responses import error_response
from inferplane.errors import InferplaneError, InvalidRequest, NotFound, PayloadTooLarge
from inferplane.gateway import Gateway
from inferplane.tenancy.budget import (
    MAX_RPM,
    MAX_TPM,
    Budget,
    parse_budget,
    parse_duration,
)
from inferplane.tenancy.keys import Scope as KeyScope
from inferplane.tenancy.records import ApiKey, Tenant, check_tenant_name
from inferplane.tenancy.store import TenancyStore, describe

MAX_ADMIN_BODY = 64 * 1024
_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_KEY_ID = r"^[a-z2-9]{1,16}$"
_RECORD_ID = r"^[A-Za-z0-9_.:-]{1,128}$"
_TEXT = r"^[^\x00-\x1f]*$"  # no NUL (PostgreSQL text cannot hold it) or control characters
_ITEM = r"^[^,\x00-\x1f]+$"  # one item of a comma-separated list


def _budget(value: str | None) -> str | None:
    if value is not None:
        parse_budget(value)  # its ValueError says how to write one
    return value


def _duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


class LimitsIn(Body):
    rpm: int | None = Field(None, ge=1, le=MAX_RPM, description="Requests per minute.")
    tpm: int | None = Field(None, ge=1, le=MAX_TPM, description="Tokens per minute.")
    budget: str | None = Field(None, max_length=40, examples=["100usd/month"],
                               description="Spend per period: 100usd/month, 5usd/day, ...")

    _check_budget = field_validator("budget")(_budget)

    def changes(self) -> dict[str, Any]:
        """The fields the client sent (null removes a limit)."""
        out: dict[str, Any] = {}
        for name in self.model_fields_set:
            value = getattr(self, name)
            out[name] = parse_budget(value) if name == "budget" and value is not None else value
        return out


class TenantIn(LimitsIn):
    name: str = Field(pattern=_NAME)


class KeyIn(LimitsIn):
    tenant: str = Field(pattern=_NAME)
    name: str | None = Field(None, max_length=128, pattern=_TEXT)
    # JSON has no enums: a scope comes as its string (strict mode would refuse every one)
    scopes: list[Annotated[KeyScope, Field(strict=False)]] = Field(
        default_factory=lambda: [KeyScope.INFERENCE], min_length=1, max_length=len(KeyScope))
    models: list[Annotated[str, Field(min_length=1, max_length=128, pattern=_ITEM)]] = Field(
        default_factory=list, max_length=100)
    residency: list[Annotated[str, Field(min_length=1, max_length=64, pattern=_ITEM)]] | None = (
        Field(None, max_length=50))
    expires_in: str | None = Field(None, max_length=20, examples=["90d"])

    _check_expires = field_validator("expires_in")(_duration)


class RotateIn(Body):
    grace: str | None = Field(None, max_length=20, examples=["1h"],
                              description="How long the old key keeps working.")

    _check_grace = field_validator("grace")(_duration)


class TenantOut(BaseModel):
    name: str
    rpm: int | None
    tpm: int | None
    budget: str | None
    created_at: float


class KeyOut(BaseModel):
    id: str
    tenant: str
    name: str | None
    scopes: list[str]
    models: list[str]
    residency: list[str] | None
    rpm: int | None
    tpm: int | None
    budget: str | None
    expires_at: float | None
    created_at: float
    revoked_at: float | None


class KeyCreated(KeyOut):
    key: str = Field(description="The secret key: shown once, store it now.")


def _tenant_out(t: Tenant) -> TenantOut:
    return TenantOut(**describe(t))


def _key_out(k: ApiKey) -> dict[str, Any]:
    return dict(describe(k))


# -- who is asking: api/admin_deps.py ---------------------------------------------------------


async def _run(request: Request, call: Callable[[TenancyStore], Any]) -> Any:
    store = gateway_of(request).access.store
    return await asyncio.to_thread(call, store)


# -- the routes ------------------------------------------------------------------------------

router = APIRouter(prefix="/v1")


async def _inferplane_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InferplaneError)
    return error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    error = InvalidRequest("Invalid request: " + "; ".join(problems),
                           param=".".join(str(p) for p in first[1:]) or None)
    return error_response(error)


@router.get("/whoami", tags=["keys"])
async def whoami(principal: LedgerReader) -> dict[str, Any]:
    """The calling key, its tenant and scopes."""
    if principal.key is None:
        return {"key": None, "tenant": None, "mode": "open (no keys yet, loopback only)"}
    return {"key": _key_out(principal.key), "tenant": principal.key.tenant, "mode": "key"}


@router.get("/tenants", response_model=list[TenantOut], tags=["tenants"])
async def list_tenants(request: Request, _p: Viewer) -> list[TenantOut]:
    return [_tenant_out(t) for t in await _run(request, lambda s: s.tenants())]


@router.post("/tenants", response_model=TenantOut, status_code=201, tags=["tenants"])
async def create_tenant(request: Request, body: TenantIn, principal: Admin) -> TenantOut:
    changes = body.changes()
    changes.pop("name", None)
    tenant = Tenant(check_tenant_name(body.name), **changes)
    return _tenant_out(await _run(request, lambda s: s.create_tenant(tenant, actor(principal))))


@router.get("/tenants/{name}", response_model=TenantOut, tags=["tenants"])
async def get_tenant(request: Request, name: Annotated[str, Path(pattern=_NAME)],
                     _p: Viewer) -> TenantOut:
    tenant = await _run(request, lambda s: s.tenant(name))
    if tenant is None:
        raise NotFound(f"No tenant named '{name}'.")
    return _tenant_out(tenant)


@router.patch("/tenants/{name}", response_model=TenantOut, tags=["tenants"])
async def update_tenant(request: Request, name: Annotated[str, Path(pattern=_NAME)],
                        body: LimitsIn, principal: Admin) -> TenantOut:
    changes = body.changes()
    return _tenant_out(await _run(
        request, lambda s: s.update_tenant(name, changes, actor(principal))))


@router.get("/keys", response_model=list[KeyOut], tags=["keys"])
async def list_keys(request: Request, _p: Viewer,
                    tenant: Annotated[str | None, Query(pattern=_NAME)] = None) -> Any:
    return [_key_out(k) for k in await _run(request, lambda s: s.keys(tenant))]


@router.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
async def create_key(request: Request, body: KeyIn, principal: Admin) -> Any:
    lifetime = None if body.expires_in is None else parse_duration(body.expires_in)
    budget: Budget | None = None if body.budget is None else parse_budget(body.budget)
    spec = ApiKey(id="", tenant=body.tenant, name=body.name, scopes=frozenset(body.scopes),
                  models=tuple(body.models),
                  residency=None if body.residency is None else tuple(body.residency),
                  rpm=body.rpm, tpm=body.tpm, budget=budget,
                  expires_at=None if lifetime is None else time.time() + lifetime)
    key, secret = await _run(request, lambda s: s.create_key(spec, actor(principal)))
    return {**_key_out(key), "key": secret}


@router.get("/keys/{key_id}", response_model=KeyOut, tags=["keys"])
async def get_key(request: Request, key_id: Annotated[str, Path(pattern=_KEY_ID)],
                  _p: Viewer) -> Any:
    key = await _run(request, lambda s: s.key(key_id))
    if key is None:
        raise NotFound(f"No key '{key_id}'.")
    return _key_out(key)


@router.post("/keys/{key_id}/rotate", response_model=KeyCreated, status_code=201, tags=["keys"])
async def rotate_key(request: Request, key_id: Annotated[str, Path(pattern=_KEY_ID)],
                     body: RotateIn, principal: Admin) -> Any:
    grace = 0.0 if body.grace is None else parse_duration(body.grace)
    key, secret = await _run(request, lambda s: s.rotate_key(key_id, actor(principal), grace))
    return {**_key_out(key), "key": secret}


@router.post("/keys/{key_id}/revoke", response_model=KeyOut, tags=["keys"])
async def revoke_key(request: Request, key_id: Annotated[str, Path(pattern=_KEY_ID)],
                     principal: Admin) -> Any:
    return _key_out(await _run(request, lambda s: s.revoke_key(key_id, actor(principal))))


@router.get("/deployments", tags=["deployments"])
async def deployments(request: Request, _p: Viewer) -> list[dict[str, Any]]:
    """Every deployment, its model, where it runs and whether it is serving."""
    gateway = gateway_of(request)
    now = time.monotonic()
    out = []
    for d in gateway.config.deployments:
        live = gateway.router.stats[d.name].snapshot(now)
        out.append({"name": d.name, "model": d.model, "provider": d.provider,
                    "region": d.region, "ready": gateway.providers[d.name].ready,
                    "in_flight": live.in_flight, "breaker_open": live.breaker_open,
                    "error_rate": live.error_rate})
    return out


@router.get("/events", tags=["audit"])
async def events(request: Request, _p: Viewer,
                 limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[dict[str, Any]]:
    """The newest admin events (who changed what), newest first."""
    return list(await _run(request, lambda s: s.events(limit)))


@router.get("/ledger/records", tags=["ledger"])
async def ledger_records(
    request: Request, principal: LedgerReader,
    tenant: Annotated[str | None, Query(pattern=_NAME)] = None,
    model: Annotated[str | None, Query(max_length=256, pattern=_TEXT)] = None,
    since: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    until: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    after_ts: Annotated[float | None, Query(ge=0, le=1e11)] = None,
    after_id: Annotated[str | None, Query(pattern=_RECORD_ID)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Usage records, oldest first. A tenant's key sees only its tenant's records; page on with
    ``after_ts`` and ``after_id`` from the previous page's ``next``."""
    if not principal.operator:
        tenant = principal.tenant_name  # whatever was asked: a tenant sees itself only
    after = (after_ts, after_id) if after_ts is not None and after_id is not None else None
    store = gateway_of(request).ledger.store
    records = await asyncio.to_thread(store.page, tenant=tenant, model=model, since=since,
                                      until=until, after=after, limit=limit)
    last = records[-1] if len(records) == limit else None
    return {"records": [r.to_dict() for r in records],
            "next": None if last is None else {"after_ts": last.ts, "after_id": last.id}}


@router.get("/ledger/records/{record_id}", tags=["ledger"])
async def ledger_record(request: Request, principal: LedgerReader,
                        record_id: Annotated[str, Path(pattern=_RECORD_ID)]) -> dict[str, Any]:
    record = await asyncio.to_thread(gateway_of(request).ledger.store.get, record_id)
    if record is None or not (principal.operator or record.tenant == principal.tenant_name):
        raise NotFound(f"No record '{record_id}'.")
    return record.to_dict()


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes with 413, before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        too_large = PayloadTooLarge(f"The body is larger than {self.limit} bytes.")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await error_response(too_large)(scope, receive, send)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise too_large
            return message

        await self.app(scope, limited, send)


def build_admin(gateway: Gateway, extra: Sequence[APIRouter] = ()) -> ASGIApp:
    """The admin API for ``gateway``, to mount at ``/admin``, with the ``extra`` routers of
    modules of their own (``admin_cache``); the model registry's routes are ``admin_models``."""
    api = FastAPI(
        title="Inferplane admin API", version="1",
        description="Tenants, API keys, deployments, model versions and kills, the usage ledger, "
                    "the dashboard's figures and the tamper-evident audit log. Authenticate with "
                    "'Authorization: Bearer <key>'.",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
        exception_handlers={InferplaneError: _inferplane_error,
                            RequestValidationError: _validation_error},
    )
    for part in (router, admin_models.router, audit_router, *extra):
        api.include_router(part)
    api.state.gateway = gateway
    return BodyLimit(api, MAX_ADMIN_BODY)
