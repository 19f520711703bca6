"""OpenAI-compatible endpoints: their :class:`Surface` on the shared data path
(``datapath.serve``: parse -> route and start -> collect or stream -> ledger -> client)."""

from __future__ import annotations

import time
import uuid
from functools import partial

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.accounting import Accounting
from inferplane.api.body import read_json_object
from inferplane.api.datapath import (
    Result,
    Surface,
    authenticate,
    demand,
    embedding_route_request,
    permit_model,
    serve,
)
from inferplane.api.errors import error_response
from inferplane.api.openai_parse import parse, parse_embeddings
from inferplane.api.openai_render import ChunkWriter, completion, embeddings
from inferplane.api.sse import EventStreamResponse
from inferplane.errors import InferplaneError, ModelNotFound
from inferplane.gateway import Gateway
from inferplane.protocol.types import Endpoint, GenerationRequest
from inferplane.routing.dispatch import Attempts

_PREFIX: dict[Endpoint, str] = {"chat.completions": "chatcmpl-", "completions": "cmpl-"}


def _render(req: GenerationRequest, result: Result) -> dict[str, object]:
    return completion(req, result.text, result.finished, result.tool_calls)


def _surface(endpoint: Endpoint) -> Surface:
    return Surface(parse=partial(parse, endpoint), writer=lambda req, _acct: ChunkWriter(req),
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
    gateway: Gateway = request.app.state.gateway
    acct = Accounting(id="emb-" + uuid.uuid4().hex, endpoint="embeddings")
    try:
        acct.principal = await authenticate(gateway, request)
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = parse_embeddings(body, acct.id)
        acct.model = req.model
        permit_model(acct.principal, req.model)
        plan = gateway.router.plan(embedding_route_request(req, acct.principal))
        acct.policy, acct.reason = plan.policy, plan.reason()
        if limits := acct.principal.limits():
            prompt = sum(len(text.encode()) + 2 for text in req.inputs)  # + start/end marks
            acct.reservation = await gateway.access.admit(limits, demand(plan, prompt, 0))
        acct.target, result = await Attempts(gateway.router, plan, acct.attempts).call(
            lambda target: target.provider.embed(req))
    except InferplaneError as exc:
        gateway.account(acct, exc.status, exc)
        return error_response(exc, {"x-request-id": acct.id})
    acct.started(result.prompt_tokens)
    gateway.account(acct, 200)
    return Response(orjson.dumps(embeddings(req, result)), 200, media_type="application/json",
                    headers={"x-request-id": acct.id})


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
