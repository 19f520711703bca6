"""``/v1/batches``: create a batch from an uploaded input file, retrieve it, cancel it, list
them (``after``/``limit``). Tenant-scoped: another tenant's batch is a 404. The lines run in the
gateway's batch runner (``batch/runner.py``)."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.auth import authenticate
from inferplane.api.batch_render import batch_object, page
from inferplane.api.body import read_json_object
from inferplane.api.files_routes import (
    json_response,
    model_refusal,
    no_such_file,
    owned,
    query_int,
)
from inferplane.batch.endpoints import ENDPOINTS
from inferplane.batch.jsonl import parse_input
from inferplane.batch.lifecycle import WINDOWS
from inferplane.errors import InvalidRequest, NotFound
from inferplane.gateway import Gateway

MAX_METADATA_KEYS = 16  # as OpenAI allows


def _no_such_batch(batch_id: str) -> NotFound:
    return NotFound(f"No such Batch object: {batch_id}", param="batch_id")


def _field(body: dict[str, Any], name: str, allowed: Any = None) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidRequest(f"{name} is required and must be a string.", param=name)
    if allowed is not None and value not in allowed:
        raise InvalidRequest(f"{name} must be one of: {', '.join(sorted(allowed))} "
                             f"(got {value!r}).", param=name)
    return value


def _metadata(body: dict[str, Any]) -> dict[str, str] | None:
    metadata = body.get("metadata")
    if metadata is None:
        return None
    if (not isinstance(metadata, dict) or len(metadata) > MAX_METADATA_KEYS
            or not all(isinstance(v, str) for v in metadata.values())):
        raise InvalidRequest(f"metadata must be an object of at most {MAX_METADATA_KEYS} "
                             "string values.", param="metadata")
    return metadata


async def create_batch(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    store = gateway.batches.store
    principal = await authenticate(gateway, request)
    body = await read_json_object(request, gateway.config.server.max_body_bytes)
    file_id = _field(body, "input_file_id")
    endpoint = _field(body, "endpoint", ENDPOINTS.keys())
    window = _field(body, "completion_window", WINDOWS.keys())
    metadata = _metadata(body)
    tenant = principal.tenant_name
    found = await asyncio.to_thread(store.file, file_id, tenant)
    content = await asyncio.to_thread(store.content, file_id, tenant)
    if found is None or content is None:
        raise no_such_file(file_id)
    if found.purpose != "batch":
        raise InvalidRequest(f"The file {file_id} is a {found.purpose} file, not a batch "
                             "input file.", param="input_file_id")
    lines = await asyncio.to_thread(parse_input, content, ENDPOINTS.keys(),
                                    model_refusal(gateway, principal),
                                    gateway.config.batch.max_lines)
    errors = [{"code": "invalid_url", "line": number, "param": "url",
               "message": f"The line's url {line.url} is not the batch's endpoint "
               f"{endpoint}."}
              for number, line in enumerate(lines, start=1) if line.url != endpoint]
    row = await asyncio.to_thread(
        store.create, tenant=tenant, key_id=principal.key_id, endpoint=endpoint,
        input_file_id=file_id, window=window, window_s=WINDOWS[window], metadata=metadata,
        lines=lines, errors=errors[:100])
    gateway.batches.wake()
    return json_response(batch_object(row))


async def get_batch(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    row = await owned(request, "batch_id", gateway.batches.store.batch, _no_such_batch)
    return json_response(batch_object(row))


async def cancel_batch(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    row = await owned(request, "batch_id", gateway.batches.store.cancel, _no_such_batch)
    gateway.batches.wake()
    return json_response(batch_object(row))


async def list_batches(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    principal = await authenticate(gateway, request)
    limit = query_int(request, "limit", 20, 100)
    rows = await asyncio.to_thread(gateway.batches.store.batches, principal.tenant_name,
                                   request.query_params.get("after"), limit + 1)
    return json_response(page([batch_object(r) for r in rows[:limit]], len(rows) > limit))


routes = [
    Route("/v1/batches", create_batch, methods=["POST"]),
    Route("/v1/batches", list_batches, methods=["GET"]),
    Route("/v1/batches/{batch_id}", get_batch, methods=["GET"]),
    Route("/v1/batches/{batch_id}/cancel", cancel_batch, methods=["POST"]),
]
