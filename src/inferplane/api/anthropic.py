"""Anthropic-compatible endpoint ``POST /v1/messages``: parse, run the data path, render.

Any deployment can serve it: the request is parsed into the canonical form, so an Anthropic SDK
client reaches an OpenAI-compatible server, Gemini or the embedded engine as well as Anthropic.
"""

from __future__ import annotations

import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.accounting import Accounting
from inferplane.api.anthropic_parse import parse
from inferplane.api.anthropic_render import (
    REQUEST_ID_HEADER,
    StreamWriter,
    error_body,
    error_headers,
    error_status,
    message,
)
from inferplane.api.body import read_json_object
from inferplane.api.datapath import Generation
from inferplane.api.sse import EventStreamResponse
from inferplane.errors import InferplaneError
from inferplane.gateway import Gateway


async def messages(request: Request) -> Response | EventStreamResponse:
    gateway: Gateway = request.app.state.gateway
    acct = Accounting(id="msg_" + uuid.uuid4().hex, endpoint="messages")
    generation: Generation | None = None
    try:
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = parse(body, acct.id, int(acct.ts))
        acct.model, acct.stream = req.model, req.stream
        generation = Generation(gateway, req, acct)
        await generation.start(request.headers)
        if req.stream:
            writer = StreamWriter(req, acct.prompt_tokens)
            return EventStreamResponse(generation.sse(writer), _headers(generation))
        result = await generation.collect()
    except InferplaneError as exc:
        gateway.ledger.append(acct.record(exc.status, exc))
        headers = {**(_headers(generation) if generation else {}),
                   **error_headers(exc, acct.id)}
        return Response(orjson.dumps(error_body(exc, acct.id)), error_status(exc),
                        media_type="application/json", headers=headers)
    gateway.ledger.append(acct.record(200))  # durable before the response leaves
    out = message(req, result.text, result.finished, result.tool_calls)
    return Response(orjson.dumps(out), 200, media_type="application/json",
                    headers=_headers(generation))


def _headers(generation: Generation) -> dict[str, str]:
    headers = generation.headers()
    headers[REQUEST_ID_HEADER] = headers["x-request-id"]
    return headers


routes = [Route("/v1/messages", messages, methods=["POST"])]
