"""OpenAI-compatible endpoints: chat completions and completions as a :class:`Surface` on the
shared data path (``surface.serve``), embeddings, and the model list."""

from __future__ import annotations

import time
import uuid
from functools import partial

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.auth import authenticate
from inferplane.api.error_responses import error_response
from inferplane.api.event_stream import EventStreamResponse
from inferplane.api.openai_parse import parse, parse_embeddings
from inferplane.api.openai_render import ChunkWriter, completion, embeddings
from inferplane.api.surface import Surface, read_request, serve
from inferplane.errors import InferplaneError, ModelNotFound
from inferplane.gateway import Gateway
from inferplane.generation import Generation, Result
from inferplane.protocol.types import Endpoint, GenerationRequest
from inferplane.request_accounting import Accounting

_PREFIX: dict[Endpoint, str] = {"chat.completions": "chatcmpl-", "completions": "cmpl-"}


def _render(req: GenerationRequest, result: Result) -> dict[str, object]:
    return completion(req, result.text, result.finished, result.tool_calls, result.logprobs)


def _surface(endpoint: Endpoint) -> Surface:
    return Surface(parse=partial(parse, endpoint),
                   writer=lambda req, acct: ChunkWriter(req, acct.prompt_tokens),
                   render=_render, error=error_response)


_SURFACES = {endpoint: _surface(endpoint) for endpoint in _PREFIX}


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "chat.completions")


async def completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "completions")


async def handle(request: Request, endpoint: Endpoint) -> Response | EventStreamResponse:
    acct = Accounting(id=_PREFIX[endpoint] + uuid.uuid4().hex, endpoint=endpoint)
    return await serve(request, acct, _SURFACES[endpoint])


async def create_embeddings(request: Request) -> Response:
    acct = Accounting(id="emb-" + uuid.uuid4().hex, endpoint="embeddings")
    generation = Generation(request.app.state.gateway, acct, request.headers)
    headers = {"x-request-id": acct.id}
    try:
        body = await read_request(request, generation)
        req = parse_embeddings(body, acct.id)
        result = await generation.embed(req, request.headers)
    except InferplaneError as exc:
        generation.end(exc.status, exc)
        return error_response(exc, headers)
    return Response(orjson.dumps(embeddings(req, result)), 200, media_type="application/json",
                    headers=headers)


async def list_models(request: Request) -> Response:
    """The models this key may use."""
    gateway: Gateway = request.app.state.gateway
    try:
        principal = await authenticate(gateway, request)
    except InferplaneError as exc:
        return error_response(exc)
    created = int(time.time())
    data = [{"id": name, "object": "model", "created": created, "owned_by": "inferplane"}
            for name in gateway.router.model_names() if principal.may_use(name)]
    return Response(orjson.dumps({"object": "list", "data": data}),
                    media_type="application/json")


async def get_model(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    name = request.path_params["model"]
    try:
        principal = await authenticate(gateway, request)
        if not principal.may_use(name):  # as if it did not exist: keys see only their models
            raise ModelNotFound(f"The model '{name}' does not exist.", param="model")
        gateway.router.model(name)
    except InferplaneError as exc:
        return error_response(exc)
    body = {"id": name, "object": "model", "created": int(time.time()), "owned_by": "inferplane"}
    return Response(orjson.dumps(body), media_type="application/json")


routes = [
    Route("/v1/chat/completions", chat_completions, methods=["POST"]),
    Route("/v1/completions", completions, methods=["POST"]),
    Route("/v1/embeddings", create_embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
