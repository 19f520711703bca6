"""OpenAI's Responses API over HTTP: ``POST /v1/responses`` (plain or streamed), ``GET`` and
``DELETE /v1/responses/{id}``, ``GET /v1/responses/{id}/input_items``. What a request does is
``responses_core.py``'s; here: the caller and the body, the event stream, the stored ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.auth import authenticate
from inferplane.api.error_responses import error_response
from inferplane.api.event_stream import EventStreamResponse
from inferplane.api.responses_core import Turn, respond, save, start, tenant_of
from inferplane.api.responses_parse import new_id
from inferplane.api.responses_stream import ResponseEvents
from inferplane.api.surface import read_request
from inferplane.errors import InferplaneError, InvalidRequest, NotFound
from inferplane.gateway import Gateway
from inferplane.generation import Generation
from inferplane.request_accounting import Accounting
from inferplane.responses.store import StoredResponse

MAX_LIST = 100  # input_items: the most items one page holds (OpenAI's limit)


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
                await save(generation, turn, events.final)
            yield frame
    finally:
        await frames.aclose()


async def retrieve(request: Request) -> Response:
    """A stored response as it was served; replaying its stream or adding data to it
    (``stream``, ``include``, ``starting_after``) is refused by name."""
    for name in ("stream", "include", "include[]", "starting_after"):
        if request.query_params.get(name) not in (None, "", "false"):
            raise InvalidRequest(f"Unsupported query parameter: '{name}': a stored "
                                 "response is returned whole, as it was served.",
                                 param=name.removesuffix("[]"),
                                 code="unsupported_parameter")
    stored = await _stored(request)
    return _json(stored.response)


async def delete(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    response_id = request.path_params["response_id"]
    principal = await authenticate(gateway, request)
    gone = await asyncio.to_thread(gateway.responses.delete, tenant_of(principal),
                                   response_id, time.time())
    if not gone:
        raise _not_found(response_id)
    return _json({"id": response_id, "object": "response.deleted", "deleted": True})


async def input_items(request: Request) -> Response:
    """The response's own input items, a page at a time (``order``: ``desc`` by default,
    ``limit`` 1 to 100, ``after`` an item id)."""
    stored = await _stored(request)
    page = _page(stored.input_items, request.query_params)
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
