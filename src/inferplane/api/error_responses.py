"""Errors in OpenAI's wire format: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from inferplane.api.anthropic_render import error_type as anthropic_error_type
from inferplane.errors import InferplaneError

log = logging.getLogger("inferplane.api")

_HTTP_TYPES = {404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error"}


def error_body(
    message: str, type_: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(exc: InferplaneError, headers: dict[str, str] | None = None) -> Response:
    body = error_body(exc.message, exc.type, param=exc.param, code=exc.code)
    headers = dict(headers or {})
    retry_after = getattr(exc, "retry_after", None)
    if exc.status in (429, 503) and retry_after is not None:
        headers["retry-after"] = str(max(1, round(retry_after)))
    return Response(orjson.dumps(body), exc.status, media_type="application/json",
                    headers=headers)


def _anthropic(request: Request) -> bool:
    return request.url.path.startswith("/v1/messages")


async def http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 etc., rendered as the path's protocol errors, not plain text."""
    assert isinstance(exc, HTTPException)
    if _anthropic(request):
        body = {"type": "error", "error": {"type": anthropic_error_type(exc.status_code),
                                           "message": str(exc.detail)}}
    else:
        body = error_body(str(exc.detail),
                          _HTTP_TYPES.get(exc.status_code, "invalid_request_error"))
    return Response(orjson.dumps(body), exc.status_code, media_type="application/json")


async def inferplane_error(request: Request, exc: Exception) -> Response:
    """An error of ours a route leaves to the app (``api/app.py``), as the path's protocol's."""
    assert isinstance(exc, InferplaneError)
    if _anthropic(request):
        body = {"type": "error", "error": {"type": anthropic_error_type(exc.status),
                                           "message": exc.message}}
        return Response(orjson.dumps(body), exc.status, media_type="application/json")
    return error_response(exc)


async def unhandled_exception(request: Request, exc: Exception) -> Response:
    """A bug: log it with its traceback, answer 500 without one."""
    log.exception("unhandled error", exc_info=exc)
    message = "The server had an error while processing your request."
    body = ({"type": "error", "error": {"type": "api_error", "message": message}}
            if _anthropic(request) else error_body(message, "api_error"))
    return Response(orjson.dumps(body), 500, media_type="application/json")
