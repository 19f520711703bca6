"""What one request does once its protocol has been parsed, whatever the client speaks.

A :class:`Generation` reads top to bottom in the order a request lives::

    start(req, limits)          the key may use the model; route (constraints, policy,
                                fallbacks); admission reserves against rate limits and budgets;
                                the first deployment that starts streaming (retried until one does)
    collect() / sse(writer)     every event metered; the whole answer, or the client's stream
    end(status, error)          the finished ledger record (durable before the response's last
                                byte) and the reservation, handed to the gateway to settle;
                                a complete answer's request mirrored to the model's shadow
                                version in the background (``shadow.py``), when it has one

Embeddings take the same steps without a stream (:meth:`Generation.embed`). Whatever happens,
exactly one ledger record is written per request.

The response cache (``cache/``) looks up before routing in :meth:`start` (a hit is replayed
as the generation's events) and stores in :meth:`end`. Where a later capability goes: a
rollout's version choice is the router's (``routing/``). Where tracing is on, the request's
span (``observe/spans.py``) opens with the :class:`Generation`, each attempt is its child,
and :meth:`end` fills it in from the record and closes it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from inferplane.cache.embedder import Caller
from inferplane.cache.entry import replay
from inferplane.cache.policy import HEADER as CACHE_HEADER
from inferplane.cache.turn import CacheTurn
from inferplane.errors import InferplaneError, PermissionDenied, ServiceUnavailable
from inferplane.gateway import Gateway
from inferplane.governance.canary import sticky_key
from inferplane.metering.tokens import prompt_bound
from inferplane.protocol.types import (
    EmbeddingRequest,
    Embeddings,
    Finished,
    GenerationRequest,
    Relayed,
    StreamEvent,
    TextDelta,
    TokenLogprob,
    ToolCall,
    ToolCallDelta,
)
from inferplane.request_accounting import CLIENT_CLOSED, Accounting
from inferplane.routing.dispatch import Attempts, retryable
from inferplane.routing.request import (
    VERSION_HEADER,
    RouteRequest,
    client_limits,
    embedding_route_request,
    route_request,
)
from inferplane.routing.router import Plan
from inferplane.tenancy.admission import Demand, nanos
from inferplane.tenancy.keys import Scope

if TYPE_CHECKING:
    from inferplane.observe.spans import RequestSpan

NO_HEADERS: Mapping[str, str] = {}
#: What drift detection reads of an answer: its opening (a refusal shows there).
SAID_CHARS = 256
SAID_PIECES = 64  # streamed deltas kept: a token or so each


def last_user_text(req: GenerationRequest | None) -> str:
    """The request's last user message (or plain prompt): what drift detection reads."""
    if req is None:
        return ""
    if req.prompt is not None:
        return req.prompt
    return next((m.content for m in reversed(req.messages) if m.role == "user"), "")


class StreamWriter(Protocol):
    """Renders canonical events as one protocol's stream frames."""

    def first(self) -> bytes: ...
    def text(self, delta: TextDelta) -> bytes: ...
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
    logprobs: tuple[TokenLogprob, ...] = ()  # of the text's tokens, where the request asked


def demand(plan: Plan, prompt_bound: int, output_tokens: int) -> Demand:
    """The most a request may use: its prompt's upper bound plus its output limit, at the
    dearest deployment it may be sent to (fallbacks included)."""
    cost = max(t.meter.max_cost_usd(prompt_bound, output_tokens) for t in plan.targets)
    return Demand(prompt_bound + output_tokens, nanos(cost))


class Generation:
    """One request on its way from its parsed body to its ledger record."""

    def __init__(self, gateway: Gateway, acct: Accounting,
                 headers: Mapping[str, str] = NO_HEADERS) -> None:
        """``headers``: the client's, for its trace context (``traceparent``), if traced."""
        self.gateway = gateway
        self.acct = acct
        tracer = gateway.tracer
        self._span: RequestSpan | None = None if tracer is None else tracer.request(acct, headers)
        self._attempts: Attempts | None = None
        self._events: AsyncGenerator[StreamEvent, None] | None = None
        self._relayed = False  # the stream comes as Relayed frames
        self._routed = False  # the request went past the checks of who may send it
        self._ended = False
        self._cache: CacheTurn | None = None  # the model's response cache, where it has one
        self._route: RouteRequest | None = None  # a generation's, for its shadow
        # where drift is on: the answer's opening pieces (a refusal shows there), else None
        self._said: list[str] | None = None if gateway.drift is None else []

    async def start(self, req: GenerationRequest, headers: Mapping[str, str] = NO_HEADERS
                    ) -> None:
        """Route, admit and open the first stream that starts (raises when none does).
        ``headers``: the client's limits and version pin (``routing/request.py``) and session (a
        canary's sticky key, ``governance/canary.py``). A batch line's request (its record
        has a ``batch_id``) runs at batch priority, whatever its endpoint."""
        acct = self.acct
        if acct.batch_id is not None and req.priority != "batch":
            req = dataclasses.replace(req, priority="batch")
        acct.request, acct.model, acct.stream = req, req.model, req.stream
        self._permit(req.model)
        self._cache = self.gateway.cache.turn(req, Caller(acct.principal, acct.id), headers)
        if self._cache is not None:
            if await self._from_cache(self._cache):
                return
            req = acct.request = self._cache.upstream(req)
        key = sticky_key(headers, req.user, acct.principal.key_id, acct.id)
        route = self._route = route_request(
            req, client_limits(headers, self._key_residency()), key,
            self._pin(headers.get(VERSION_HEADER)))
        output = self.gateway.access.reserve_tokens(req.params.max_tokens)
        plan = await self._admit(route, prompt_bound(req), output)
        self._attempts = Attempts(self.gateway.router, plan, acct.attempts, timer=acct,
                                  tracer=self._span)
        await self._open(req)

    async def embed(self, req: EmbeddingRequest, headers: Mapping[str, str] = NO_HEADERS
                    ) -> Embeddings:
        """Route, admit and embed on the first deployment that answers; the record ends it."""
        acct = self.acct
        acct.model = req.model
        self._permit(req.model)
        bound = sum(len(text.encode()) + 2 for text in req.inputs)  # + start/end marks
        key = sticky_key(headers, req.user, acct.principal.key_id, acct.id)
        route = embedding_route_request(req, self._key_residency(), key)
        plan = await self._admit(route, bound, 0)
        attempts = Attempts(self.gateway.router, plan, acct.attempts, timer=acct,
                            tracer=self._span)
        acct.target, result = await attempts.call(lambda target: target.provider.embed(req))
        acct.started(result.prompt_tokens)
        self.end(200)
        return result

    def _pin(self, version: str | None) -> str | None:
        """The version the request pins, which only an evaluator may do."""
        principal = self.acct.principal
        if version is not None and not (principal.has(Scope.APPROVE)
                                        or principal.has(Scope.ADMIN)):
            raise PermissionDenied(f"The API key {principal.key_id} may not pin a version "
                                   f"({VERSION_HEADER}): that needs the approve or admin scope.",
                                   param=VERSION_HEADER)
        return version

    def _key_residency(self) -> tuple[str, ...] | None:
        key = self.acct.principal.key
        return None if key is None else key.residency

    def _permit(self, model: str) -> None:
        principal = self.acct.principal
        if not principal.may_use(model):
            raise PermissionDenied(f"The API key {principal.key_id} may not use the model "
                                   f"'{model}'.", param="model")
        self._routed = True

    async def _from_cache(self, turn: CacheTurn) -> bool:
        """Answer from the response cache when it holds the answer: the request still counts
        against the key's rate limits, but reaches no deployment and costs nothing."""
        entry = await turn.lookup()
        self.acct.cache = turn.outcome
        if entry is None:
            return False
        if limits := self.acct.principal.limits():
            self.acct.reservation = await self.gateway.access.admit(limits, Demand(0, 0))
        self.acct.saved = entry.saved
        self._events = replay(entry)
        return True

    async def _admit(self, route: RouteRequest, prompt_bound: int, output_tokens: int) -> Plan:
        """The plan for ``route``, once admission let it in."""
        acct = self.acct
        try:
            plan = self.gateway.router.plan(route)
        except InferplaneError as exc:  # refused: the record says which constraints and why
            acct.reason = exc.routing_reason
            raise
        acct.policy, acct.reason = plan.policy, plan.reason()
        if limits := acct.principal.limits():
            began = time.perf_counter()
            acct.reservation = await self.gateway.access.admit(
                limits, demand(plan, prompt_bound, output_tokens))
            acct.admission_s = time.perf_counter() - began
        return plan

    async def _open(self, req: GenerationRequest) -> None:
        assert self._attempts is not None
        target, started, self._events = await self._attempts.open(req, self.acct)
        if self._cache is not None:
            self._events = self._cache.watch(self._events)
        self._relayed = started.relayed
        self.acct.target = target
        self.acct.started(started.prompt_tokens)

    def headers(self) -> dict[str, str]:
        """Tell the client which deployment served it and after how many attempts (once the
        request was let through to routing)."""
        headers = {"x-request-id": self.acct.id}
        if not self._routed:
            return headers
        headers["x-inferplane-attempts"] = str(len(self.acct.attempts))
        if self.acct.cache is not None:
            headers[CACHE_HEADER] = self.acct.cache
        if self.acct.target is not None:
            deployment = self.acct.target.deployment
            headers["x-inferplane-deployment"] = deployment.name
            headers[VERSION_HEADER] = deployment.version_name
        return headers

    async def collect(self) -> Result:
        """The whole generation, recorded. Nothing has reached the client yet, so a retryable
        failure midway is retried on the next attempt of the plan."""
        assert self.acct.request is not None
        while True:
            try:
                result = await self._collect_once()
            except InferplaneError as exc:
                if not retryable(exc):
                    raise
                await self._open(self.acct.request)  # raises the last error once spent
            else:
                if self._span is not None:
                    self._span.output(result.text, result.finished.finish_reason)
                if self._said is not None:
                    self._said.append(result.text[:SAID_CHARS])
                self.end(200)  # durable before the response leaves
                return result

    async def _collect_once(self) -> Result:
        assert self._events is not None
        acct = self.acct
        parts: list[str] = []
        tokens: list[TokenLogprob] = []
        calls: dict[int, list[str]] = {}
        heads: dict[int, tuple[str, str]] = {}
        try:
            async for event in self._events:
                if isinstance(event, TextDelta):
                    acct.delta(len(event.text))
                    parts.append(event.text)
                    tokens += event.logprobs
                elif isinstance(event, ToolCallDelta):
                    acct.delta(len(event.arguments))
                    if event.id is not None or event.name is not None:
                        heads[event.index] = (event.id or f"call_{event.index}",
                                              event.name or "")
                    calls.setdefault(event.index, []).append(event.arguments)
                elif isinstance(event, Finished):
                    acct.finished(event)
                    tool_calls = tuple(
                        ToolCall(*heads.get(i, (f"call_{i}", "")), "".join(calls[i]))
                        for i in sorted(calls)
                    )
                    return Result("".join(parts), tool_calls, event, tuple(tokens))
        finally:
            await self._events.aclose()
        raise ServiceUnavailable("the deployment ended the request without finishing it")

    async def sse(self, writer: StreamWriter) -> AsyncGenerator[bytes, None]:
        """The client's stream. Its ledger record is written before the final frame; if the
        client leaves first, the upstream stream is closed at once and a 499 recorded."""
        assert self._events is not None
        events, acct, said = self._events, self.acct, self._said
        relayed = self._relayed  # the upstream's own frames: its first and finish chunks too
        try:
            if not relayed:
                yield writer.first()
            async for event in events:
                if isinstance(event, Relayed):
                    acct.delta(event.chars, event.deltas)
                    yield event.data
                elif isinstance(event, TextDelta):
                    acct.delta(len(event.text))
                    if said is not None and len(said) < SAID_PIECES:
                        said.append(event.text)
                    yield writer.text(event)
                elif isinstance(event, ToolCallDelta):
                    acct.delta(len(event.arguments))
                    yield writer.tool_call(event)
                elif isinstance(event, Finished):
                    acct.finished(event)
                    if not relayed:
                        yield writer.finish(event)
                    self.end(200)
                    yield writer.done(event)
                    return
            raise ServiceUnavailable("the deployment ended the stream without finishing it")
        except InferplaneError as exc:
            self.end(exc.status, exc)
            yield writer.error(exc)
        finally:
            await events.aclose()
            self.end(CLIENT_CLOSED, "client_disconnected")

    def end(self, status: int, error: InferplaneError | str | None = None) -> None:
        """The request is over: the gateway takes its record (into the ledger, durably, and
        the metrics) and settles what admission reserved; a complete answer's request goes to
        the model's shadow version, if any, in the background (never delaying this one). Only
        the first call counts."""
        if self._ended:
            return
        self._ended = True
        acct = self.acct
        record = acct.record(status, error)
        self.gateway.record(record, acct.reservation, acct.timings())
        if self._span is not None:
            self._span.end(record, acct)
        if self._cache is not None:
            self._cache.store(record)
        if status == 200 and self._route is not None and self._route.version is None:
            self.gateway.shadow.mirror(acct, self._route)  # a pinned request is not mirrored
        drift = self.gateway.drift
        if drift is not None and acct.saved is None and record.endpoint != "embeddings":
            drift.offer(record, last_user_text(acct.request), "".join(self._said or ()))
