"""The data path of one generation, whatever protocol the client speaks.

:func:`serve` reads top to bottom: the protocol's :class:`Surface` parses the body into a
canonical request, then::

    plan = router.plan(...)            route: constraints, policy, fallbacks
    attempts.open(...)                 provider stream, retried until one starts
    collect() / sse(writer)            meter every event; the ledger record is appended
                                       before the response's last byte leaves

and the surface renders the result in its protocol. Failures before the first byte get a
proper status; after it, an error event in the stream. Either way exactly one ledger record is
written.
"""

from __future__ import annotations

import math
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from starlette.requests import Request
from starlette.responses import Response

from inferplane.api.accounting import CLIENT_CLOSED, Accounting
from inferplane.api.body import read_json_object
from inferplane.api.sse import EventStreamResponse
from inferplane.errors import (
    InferplaneError,
    InvalidRequest,
    PermissionDenied,
    ServiceUnavailable,
)
from inferplane.gateway import Gateway
from inferplane.metering.tokens import prompt_bound
from inferplane.protocol.types import (
    EmbeddingRequest,
    Finished,
    GenerationRequest,
    Relayed,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDelta,
)
from inferplane.routing.dispatch import Attempts, retryable
from inferplane.routing.policy import PREFIX_CHARS, prefix_key
from inferplane.routing.router import Plan, RouteRequest
from inferplane.tenancy.admission import Demand, nanos
from inferplane.tenancy.keys import Scope
from inferplane.tenancy.records import OPEN, ApiKey, Principal

RESIDENCY_HEADER = "x-inferplane-residency"
MAX_PRICE_HEADER = "x-inferplane-max-price-usd"
DEFAULT_OUTPUT_TOKENS = 256  # for cost estimates when the request sets no limit
_CHARS_PER_TOKEN = 4  # a rough prompt-size estimate before the upstream counts it


class StreamWriter(Protocol):
    """Renders canonical events as one protocol's stream frames."""

    def first(self) -> bytes: ...
    def text(self, text: str) -> bytes: ...
    def tool_call(self, delta: ToolCallDelta) -> bytes: ...
    def finish(self, finished: Finished) -> bytes: ...
    def done(self, finished: Finished) -> bytes: ...
    def error(self, exc: InferplaneError) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Result:
    """A whole (non-streamed) generation."""

    text: str
    tool_calls: tuple[ToolCall, ...]
    finished: Finished


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
    gateway: Gateway = request.app.state.gateway
    generation: Generation | None = None
    try:
        acct.principal = await authenticate(gateway, request)
        body = await read_json_object(request, gateway.config.server.max_body_bytes)
        req = surface.parse(body, acct.id, int(acct.ts))
        acct.model, acct.stream = req.model, req.stream
        permit_model(acct.principal, req.model)
        generation = Generation(gateway, req, acct)
        await generation.start(request.headers)  # errors before the first byte: a status
        if req.stream:
            return EventStreamResponse(generation.sse(surface.writer(req, acct)),
                                       surface.headers(generation.headers()))
        result = await generation.collect()
    except InferplaneError as exc:
        gateway.account(acct, exc.status, exc)
        headers = generation.headers() if generation is not None else {"x-request-id": acct.id}
        return surface.error(exc, surface.headers(headers))
    gateway.account(acct, 200)  # durable before the response leaves
    return Response(orjson.dumps(surface.render(req, result)), 200,
                    media_type="application/json", headers=surface.headers(generation.headers()))


async def authenticate(gateway: Gateway, request: Request,
                       scope: Scope = Scope.INFERENCE) -> Principal:
    """Who sent ``request`` (its key, or loopback in open mode), holding ``scope``."""
    client = request.client.host if request.client is not None else None
    return await gateway.access.authenticate(request.headers, client, scope)


def permit_model(principal: Principal, model: str) -> None:
    if not principal.may_use(model):
        raise PermissionDenied(f"The API key {principal.key_id} may not use the model "
                               f"'{model}'.", param="model")


def demand(plan: Plan, prompt_bound: int, output_tokens: int) -> Demand:
    """The most a request may use: its prompt's upper bound plus its output limit, at the
    dearest deployment it may be sent to (fallbacks included)."""
    cost = max(t.meter.max_cost_usd(prompt_bound, output_tokens) for t in plan.targets)
    return Demand(prompt_bound + output_tokens, nanos(cost))


def route_request(req: GenerationRequest, headers: Mapping[str, str],
                  principal: Principal = OPEN) -> RouteRequest:
    """What the router needs from a request: its size, prefix, and the client's limits."""
    texts = [req.prompt] if req.prompt is not None else [m.content for m in req.messages]
    return RouteRequest(
        model=req.model, endpoint=req.endpoint, uses_tools=bool(req.tools),
        prompt_tokens=sum(map(len, texts)) // _CHARS_PER_TOKEN,
        output_tokens=req.params.max_tokens or DEFAULT_OUTPUT_TOKENS,
        prefix_key=prefix_key(_leading(texts, PREFIX_CHARS)),
        residency=_residency(headers.get(RESIDENCY_HEADER)),
        max_price_usd=_max_price(headers.get(MAX_PRICE_HEADER)),
        key_residency=_key_residency(principal.key),
    )


def _key_residency(key: ApiKey | None) -> frozenset[str] | None:
    return None if key is None or key.residency is None else frozenset(key.residency)


def embedding_route_request(req: EmbeddingRequest, principal: Principal = OPEN) -> RouteRequest:
    key = principal.key
    return RouteRequest(req.model, "embeddings", output_tokens=0,
                        prompt_tokens=sum(map(len, req.inputs)) // _CHARS_PER_TOKEN,
                        key_residency=_key_residency(key))


def _leading(texts: list[str], chars: int) -> str:
    """The first ``chars`` characters of the texts joined by newlines, without joining a long
    prompt whole on every request.

    >>> _leading(["ab", "cd", "ef"], 4) == "ab" + chr(10) + "c"
    True
    """
    parts: list[str] = []
    size = 0
    for text in texts:
        parts.append(text)
        size += len(text) + 1
        if size >= chars:
            break
    return "\n".join(parts)[:chars]


def _residency(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    areas = frozenset(v.strip().lower() for v in value.split(",") if v.strip())
    if not areas:
        raise InvalidRequest(f"The {RESIDENCY_HEADER} header names no region or jurisdiction.",
                             param=RESIDENCY_HEADER)
    return areas


def _max_price(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        price = float(value)
    except ValueError:
        price = math.nan
    if not (math.isfinite(price) and price > 0):
        raise InvalidRequest(f"The {MAX_PRICE_HEADER} header must be a positive number of US "
                             "dollars.", param=MAX_PRICE_HEADER)
    return price


class Generation:
    """One request on its way through the data path."""

    def __init__(self, gateway: Gateway, req: GenerationRequest, acct: Accounting) -> None:
        self.gateway = gateway
        self.req = req
        self.acct = acct
        acct.request = req
        self._attempts: Attempts | None = None
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._relayed = False  # the stream comes as Relayed frames

    async def start(self, headers: Mapping[str, str]) -> None:
        """Route and open the first stream that starts (raises when none does)."""
        acct, access = self.acct, self.gateway.access
        plan = self.gateway.router.plan(route_request(self.req, headers, acct.principal))
        acct.policy, acct.reason = plan.policy, plan.reason()
        if limits := acct.principal.limits():
            output = access.reserve_tokens(self.req.params.max_tokens)
            acct.reservation = await access.admit(
                limits, demand(plan, prompt_bound(self.req), output))
        self._attempts = Attempts(self.gateway.router, plan, self.acct.attempts)
        await self._open()

    async def _open(self) -> None:
        assert self._attempts is not None
        target, started, self._events = await self._attempts.open(self.req, self.acct)
        self._relayed = started.relayed
        self.acct.target = target
        self.acct.started(started.prompt_tokens)

    def headers(self) -> dict[str, str]:
        """Tell the client which deployment served it and after how many attempts."""
        headers = {"x-request-id": self.acct.id, "x-inferplane-attempts": str(len(
            self.acct.attempts))}
        if self.acct.target is not None:
            headers["x-inferplane-deployment"] = self.acct.target.deployment.name
        return headers

    async def collect(self) -> Result:
        """The whole generation. Nothing has reached the client yet, so a retryable failure
        midway is retried on the next attempt of the plan."""
        while True:
            try:
                return await self._collect_once()
            except InferplaneError as exc:
                if not retryable(exc):
                    raise
                await self._open()  # raises the last error once the plan is spent

    async def _collect_once(self) -> Result:
        assert self._events is not None
        parts: list[str] = []
        calls: dict[int, list[str]] = {}
        heads: dict[int, tuple[str, str]] = {}
        try:
            async for event in self._events:
                if isinstance(event, TextDelta):
                    self.acct.delta(len(event.text))
                    parts.append(event.text)
                elif isinstance(event, ToolCallDelta):
                    self.acct.delta(len(event.arguments))
                    if event.id is not None or event.name is not None:
                        heads[event.index] = (event.id or f"call_{event.index}",
                                              event.name or "")
                    calls.setdefault(event.index, []).append(event.arguments)
                elif isinstance(event, Finished):
                    self.acct.finished(event)
                    tool_calls = tuple(
                        ToolCall(*heads.get(i, (f"call_{i}", "")), "".join(calls[i]))
                        for i in sorted(calls)
                    )
                    return Result("".join(parts), tool_calls, event)
        finally:
            await self._events.aclose()
        raise ServiceUnavailable("the deployment ended the request without finishing it")

    async def sse(self, writer: StreamWriter) -> AsyncGenerator[bytes, None]:
        """The client's stream. Its ledger record is appended before the final frame; if the
        client leaves first, the upstream stream is closed at once and a 499 recorded."""
        assert self._events is not None
        events, account, acct = self._events, self.gateway.account, self.acct
        relayed = self._relayed  # the upstream's own frames: its first and finish chunks too
        recorded = False
        try:
            if not relayed:
                yield writer.first()
            async for event in events:
                if isinstance(event, Relayed):
                    acct.delta(event.chars, event.deltas)
                    yield event.data
                elif isinstance(event, TextDelta):
                    acct.delta(len(event.text))
                    yield writer.text(event.text)
                elif isinstance(event, ToolCallDelta):
                    acct.delta(len(event.arguments))
                    yield writer.tool_call(event)
                elif isinstance(event, Finished):
                    acct.finished(event)
                    if not relayed:
                        yield writer.finish(event)
                    account(acct, 200)
                    recorded = True
                    yield writer.done(event)
                    return
            raise ServiceUnavailable("the deployment ended the stream without finishing it")
        except InferplaneError as exc:
            if not recorded:
                account(acct, exc.status, exc)
                recorded = True
            yield writer.error(exc)
        finally:
            await events.aclose()
            if not recorded:
                account(acct, CLIENT_CLOSED, "client_disconnected")
