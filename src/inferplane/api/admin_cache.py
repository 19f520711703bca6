"""The response cache in the admin API: ``GET /admin/v1/cache`` (stats, ``viewer``) and
``DELETE /admin/v1/cache`` (purge, ``admin``), each for every cached model or one
(``model``), every tenant or one (``tenant``; ``-`` is the entries made without keys).

A memory cache lives in its gateway process: these reach the process that takes the request.
A Redis cache is shared, so any process answers for all (docs/cache.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from inferplane.api.admin_deps import Admin, Viewer
from inferplane.cache.service import ResponseCache

router = APIRouter(prefix="/v1")
_MODEL = Query(max_length=256, pattern=r"^[^\x00-\x1f]+$")
_TENANT = Query(pattern=r"^(-|[a-z0-9][a-z0-9_.-]{0,63})$")
ModelFilter = Annotated[str | None, _MODEL]
TenantFilter = Annotated[str | None, _TENANT]


def _cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.gateway.cache
    return cache


@router.get("/cache", tags=["cache"])
async def cache_stats(request: Request, _p: Viewer, model: ModelFilter = None,
                      tenant: TenantFilter = None) -> dict[str, Any]:
    """What each cached model's cache holds: entries, bytes, backend and limits."""
    return {"models": await _cache(request).stats(model, tenant)}


@router.delete("/cache", tags=["cache"])
async def cache_purge(request: Request, _p: Admin, model: ModelFilter = None,
                      tenant: TenantFilter = None) -> dict[str, Any]:
    """Drop the entries of one model or all, of one tenant or all."""
    return {"purged": await _cache(request).purge(model, tenant)}
