"""The Responses API's core, without HTTP: a parsed body and the caller's generation in, the
response object out (:func:`respond`), or a started generation for the HTTP layer to stream
(:func:`start`). A batch runner calls :func:`respond_as` with the caller's ``Principal``.

A request is parsed (``responses_parse.py``), its conversation rebuilt from the stored chain
of ``previous_response_id`` (``responses/store.py``, the caller's tenant only), translated to
the canonical request (``responses_items.py``) and run on the shared data path
(:class:`~inferplane.generation.Generation`: routing, tenancy, cache, exactly one ledger
record), so every upstream serves it. A finished response is stored unless ``store: false``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inferplane.api.responses_items import (
    generation_request,
    output_items,
    response_object,
    status_of,
    usage,
)
from inferplane.api.responses_parse import ResponsesCall, new_id, parse
from inferplane.errors import InferplaneError, InvalidRequest, NotFound
from inferplane.gateway import Gateway
from inferplane.generation import NO_HEADERS, Generation, Result
from inferplane.request_accounting import Accounting
from inferplane.responses.store import OPEN_TENANT, StoredResponse
from inferplane.tenancy.records import Principal

log = logging.getLogger("inferplane.api")

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class Turn:
    """A request on its way: the checked call, the chain's items before it, and when."""

    call: ResponsesCall
    history: tuple[dict[str, Any], ...]
    created_at: int


def tenant_of(principal: Principal) -> str:
    return principal.tenant_name or OPEN_TENANT


async def start(generation: Generation, body: dict[str, Any],
                headers: Mapping[str, str] = NO_HEADERS) -> Turn:
    """Parse ``body``, rebuild its conversation and start the generation (routed, admitted,
    the first upstream streaming). Raises :class:`InferplaneError`; the caller ends the
    generation with it."""
    acct = generation.acct
    call = parse(body)
    history: tuple[dict[str, Any], ...] = ()
    if call.previous_response_id is not None:
        history = await _history(generation.gateway, tenant_of(acct.principal),
                                 call.previous_response_id)
    turn = Turn(call, history, int(acct.ts))
    req = generation_request(call, history, acct.id, turn.created_at)
    try:
        await generation.start(req, headers)
    except InferplaneError as exc:
        if exc.param == "response_format":  # the chat name of the field this API calls so
            exc.param = "text.format"
        raise
    return turn


async def respond(generation: Generation, body: dict[str, Any],
                  headers: Mapping[str, str] = NO_HEADERS) -> dict[str, Any]:
    """The response object for a non-streamed request ``body``, stored unless ``store:
    false``. Raises :class:`InferplaneError` (the generation's ledger record is written
    either way: exactly one)."""
    try:
        if body.get("stream") is True:
            raise InvalidRequest("stream: true needs the HTTP endpoint.", param="stream")
        turn = await start(generation, body, headers)
        result = await generation.collect()
    except InferplaneError as exc:
        generation.end(exc.status, exc)
        raise
    response = _finished(generation.acct.id, turn, result)
    if turn.call.store:
        await save(generation, turn, response)
    return response


async def respond_as(gateway: Gateway, principal: Principal, body: dict[str, Any],
                     response_id: str | None = None) -> dict[str, Any]:
    """:func:`respond` for ``principal`` (who the request acts as), without HTTP."""
    acct = Accounting(id=response_id or new_id("resp_"), endpoint="responses",
                      principal=principal)
    return await respond(Generation(gateway, acct), body)


def _finished(response_id: str, turn: Turn, result: Result) -> dict[str, Any]:
    finish = result.finished.finish_reason
    status, incomplete = status_of(finish)
    return response_object(
        response_id, turn.created_at, turn.call, status,
        output_items(result.text, result.tool_calls, finish),
        usage=usage(result.finished.usage), incomplete=incomplete,
        completed_at=int(time.time()) if status == "completed" else None)


async def _history(gateway: Gateway, tenant: str, previous_id: str
                   ) -> tuple[dict[str, Any], ...]:
    chain = await asyncio.to_thread(gateway.responses.chain, tenant, previous_id, time.time(),
                                    gateway.config.responses.max_chain)
    if chain is None:
        raise NotFound(f"Previous response with id '{previous_id}' not found.",
                       param="previous_response_id")
    return tuple(item for stored in chain
                 for item in (*stored.input_items, *stored.response["output"]))


async def save(generation: Generation, turn: Turn, response: dict[str, Any]) -> None:
    """Keep ``response`` for ``responses.retention_days``. The answer stands if the store
    fails (it was generated and recorded); the failure is logged."""
    gateway = generation.gateway
    now = time.time()
    stored = StoredResponse(
        response["id"], tenant_of(generation.acct.principal), now,
        now + gateway.config.responses.retention_days * DAY_S,
        turn.call.previous_response_id, list(turn.call.items), response)
    try:
        await asyncio.to_thread(gateway.responses.save, stored)
    except Exception:
        log.exception("storing response %s failed", response["id"])
