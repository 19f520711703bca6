"""Drift detection in the admin API: ``GET /admin/v1/drift`` (the latest verdicts; ``viewer``
sees every tenant, a tenant's ``read:ledger`` key only its tenant's own rows) and
``POST /admin/v1/drift/reset`` (``admin``: the current window becomes the reference).

The windows live in the gateway process that took the requests (``drift/monitor.py``). The
routes exist only where ``drift.enabled``: the dashboard shows its drift panel where the admin
API's OpenAPI document lists them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from inferplane.api.admin_deps import Admin, LedgerReader, gateway_of
from inferplane.drift.monitor import DriftMonitor
from inferplane.errors import NotFound

router = APIRouter(prefix="/v1")
OFF = ("Drift detection is off: set `drift: {enabled: true}` in the configuration and restart "
       "the gateway.")
ModelFilter = Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00-\x1f]+$")]


def _monitor(request: Request) -> DriftMonitor:
    monitor = gateway_of(request).drift
    if monitor is None:  # not mounted then; kept for a router mounted by hand
        raise NotFound(OFF)
    return monitor


def _model(request: Request, model: str | None) -> str | None:
    """The model name ``model`` (or its alias) stands for; unknown: not found."""
    if model is None:
        return None
    found = gateway_of(request).config.resolve_alias(model)
    if found is None:
        raise NotFound(f"No model named '{model}'.", param="model")
    return found.name


@router.get("/drift", tags=["drift"])
async def drift_report(request: Request, principal: LedgerReader,
                       model: ModelFilter = None) -> dict[str, Any]:
    """Each feature's latest drift verdict, per model (``tenant`` null: all its traffic) and per
    tenant with traffic enough. ``p_value`` null: insufficient data."""
    monitor = _monitor(request)
    rows = monitor.reports(_model(request, model))
    if not principal.operator:
        rows = [r for r in rows if r.tenant is not None and r.tenant == principal.tenant_name]
    return {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "reports": [r.to_dict() for r in rows]}


@router.post("/drift/reset", tags=["drift"])
async def drift_reset(request: Request, _p: Admin, model: ModelFilter = None) -> dict[str, Any]:
    """The current window of one model (or every model) and its tenants becomes the reference:
    the traffic now is the new normal."""
    monitor, name = _monitor(request), _model(request, model)
    return {"reset": await asyncio.to_thread(monitor.reset, name)}
