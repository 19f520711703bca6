"""The model registry and the kill switch in the admin API: ``/admin/v1/models`` (versions,
cards, approvals, rollout, rollback, retirement, history) and ``/admin/v1/kills``.

Reading needs ``viewer``; changing needs ``admin``; approving needs ``approve``, which
``admin`` does not imply (docs/governance.md). Each change is recorded with its actor, and the
gateway that took it applies it at once; the others within ``governance.poll_interval_ms``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from inferplane.api.admin_deps import Admin, Approver, Body, Viewer, actor, gateway_of
from inferplane.governance import views
from inferplane.governance.cards import MAX_CARD_BYTES
from inferplane.governance.kills import KillKind, check_target
from inferplane.governance.registry import Registry
from inferplane.governance.rollout import Move
from inferplane.governance.stages import Stage

_NAME = r"^[^/\x00-\x1f]{1,128}$"  # a version, model, deployment or provider name
_REASON = r"^[^\x00-\x08\x0b-\x1f]*$"
Name = Annotated[str, Path(pattern=_NAME)]
Reason = Annotated[str, Field(min_length=1, max_length=1000, pattern=_REASON)]

router = APIRouter(prefix="/v1", tags=["models"])


class CardIn(Body):
    card: str = Field(max_length=MAX_CARD_BYTES, pattern=r"^[^\x00]*$",
                      description="The model card: Hugging Face Markdown with YAML metadata.")


class ApproveIn(Body):
    comment: str | None = Field(None, max_length=1000, pattern=_REASON)


class RolloutIn(Body):
    stage: Literal["shadow", "canary", "production"] = Field(
        "production", description="shadow: a mirrored sample of the model's requests, answers "
                                  "discarded; canary: a share of them, sticky per session or "
                                  "user; production: all of them.")
    percent: float | None = Field(
        None, gt=0, le=100, description="Shadow: the share mirrored (default 100); canary: the "
                                        "share served (default 5). Not for production.")
    promote_after_s: float | None = Field(
        None, gt=0, description="Canary: the rollout watcher promotes it to production once "
                                "its gates have passed for this many seconds.")
    reason: str | None = Field(None, max_length=1000, pattern=_REASON)


class RetireIn(Body):
    reason: Reason


class RollbackIn(Body):
    model: str = Field(pattern=_NAME)
    reason: str | None = Field(None, max_length=1000, pattern=_REASON)


class KillIn(Body):
    kind: KillKind = Field(strict=False, description="deployment, model or provider")
    name: str = Field(pattern=_NAME)
    reason: Reason


async def _read(request: Request, call: Callable[[Registry], Any]) -> Any:
    return await asyncio.to_thread(call, gateway_of(request).governance.registry)


async def _change(request: Request, call: Callable[[Registry], Any]) -> Any:
    """Make a change, then serve from it here at once (the other processes poll)."""
    result = await _read(request, call)
    await gateway_of(request).governance.refresh()
    return result


def _moves(moves: list[Move]) -> list[dict[str, str]]:
    return [{"version": m.version, "from": str(m.from_stage), "to": str(m.to_stage)}
            for m in moves]


@router.get("/models")
async def list_versions(request: Request, _p: Viewer,
                        model: Annotated[str | None, Query(pattern=_NAME)] = None
                        ) -> list[dict[str, Any]]:
    """Every registered version (of ``model``), its stage, and whether this gateway sends
    it requests now (``held_back`` says why not)."""
    gateway = gateway_of(request)
    held = gateway.router.held_back
    serving = {d.version_name: held.get(d.name) for d in gateway.config.deployments}
    return [{**v.to_dict(), "configured": v.version in serving,
             "held_back": serving.get(v.version, "not in this gateway's configuration")}
            for v in await _read(request, lambda r: r.versions(model))]


@router.get("/models/history")
async def history(request: Request, _p: Viewer, model: Annotated[str, Query(pattern=_NAME)],
                  at: Annotated[float | None, Query(ge=0, le=1e11)] = None,
                  tenant: Annotated[str | None, Query(pattern=_NAME)] = None,
                  window_s: Annotated[float, Query(gt=0, le=1e8)] = views.DEFAULT_WINDOW_S
                  ) -> dict[str, Any]:
    """Which version(s) of ``model`` served at ``at`` (Unix seconds; default now): the stages
    and kills in force then, and the versions the ledger shows answering (of ``tenant``)."""
    moment = time.time() if at is None else at
    return dict(await _read(request, lambda r: views.history(r, model, moment, tenant,
                                                              window_s)))


@router.post("/models/rollback")
async def rollback(request: Request, body: RollbackIn, principal: Admin) -> dict[str, Any]:
    """Take the model's shadow or canary version out of its rollout; without one, give
    production back to the versions the model's latest rollout took it from."""
    settings = gateway_of(request).config.governance
    moves = await _change(request, lambda r: r.rollback(body.model, actor(principal),
                                                        body.reason, settings))
    return {"model": body.model, "moves": _moves(moves)}


@router.get("/models/{version}")
async def show_version(request: Request, version: Name, _p: Viewer) -> dict[str, Any]:
    """A version with its approvals, evaluations and lifecycle events."""
    found = await _read(request, lambda r: r.version(version))
    events = await _read(request, lambda r: r.events(target=version, limit=1000))
    return {**found.to_dict(), "events": events}


@router.get("/models/{version}/card")
async def get_card(request: Request, version: Name, _p: Viewer) -> dict[str, Any]:
    """The card rendered (environmental impact from the ledger, evaluations as its
    model-index) and the required fields it lacks."""
    required = gateway_of(request).config.governance.card_fields
    return dict(await _read(request, lambda r: views.card(r, version, required)))


@router.put("/models/{version}/card")
async def put_card(request: Request, version: Name, body: CardIn,
                   principal: Admin) -> dict[str, Any]:
    """Store the version's card. Its writer may not approve the version."""
    await _change(request, lambda r: r.store_card(version, body.card, actor(principal)))
    return await get_card(request, version, principal)


@router.post("/models/{version}/approve")
async def approve(request: Request, version: Name, body: ApproveIn,
                  principal: Approver) -> dict[str, Any]:
    """Approve the version (needs the ``approve`` scope; not its proposer; a complete card)."""
    settings = gateway_of(request).config.governance
    found, verdict = await _change(request, lambda r: r.approve(
        version, actor(principal), settings, body.comment))
    return {**found.to_dict(), "approvals_count": verdict.count,
            "approvals_required": verdict.required}


@router.post("/models/{version}/rollout")
async def rollout(request: Request, version: Name, body: RolloutIn,
                  principal: Admin) -> dict[str, Any]:
    """Put the version in shadow or canary (at ``percent``; judged against production and
    rolled back automatically when a gate fails) or production (the model's production
    versions step down). A canary rolled out to canary again takes the new percent."""
    settings = gateway_of(request).config.governance
    moves = await _change(request, lambda r: r.rollout(
        version, Stage(body.stage), actor(principal), body.reason, settings, body.percent,
        body.promote_after_s))
    found = await _read(request, lambda r: r.version(version))
    return {"version": version, "moves": _moves(moves), "rollout": found.rollout}


@router.post("/models/{version}/retire")
async def retire(request: Request, version: Name, body: RetireIn,
                 principal: Admin) -> dict[str, Any]:
    """Retire the version: it never serves again."""
    settings = gateway_of(request).config.governance
    found = await _change(request, lambda r: r.retire(version, actor(principal), body.reason,
                                                      settings))
    return dict(found.to_dict())


@router.get("/kills", tags=["kills"])
async def list_kills(request: Request, _p: Viewer) -> list[dict[str, Any]]:
    """The kills in force, oldest first."""
    return [k.to_dict() for k in await _read(request, lambda r: r.kills())]


@router.post("/kills", status_code=201, tags=["kills"])
async def kill(request: Request, body: KillIn, principal: Admin) -> dict[str, Any]:
    """Stop every request to a deployment, a model or a provider on every gateway process
    (within ``governance.poll_interval_ms``); requests fall back where a fallback exists."""
    check_target(body.kind, body.name, gateway_of(request).config.deployments)
    done = await _change(request, lambda r: r.kill(body.kind, body.name, body.reason,
                                                   actor(principal)))
    return {"kind": str(done.kind), "name": done.name, "reason": done.reason,
            "actor": done.actor, "ts": done.ts}


@router.delete("/kills/{kind}/{name}", status_code=204, tags=["kills"])
async def unkill(request: Request, kind: KillKind, name: Name, principal: Admin,
                 reason: Annotated[str | None, Query(max_length=1000, pattern=_REASON)] = None
                 ) -> None:
    """Lift a kill."""
    await _change(request, lambda r: r.unkill(kind, name, actor(principal), reason))
