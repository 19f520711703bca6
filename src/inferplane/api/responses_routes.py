"""OpenAI's Responses API: ``POST /v1/responses`` (plain or streamed), ``GET`` and ``DELETE
/v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``.

A request is parsed (``responses_parse.py``), its conversation rebuilt from the stored chain
of ``previous_response_id`` (``responses/store.py``, the caller's tenant only), translated to
the canonical request (``responses_items.py``) and run on the shared data path
(:class:`~inferplane.generation.Generation`: routing, tenancy, cache, one ledger record), so
every upstream serves it. A finished response is stored unless ``store: false``.

:func:`respond` is the non-streamed core without HTTP, for callers that hold a parsed body
and the caller's identity (a batch runner): :func:`respond_as` builds its generation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.auth import authenticate
from inferplane.api.error_responses import error_response
from inferplane.api.event_stream import EventStreamResponse
from inferplane.api.responses_items import (
    generation_request,
    output_items,
    response_object,
    status_of,
    usage,
)
from inferplane.api.responses_parse import ResponsesCall, new_id, parse
from inferplane.api.responses_stream import ResponseEvents
from inferplane.api.surface import read_request
from inferplane.errors import InferplaneError, InvalidRequest, NotFound
from inferplane.gateway import Gateway
from inferplane.generation import NO_HEADERS, Generation, Result
from inferplane.request_accounting import Accounting
from inferplane.responses.store import OPEN_TENANT, StoredResponse
from inferplane.tenancy.records import Principal

log = logging.getLogger("inferplane.api")

DAY_S = 86_400.0
MAX_LIST = 100  # input_items: the most items one page holds (OpenAI's limit)


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
        await _save(generation, turn, response)
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


async def _save(generation: Generation, turn: Turn, response: dict[str, Any]) -> None:
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


async def create(request: Request) -> Response | EventStreamResponse:
    acct = Accounting(id=new_id("resp_"), endpoint="responses")
    generation = Generation(request.app.state.gateway, acct, request.headers)
    try:
        body = await read_request(request, generation)
        if body.get("stream") is not True:
            response = await respond(generation, body, request.headers)
            return Response(orjson.dumps(response), 200, media_type="application/json",
                            headers=generation.headers())
        turn = await start(generation, body, request.headers)
    except InferplaneError as exc:
        generation.end(exc.status, exc)  # a no-op where respond ended it
        return error_response(exc, generation.headers())
    events = ResponseEvents(turn.call, acct.id, turn.created_at)
    return EventStreamResponse(_stream(generation, turn, events), generation.headers())


async def _stream(generation: Generation, turn: Turn, events: ResponseEvents
                  ) -> AsyncGenerator[bytes, None]:
    """The generation's frames; the finished response is stored before its last event
    leaves, so a client that saw ``response.completed`` finds it."""
    frames = generation.sse(events)
    saved = not turn.call.store
    try:
        async for frame in frames:
            if not saved and events.final is not None:
                saved = True
                await _save(generation, turn, events.final)
            yield frame
    finally:
        await frames.aclose()


async def retrieve(request: Request) -> Response:
    """A stored response as it was served; replaying its stream or adding data to it
    (``stream``, ``include``, ``starting_after``) is refused by name."""
    try:
        for name in ("stream", "include", "include[]", "starting_after"):
            if request.query_params.get(name) not in (None, "", "false"):
                raise InvalidRequest(f"Unsupported query parameter: '{name}': a stored "
                                     "response is returned whole, as it was served.",
                                     param=name.removesuffix("[]"),
                                     code="unsupported_parameter")
        stored = await _stored(request)
    except InferplaneError as exc:
        return error_response(exc)
    return _json(stored.response)


async def delete(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    response_id = request.path_params["response_id"]
    try:
        principal = await authenticate(gateway, request)
        gone = await asyncio.to_thread(gateway.responses.delete, tenant_of(principal),
                                       response_id, time.time())
        if not gone:
            raise _not_found(response_id)
    except InferplaneError as exc:
        return error_response(exc)
    return _json({"id": response_id, "object": "response.deleted", "deleted": True})


async def input_items(request: Request) -> Response:
    """The response's own input items, a page at a time (``order``: ``desc`` by default,
    ``limit`` 1 to 100, ``after`` an item id)."""
    try:
        stored = await _stored(request)
        page = _page(stored.input_items, request.query_params)
    except InferplaneError as exc:
        return error_response(exc)
    return _json(page)


def _page(items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """One page of ``items`` in the order and from the cursor ``query`` asks for.

    >>> items = [{"id": f"m{i}"} for i in range(5)]
    >>> page = _page(items, {"limit": "2", "after": "m3"})
    >>> [i["id"] for i in page["data"]], page["has_more"]
    (['m2', 'm1'], True)
    """
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order must be 'asc' or 'desc'.", param="order")
    limit_text = query.get("limit", "20")
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST:
        raise InvalidRequest(f"limit must be an integer from 1 to {MAX_LIST}.", param="limit")
    ordered = items if order == "asc" else list(reversed(items))
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in ordered]
        if after not in ids:
            raise InvalidRequest(f"No item with id '{after}' in this list.", param="after")
        ordered = ordered[ids.index(after) + 1:]
    data = ordered[:int(limit_text)]
    return {"object": "list", "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": len(ordered) > len(data)}


async def _stored(request: Request) -> StoredResponse:
    gateway: Gateway = request.app.state.gateway
    response_id = request.path_params["response_id"]
    principal = await authenticate(gateway, request)
    stored = await asyncio.to_thread(gateway.responses.get, tenant_of(principal), response_id,
                                     time.time())
    if stored is None:
        raise _not_found(response_id)
    return stored


def _not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


def _json(body: dict[str, Any]) -> Response:
    return Response(orjson.dumps(body), 200, media_type="application/json")


routes = [
    Route("/v1/responses", create, methods=["POST"]),
    Route("/v1/responses/{response_id}", retrieve, methods=["GET"]),
    Route("/v1/responses/{response_id}", delete, methods=["DELETE"]),
    Route("/v1/responses/{response_id}/input_items", input_items, methods=["GET"]),
]
