"""``/v1/files``: batch input files uploaded (multipart, ``purpose=batch``, checked line by
line), listed, read and deleted; output and error files read. Tenant-scoped: another tenant's
file is a 404."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

import orjson
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message

from inferplane.api.auth import authenticate
from inferplane.api.batch_render import file_object, page
from inferplane.batch.endpoints import ENDPOINTS
from inferplane.batch.jsonl import parse_input
from inferplane.errors import InferplaneError, InvalidRequest, NotFound, PayloadTooLarge
from inferplane.gateway import Gateway
from inferplane.tenancy.records import Principal

T = TypeVar("T")
FORM_OVERHEAD = 64 * 1024  # bytes of a multipart body besides the file itself
PURPOSES = ("batch",)  # what a client may upload a file for


def json_response(body: object, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def query_int(request: Request, name: str, default: int, most: int) -> int:
    """The query parameter ``name``: a whole number from 1 to ``most``."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidRequest(f"{name} must be a whole number from 1 to {most}.", param=name)
    return int(raw)


def no_such_file(file_id: str) -> NotFound:
    return NotFound(f"No such File object: {file_id}", param="file_id")


async def owned(request: Request, param: str, find: Callable[[str, str | None], T | None],
                missing: Callable[[str], NotFound]) -> T:
    """What ``find`` (a store call, run in a thread) holds under the path's ``param`` for the
    caller's tenant; another tenant's or none is ``missing``."""
    gateway: Gateway = request.app.state.gateway
    principal = await authenticate(gateway, request)
    found = await asyncio.to_thread(find, request.path_params[param], principal.tenant_name)
    if found is None:
        raise missing(request.path_params[param])
    return found


def model_refusal(gateway: Gateway, principal: Principal) -> Callable[[str], str | None]:
    """``may_use(model)`` for an input file: None when ``principal`` may send it lines."""

    def why_not(model: str) -> str | None:
        try:
            gateway.router.model(model)
        except InferplaneError:
            return f"the model '{model}' does not exist."
        if not principal.may_use(model):
            return f"the API key {principal.key_id} may not use the model '{model}'."
        return None

    return why_not


async def _upload_content(request: Request, limit: int) -> tuple[bytes, str]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise _too_large(limit)
    try:
        async with _limited(request, limit + FORM_OVERHEAD).form(max_files=1,
                                                                  max_fields=8) as form:
            purpose, upload = form.get("purpose"), form.get("file")
            if purpose not in PURPOSES:
                raise InvalidRequest(f"purpose must be one of: {', '.join(PURPOSES)} "
                                     f"(got {purpose!r}).", param="purpose")
            if not isinstance(upload, UploadFile):
                raise InvalidRequest("Send the file as the multipart field 'file'.",
                                     param="file")
            content = await upload.read(limit + 1)
            name = upload.filename or "upload.jsonl"
    except InferplaneError:
        raise
    except Exception as exc:  # a malformed multipart body
        raise InvalidRequest(f"The upload must be a multipart/form-data body ({exc}).",
                             param="file") from exc
    if len(content) > limit:
        raise _too_large(limit)
    return content, name


def _limited(request: Request, limit: int) -> Request:
    """``request`` whose body raises 413 once past ``limit`` bytes while it is read (a body
    without a content-length, chunked, is not buffered beyond it)."""
    seen = 0

    async def receive() -> Message:
        nonlocal seen
        message = await request.receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _too_large(limit - FORM_OVERHEAD)
        return message

    return Request(request.scope, receive)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The file is larger than the limit of {limit} bytes "
                           "(batch.max_file_bytes).", param="file")


async def create_file(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    settings = gateway.config.batch
    principal = await authenticate(gateway, request)
    content, name = await _upload_content(request, settings.max_file_bytes)
    await asyncio.to_thread(parse_input, content, ENDPOINTS.keys(),
                            model_refusal(gateway, principal), settings.max_lines)
    stored = await asyncio.to_thread(gateway.batches.store.add_file,
                                     principal.tenant_name, name, "batch", content)
    return json_response(file_object(stored))


async def list_files(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    principal = await authenticate(gateway, request)
    limit = query_int(request, "limit", 10_000, 10_000)
    found = await asyncio.to_thread(
        gateway.batches.store.files, principal.tenant_name,
        request.query_params.get("purpose"), request.query_params.get("after"), limit + 1)
    return json_response(page([file_object(f) for f in found[:limit]], len(found) > limit))


async def get_file(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    found = await owned(request, "file_id", gateway.batches.store.file, no_such_file)
    return json_response(file_object(found))


async def file_content(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    content = await owned(request, "file_id", gateway.batches.store.content,
                          no_such_file)
    return Response(content, 200, media_type="application/jsonl")


async def delete_file(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    file_id = request.path_params["file_id"]
    principal = await authenticate(gateway, request)
    if not await asyncio.to_thread(gateway.batches.store.delete_file, file_id,
                                   principal.tenant_name):
        raise no_such_file(file_id)
    return json_response({"id": file_id, "object": "file", "deleted": True})


routes = [
    Route("/v1/files", create_file, methods=["POST"]),
    Route("/v1/files", list_files, methods=["GET"]),
    Route("/v1/files/{file_id}", get_file, methods=["GET"]),
    Route("/v1/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/v1/files/{file_id}/content", file_content, methods=["GET"]),
]
