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

from inferplane.api.anthropic_parse import parse
from inferplane.api.anthropic_render import (
    REQUEST_ID_HEADER,
    StreamWriter,
    error_body,
    error_headers,
    error_status,
    message,
)
from inferplane.api.event_stream import EventStreamResponse
from inferplane.api.surface import Surface, serve
from inferplane.errors import InferplaneError
from inferplane.generation import Result
from inferplane.protocol.types import GenerationRequest
from inferplane.request_accounting import Accounting


def _error(exc: InferplaneError, headers: dict[str, str]) -> Response:
    request_id = headers.get(REQUEST_ID_HEADER)
    return Response(orjson.dumps(error_body(exc, request_id)), error_status(exc),
                    media_type="application/json",
                    headers={**headers, **error_headers(exc, request_id)})


def _headers(headers: dict[str, str]) -> dict[str, str]:
    """Anthropic's clients read the request id from ``request-id``."""
    return {**headers, REQUEST_ID_HEADER: headers["x-request-id"]}


def _render(req: GenerationRequest, result: Result) -> dict[str, object]:
    return message(req, result.text, result.finished, result.tool_calls)


SURFACE = Surface(parse=parse, writer=lambda req, acct: StreamWriter(req, acct.prompt_tokens),
                  render=_render, error=_error, headers=_headers)


async def messages(request: Request) -> Response | EventStreamResponse:
    acct = Accounting(id="msg_" + uuid.uuid4().hex, endpoint="messages")
    return await serve(request, acct, SURFACE)


routes = [Route("/v1/messages", messages, methods=["POST"])]
