"""The endpoints batch lines may call, registered by ``url`` (``batch/endpoints.py``): each
runs the line through the same ``Generation`` as the HTTP endpoint (routing, tenancy checks,
the ledger record under the line's request id), as a non-streamed request at batch priority,
and answers what that endpoint would have: its status and JSON body."""

from __future__ import annotations

import dataclasses
from typing import Any

from inferplane.api.error_responses import error_body
from inferplane.api.openai_parse import parse, parse_embeddings
from inferplane.api.openai_render import completion, embeddings
from inferplane.api.responses_core import respond
from inferplane.batch.endpoints import Answer, LineContext, register
from inferplane.errors import InferplaneError
from inferplane.generation import Generation
from inferplane.protocol.types import Endpoint
from inferplane.request_accounting import Accounting
from inferplane.tenancy.records import Principal


def _generation(ctx: LineContext, principal: Principal, endpoint: Endpoint) -> Generation:
    acct = Accounting(id=ctx.request_id, endpoint=endpoint, batch_id=ctx.batch_id)
    acct.principal = principal
    return Generation(ctx.gateway, acct)


def _failed(generation: Generation, exc: InferplaneError) -> Answer:
    generation.end(exc.status, exc)
    return exc.status, error_body(exc.message, exc.type, param=exc.param, code=exc.code)


async def chat_completion(body: dict[str, Any], principal: Principal, ctx: LineContext
                          ) -> Answer:
    """A ``/v1/chat/completions`` line."""
    generation = _generation(ctx, principal, "chat.completions")
    acct = generation.acct
    try:
        if ctx.refused is not None:
            raise ctx.refused
        req = dataclasses.replace(parse("chat.completions", body, acct.id, int(acct.ts)),
                                  stream=False)
        await generation.start(req)
        result = await generation.collect()
    except InferplaneError as exc:
        return _failed(generation, exc)
    return 200, completion(req, result.text, result.finished, result.tool_calls,
                           result.logprobs)


async def response(body: dict[str, Any], principal: Principal, ctx: LineContext) -> Answer:
    """A ``/v1/responses`` line (stored unless ``store: false``, like the HTTP endpoint's)."""
    acct = Accounting(id=ctx.request_id, endpoint="responses", batch_id=ctx.batch_id)
    acct.principal = principal
    generation = Generation(ctx.gateway, acct)
    try:
        if ctx.refused is not None:
            generation.end(ctx.refused.status, ctx.refused)
            raise ctx.refused
        return 200, await respond(generation, body)  # ends the generation either way
    except InferplaneError as exc:
        return exc.status, error_body(exc.message, exc.type, param=exc.param, code=exc.code)


async def embedding(body: dict[str, Any], principal: Principal, ctx: LineContext) -> Answer:
    """A ``/v1/embeddings`` line."""
    generation = _generation(ctx, principal, "embeddings")
    try:
        if ctx.refused is not None:
            raise ctx.refused
        req = parse_embeddings(body, generation.acct.id)
        result = await generation.embed(req)
    except InferplaneError as exc:
        return _failed(generation, exc)
    return 200, embeddings(req, result)


def register_endpoints() -> None:
    """Let batch lines call chat completions, embeddings and responses (``build_app`` calls
    it)."""
    register("/v1/chat/completions", chat_completion)
    register("/v1/embeddings", embedding)
    register("/v1/responses", response)
