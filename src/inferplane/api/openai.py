"""OpenAI-compatible endpoints: parse the body, run the data path (``datapath.py``), render.

The data path of one request reads top to bottom in :func:`handle`: parse -> route and start
(attempts over the plan's deployments) -> collect or stream (metered) -> ledger -> client.
"""

from __future__ import annotations

import time
import uuid

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api.accounting import Accounting
from inferplane.api.body import read_json_object
from inferplane.api.datapath import Generation
from inferplane.api.errors import error_response
from inferplane.api.openai_parse import parse, parse_embeddings
from inferplane.api.openai_render import ChunkWriter, completion, embeddings
from inferplane.api.sse import EventStreamResponse
from inferplane.errors import InferplaneError, ServiceUnavailable
from inferplane.gateway import Gateway
from inferplane.protocol.types import Endpoint
from inferplane.routing.router import RouteRequest

_PREFIX = {"chat.completions": "chatcmpl-", "completions": "cmpl-"}


async def chat_completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "chat.completions")


async def completions(request: Request) -> Response | EventStreamResponse:
    return await handle(request, "completions")


async def handle(request: Request, endpoint: Endpoint) -> Response | EventStreamResponse:
    gateway: Gateway = request.app.state.gateway
    acct = Accounting(id=_PREFIX[endpoint] + uuid.uuid4().hex, endpoint=endpoint)
    generation: Generation | None = None
    try:
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = parse(endpoint, body, acct.id, int(acct.ts))
        acct.model, acct.stream = req.model, req.stream
        generation = Generation(gateway, req, acct)
        await generation.start(request.headers)  # errors before the first byte: a status
        if req.stream:
            return EventStreamResponse(generation.sse(ChunkWriter(req)), generation.headers())
        result = await generation.collect()
    except InferplaneError as exc:
        gateway.ledger.append(acct.record(exc.status, exc))
        headers = generation.headers() if generation is not None else {"x-request-id": acct.id}
        return error_response(exc, headers)
    gateway.ledger.append(acct.record(200))  # durable before the response leaves
    body_out = completion(req, result.text, result.finished, result.tool_calls)
    return Response(orjson.dumps(body_out), 200, media_type="application/json",
                    headers=generation.headers())


async def create_embeddings(request: Request) -> Response:
    gateway: Gateway = request.app.state.gateway
    acct = Accounting(id="emb-" + uuid.uuid4().hex, endpoint="embeddings")
    try:
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = parse_embeddings(body, acct.id)
        acct.model = req.model
        plan = gateway.router.plan(RouteRequest(req.model, "embeddings",
                                                prompt_tokens=sum(map(len, req.inputs)) // 4,
                                                output_tokens=0))
        acct.policy, acct.reason = plan.policy, plan.reason()
        last: InferplaneError = ServiceUnavailable(f"No deployment of '{req.model}' answered.")
        for target in plan.targets:
            acct.target = target
            acct.attempts.append({"deployment": target.deployment.name, "outcome": "ok"})
            try:
                result = await target.provider.embed(req)
                break
            except InferplaneError as exc:
                acct.attempts[-1].update(outcome="error", error=exc.code or exc.type)
                last = exc
                if not getattr(exc, "retryable", False):
                    raise
        else:
            raise last
    except InferplaneError as exc:
        gateway.ledger.append(acct.record(exc.status, exc))
        return error_response(exc, {"x-request-id": acct.id})
    acct.started(result.prompt_tokens)
    gateway.ledger.append(acct.record(200))
    return Response(orjson.dumps(embeddings(req, result)), 200, media_type="application/json",
                    headers={"x-request-id": acct.id})


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
    Route("/v1/embeddings", create_embeddings, methods=["POST"]),
    Route("/v1/models", list_models, methods=["GET"]),
    Route("/v1/models/{model:path}", get_model, methods=["GET"]),
]
