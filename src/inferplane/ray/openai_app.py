"""The OpenAI-compatible routes around one engine: what each Serve replica answers.

``POST /v1/chat/completions`` and ``/v1/completions`` (streaming included, usage included: a
stream that asks ``stream_options.include_usage`` ends with the usage chunk), ``GET /v1/models``,
``GET /load`` (the deployment's load, every replica's) and ``GET /healthz``. The same parser
and renderers as the gateway's own OpenAI surface, with no tenancy, routing or ledger: the
gateway in front of the replicas does those. Errors before the first byte get their status
(a 503 the gateway retries elsewhere); after it, an error event in the stream.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from inferplane.api import openai_render
from inferplane.api.body import read_json_object
from inferplane.api.error_responses import error_response
from inferplane.api.event_stream import EventStreamResponse
from inferplane.api.openai_parse import parse
from inferplane.errors import EngineUnavailable, InferplaneError
from inferplane.protocol.types import (
    Endpoint,
    Finished,
    GenerationRequest,
    Started,
    StreamEvent,
    TextDelta,
    TokenLogprob,
)
from inferplane.providers.base import Provider

MAX_BODY_BYTES = 4 * 2**20
Load = Callable[[], Awaitable[dict[str, Any]]]


class _Discard:
    """Usage of a stream the client left: the gateway in front meters it, not the replica."""

    def finished(self, event: Finished) -> None:
        pass

    def energy(self, joules: float, method: str) -> None:
        pass


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def engine_app(provider: Provider, model: str, load: Load) -> Starlette:
    """The replica's ASGI app around ``provider`` (started by the caller), serving ``model``."""

    async def generate(request: Request, endpoint: Endpoint) -> Response | EventStreamResponse:
        try:
            body = await read_json_object(request, MAX_BODY_BYTES)
            req = parse(endpoint, body, f"cmpl-{uuid.uuid4().hex}", int(time.time()))
            if not provider.ready:
                raise EngineUnavailable("the engine of this replica is not ready")
            events = provider.stream(req, _Discard())
            first = await anext(events)  # the engine took it: past here, errors are in-stream
            if req.stream:
                return EventStreamResponse(_frames(req, first, events))
            return _json(await _collect(req, first, events))
        except InferplaneError as exc:
            return error_response(exc)
        except StopAsyncIteration:
            return error_response(EngineUnavailable("the engine ended the request unanswered"))

    async def chat(request: Request) -> Response | EventStreamResponse:
        return await generate(request, "chat.completions")

    async def completions(request: Request) -> Response | EventStreamResponse:
        return await generate(request, "completions")

    async def models(_: Request) -> Response:
        return _json({"object": "list", "data": [
            {"id": model, "object": "model", "created": 0, "owned_by": "inferplane"}]})

    async def load_route(_: Request) -> Response:
        return _json(await load())

    async def healthz(_: Request) -> Response:
        return _json({"ready": provider.ready}, 200 if provider.ready else 503)

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/load", load_route, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ])


async def _collect(req: GenerationRequest, first: StreamEvent,
                   events: AsyncGenerator[StreamEvent, None]) -> dict[str, Any]:
    text: list[str] = []
    tokens: list[TokenLogprob] = []
    async with aclosing(events):
        event: StreamEvent | None = first
        while event is not None:
            if isinstance(event, TextDelta):
                text.append(event.text)
                tokens.extend(event.logprobs)
            elif isinstance(event, Finished):
                return openai_render.completion(req, "".join(text), event, tokens=tokens)
            event = await anext(events, None)
    raise EngineUnavailable("the engine ended the request without finishing it")


async def _frames(req: GenerationRequest, first: StreamEvent,
                  events: AsyncGenerator[StreamEvent, None]) -> AsyncGenerator[bytes, None]:
    writer = openai_render.ChunkWriter(
        req, first.prompt_tokens if isinstance(first, Started) else 0)
    async with aclosing(events):
        try:
            if opening := writer.first():
                yield opening
            event: StreamEvent | None = first
            while event is not None:
                if isinstance(event, TextDelta):
                    yield writer.text(event)
                elif isinstance(event, Finished):
                    yield writer.finish(event) + writer.done(event)
                    return
                event = await anext(events, None)
            raise EngineUnavailable("the engine ended the request without finishing it")
        except InferplaneError as exc:
            yield writer.error(exc) + openai_render.DONE
