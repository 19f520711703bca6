"""What the dashboard (``/dashboard``) shows, in the admin API: ``/admin/v1/dashboard/usage``
(the ledger over time and per model, deployment, version and tenant) and
``/admin/v1/dashboard/operations`` (firing conditions, kills, rollouts and rollbacks).

Usage needs ``read:ledger``: ``viewer`` and ``admin`` keys see every tenant and may pick one, a
tenant's key sees its own tenant's records whatever it asks for. Operations need ``viewer``
(they are about the whole gateway). The figures are folded by ``ledger/series.py`` and the
conditions judged by ``observe/conditions.py``; these routes only read and hand over.
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query, Request

from inferplane.api.admin_deps import LedgerReader, Viewer, gateway_of
from inferplane.compliance.incidents import Incidents
from inferplane.errors import InvalidRequest
from inferplane.ledger import series
from inferplane.observe import conditions, external_alerts
from inferplane.observe.conditions import Condition

router = APIRouter(prefix="/v1/dashboard", tags=["dashboard"])

_NAME = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
_MODEL = r"^[^\x00-\x1f]{1,256}$"
MAX_SPAN_S = 366 * 86_400.0
MAX_BUCKETS = 1_000  # a window cut finer than this is refused (its answer would be huge)
DEFAULT_SPAN_S = 86_400.0
# The registry events the operations panel lists: changes of what serves.
CHANGES = ("rollout", "rollback", "retire", "kill", "unkill")
MAX_CHANGES = 200
ALERTS_TIMEOUT_S = 3.0  # the longest the operations panel waits for observe.alerts_url

Time = Annotated[float | None, Query(ge=0, le=1e11, description="Unix seconds.")]


def window(since: float | None, until: float | None, now: float,
           bucket_s: int | None = None) -> tuple[float, float]:
    """The window asked for (default: the last day), checked, with its bucket width.

    >>> window(None, None, now=100_000.0)
    (13600.0, 100000.0)
    >>> window(0, 86_400 * 30, now=0, bucket_s=60)
    Traceback (most recent call last):
    inferplane.errors.InvalidRequest: Buckets of 60 s cut the window into more than 1000.
    """
    end = now if until is None else until
    start = end - DEFAULT_SPAN_S if since is None else since
    if start >= end:
        raise InvalidRequest("'since' must be before 'until'.", param="since")
    if end - start > MAX_SPAN_S:
        raise InvalidRequest("The window is longer than 366 days.", param="since")
    if bucket_s is not None and (end - start) / bucket_s > MAX_BUCKETS:
        raise InvalidRequest(f"Buckets of {bucket_s} s cut the window into more than "
                             f"{MAX_BUCKETS}.", param="bucket_s")
    return start, end


@router.get("/usage")
async def usage(
    request: Request, principal: LedgerReader, since: Time = None, until: Time = None,
    tenant: Annotated[str | None, Query(pattern=_NAME)] = None,
    model: Annotated[str | None, Query(pattern=_MODEL)] = None,
    bucket_s: Annotated[int | None, Query(ge=60, le=7 * 86_400)] = None,
) -> dict[str, Any]:
    """Cost, tokens, energy, CO2 and water per time bucket (default width: the window in at
    most 120), with each bucket's TTFT, ITL and latency p50/p95/p99 in ms; the totals; the
    requests per error type; the same figures per model, deployment, version and tenant;
    the models and tenants to filter by (configured or in the window). ``scope`` says
    whether the key sees every tenant (``operator``) or only its own (``tenant``, then
    ``tenant`` is that one, whatever was asked)."""
    if not principal.operator:
        tenant = principal.tenant_name
    start, end = window(since, until, time.time(), bucket_s)
    gateway = gateway_of(request)
    store = gateway.ledger.store

    def fold() -> dict[str, Any]:
        rows = store.records(start, end, series.COLUMNS, tenant=tenant, model=model)
        return series.aggregate(rows, start, end, bucket_s)

    figures = await asyncio.to_thread(fold)
    seen = {d: {g["name"] for g in figures["breakdowns"][d] if g["name"] is not None}
            for d in ("model", "tenant")}
    if principal.operator:
        known = {t.name for t in await asyncio.to_thread(gateway.access.store.tenants)}
        tenants = sorted(known | seen["tenant"])
    else:
        tenants = [] if tenant is None else [tenant]
    return {**figures, "scope": "operator" if principal.operator else "tenant",
            "tenant": tenant, "model": model, "tenants": tenants,
            "models": sorted({m.name for m in gateway.config.models} | seen["model"])}


@router.get("/operations")
async def operations(request: Request, _p: Viewer, since: Time = None) -> dict[str, Any]:
    """The conditions firing now (open or half-open circuit breakers, kills in force,
    incident reports due within 24 h or overdue, rollbacks in the last 24 h, and the firing
    alerts of ``observe.alerts_url`` where it is set), the kills in
    force, and the rollouts, rollbacks, retirements and kills since ``since`` (default: the
    last day), newest first."""
    gateway = gateway_of(request)
    now = time.time()
    start = now - DEFAULT_SPAN_S if since is None else since
    registry = gateway.governance.registry
    clock = time.monotonic()
    breakers = {name: stats.breaker.state(clock) for name, stats in gateway.router.stats.items()}

    def read() -> tuple[list[Any], list[dict[str, Any]], list[tuple[str, float]]]:
        events = registry.events(actions=CHANGES, limit=MAX_CHANGES)
        return registry.kills(), events, Incidents(registry.engine).pending()

    (kills, events, pending), external = await asyncio.gather(
        asyncio.to_thread(read), _external(gateway.config.observe.alerts_url))
    firing = conditions.firing([
        *conditions.breaker_conditions(breakers), *conditions.kill_conditions(kills),
        *conditions.deadline_conditions(pending, now), *conditions.rollback_conditions(events, now),
        *external,
    ])
    return {
        "generated_at": now,
        "alerts": [c.to_dict() for c in firing],
        "kills": [k.to_dict() for k in kills],
        "changes": [{key: e[key] for key in ("ts", "actor", "action", "kind", "target", "model",
                                             "from_stage", "to_stage", "reason")}
                    for e in reversed(events) if e["ts"] >= start],
    }


async def _external(url: str | None) -> list[Condition]:
    """The firing alerts of the Prometheus or Alertmanager at ``url``; one condition saying
    why when they cannot be read."""
    if url is None:
        return []
    try:
        async with httpx.AsyncClient(timeout=ALERTS_TIMEOUT_S) as client:
            response = await client.get(url, headers={"accept": "application/json"})
        response.raise_for_status()
        return external_alerts.firing_alerts(response.json())
    except (httpx.HTTPError, ValueError) as exc:
        return [external_alerts.unreachable(url, str(exc) or type(exc).__name__)]
