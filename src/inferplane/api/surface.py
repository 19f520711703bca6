"""The HTTP side of a generation, whatever protocol the client speaks.

:func:`serve` reads top to bottom: who is calling, the body, the protocol's :class:`Surface`
parses it into a canonical request, the :class:`~inferplane.generation.Generation` runs it
(route, admit, attempts, metering, the ledger record), and the surface renders the result, the
stream or the error in its protocol. Failures before the first byte get a proper status; after
it, an error event in the stream.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from inferplane.api.auth import authenticate
from inferplane.api.body import read_json_object
from inferplane.api.event_stream import EventStreamResponse
from inferplane.errors import InferplaneError
from inferplane.gateway import Gateway
from inferplane.generation import Generation, Result, StreamWriter
from inferplane.protocol.types import GenerationRequest
from inferplane.request_accounting import Accounting


def _same(headers: dict[str, str]) -> dict[str, str]:
    return headers


@dataclass(frozen=True, slots=True)
class Surface:
    """What one client protocol plugs into the data path: how its bodies parse into a
    canonical request, how results, streams and errors render, and its response headers."""

    parse: Callable[[dict[str, Any], str, int], GenerationRequest]
    writer: Callable[[GenerationRequest, Accounting], StreamWriter]
    render: Callable[[GenerationRequest, Result], dict[str, Any]]
    error: Callable[[InferplaneError, dict[str, str]], Response]
    headers: Callable[[dict[str, str]], dict[str, str]] = _same


async def serve(request: Request, acct: Accounting, surface: Surface
                ) -> Response | EventStreamResponse:
    """One generation request, start to end: parse -> route and start -> stream or collect
    (metered) -> ledger -> the client, in the surface's protocol."""
    generation = Generation(request.app.state.gateway, acct, request.headers)
    try:
        body = await read_request(request, generation)
        req = surface.parse(body, acct.id, int(acct.ts))
        await generation.start(req, request.headers)  # errors before the first byte: a status
        if req.stream:
            return EventStreamResponse(generation.sse(surface.writer(req, acct)),
                                       surface.headers(generation.headers()))
        result = await generation.collect()
    except InferplaneError as exc:
        generation.end(exc.status, exc)
        return surface.error(exc, surface.headers(generation.headers()))
    return Response(orjson.dumps(surface.render(req, result)), 200,
                    media_type="application/json", headers=surface.headers(generation.headers()))


async def read_request(request: Request, generation: Generation) -> dict[str, Any]:
    """The caller (kept for the record) and the JSON body of a data-path request."""
    gateway: Gateway = generation.gateway
    generation.acct.principal = await authenticate(gateway, request)
    return await read_json_object(request, gateway.config.server.max_body_bytes)
