"""OpenAI-compatible endpoints. The data path of one request reads top to bottom in
:func:`handle`: parse -> route -> provider stream -> meter -> ledger -> client."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.accounting import CLIENT_CLOSED, Accounting
from inferplane.api.body import read_json_object
from inferplane.api.errors import error_body, error_response
from inferplane.api.openai_parse import parse
from inferplane.api.openai_render import DONE, ChunkWriter, completion, error_event
from inferplane.api.sse import EventStreamResponse
from inferplane.errors import EngineUnavailable, InferplaneError
from inferplane.gateway import Gateway
from inferplane.protocol.types import (
    Endpoint,
    Finished,
    GenerationRequest,
    Started,
    StreamEvent,
    TextDelta,
)

_PREFIX = {"chat.completions": "chatcmpl-", "completions": "cmpl-"}


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "chat.completions")


async def completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "completions")


async def handle(request: Request, endpoint: Endpoint) -> Response | EventStreamResponse:
    gateway: Gateway = request.app.state.gateway
    acct = Accounting(id=_PREFIX[endpoint] + uuid.uuid4().hex, endpoint=endpoint)
    events: AsyncGenerator[StreamEvent, None] | None = None
    try:
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = parse(endpoint, body, acct.id, int(acct.ts))
        acct.model, acct.stream = req.model, req.stream
        acct.target = gateway.router.route(req.model)
        events = acct.target.provider.stream(req, acct)
        started = await _first(events)  # errors before the first byte get a proper status
        acct.prompt_tokens = started.prompt_tokens
        if req.stream:
            return EventStreamResponse(_sse(gateway, req, acct, events), _id_header(acct))
        text, finished = await _collect(events, acct)
    except InferplaneError as exc:
        gateway.ledger.append(acct.record(exc.status, exc))
        return error_response(exc, acct.id)
    finally:
        if events is not None and not acct.stream:
            await events.aclose()
    gateway.ledger.append(acct.record(200))  # durable before the response leaves
    return Response(orjson.dumps(completion(req, text, finished)), 200,
                    media_type="application/json", headers={"x-request-id": acct.id})


async def _first(events: AsyncIterator[StreamEvent]) -> Started:
    event = await anext(events, None)
    if not isinstance(event, Started):
        raise EngineUnavailable("the engine ended the request before starting it")
    return event


async def _collect(events: AsyncIterator[StreamEvent], acct: Accounting
                   ) -> tuple[str, Finished]:
    parts: list[str] = []
    async for event in events:
        if isinstance(event, TextDelta):
            acct.delta()
            parts.append(event.text)
        elif isinstance(event, Finished):
            acct.finished(event)
            return "".join(parts), event
    raise EngineUnavailable("the engine ended the request without finishing it")


async def _sse(gateway: Gateway, req: GenerationRequest, acct: Accounting,
               events: AsyncGenerator[StreamEvent, None]) -> AsyncGenerator[bytes, None]:
    """The stream of one request. Its ledger record is appended before ``[DONE]``; if the
    client leaves first, the generator is closed, the engine slot freed and a 499 recorded."""
    writer = ChunkWriter(req)
    recorded = False
    try:
        yield writer.first()
        async for event in events:
            if isinstance(event, TextDelta):
                acct.delta()
                yield writer.text(event.text)
            elif isinstance(event, Finished):
                acct.finished(event)
                yield writer.finish(event)
                if req.include_usage:
                    yield writer.usage(event)
                gateway.ledger.append(acct.record(200))
                recorded = True
                yield DONE
                return
        raise EngineUnavailable("the engine ended the stream without finishing it")
    except InferplaneError as exc:
        if not recorded:
            gateway.ledger.append(acct.record(exc.status, exc))
            recorded = True
        yield error_event(error_body(exc.message, exc.type, param=exc.param, code=exc.code))
    finally:
        await events.aclose()
        if not recorded:
            gateway.ledger.append(acct.record(CLIENT_CLOSED, "client_disconnected"))


def _id_header(acct: Accounting) -> list[tuple[bytes, bytes]]:
    return [(b"x-request-id", acct.id.encode())]


async def list_models(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    created = int(time.time())
    data = [{"id": name, "object": "model", "created": created, "owned_by": "inferplane"}
            for name in gateway.router.model_names()]
    return Response(orjson.dumps({"object": "list", "data": data}),
                    media_type="application/json")


async def get_model(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    name = request.path_params["model"]
    try:
        gateway.router.targets(name)
    except InferplaneError as exc:
        return error_response(exc)
    body = {"id": name, "object": "model", "created": int(time.time()), "owned_by": "inferplane"}
    return Response(orjson.dumps(body), media_type="application/json")


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
