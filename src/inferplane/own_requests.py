"""The gateway's own requests, made for a client request: the semantic cache's embeddings and
its judge model's verdicts. Each is routed like a client's request (the model's deployments,
retries, fallbacks, the key's residency) and ends in one ledger record under the client's tenant
and key, with ``purpose`` (what for) and ``on_behalf_of`` (the client request's id). Like shadow
requests they pass no admission: the client's request was admitted, and its key's limits and
budget count client requests, not the gateway's work for them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inferplane.cache.embedder import Caller
from inferplane.errors import InferplaneError, ServiceUnavailable
from inferplane.protocol.types import (
    EmbeddingRequest,
    Embeddings,
    Endpoint,
    Finished,
    GenerationRequest,
    Relayed,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from inferplane.request_accounting import CLIENT_CLOSED, Accounting, Timings
from inferplane.routing.dispatch import Attempts
from inferplane.routing.request import client_limits, embedding_route_request, route_request
from inferplane.tenancy.records import OPEN

if TYPE_CHECKING:
    from inferplane.ledger.record import UsageRecord
    from inferplane.routing.router import Router


async def drain(events: AsyncGenerator[StreamEvent, None], acct: Accounting,
                text: list[str] | None = None) -> None:
    """Read a stream to its end into ``acct`` (and its text pieces into ``text``); raise when
    it ends unfinished."""
    async for event in events:
        if isinstance(event, Relayed):
            acct.delta(event.chars, event.deltas)
        elif isinstance(event, TextDelta):
            acct.delta(len(event.text))
            if text is not None:
                text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            acct.delta(len(event.arguments))
        elif isinstance(event, Finished):
            acct.finished(event)
            return
    raise ServiceUnavailable("the deployment ended the stream unfinished")


class OwnRequests:
    def __init__(self, router: Router, record: Callable[[UsageRecord, Timings], None]
                 ) -> None:
        self._router = router
        self._record = record

    def _accounting(self, endpoint: Endpoint, model: str, caller: Caller | None, purpose: str,
                    request: GenerationRequest | None = None) -> Accounting:
        return Accounting(id=f"own-{uuid.uuid4().hex}", endpoint=endpoint,
                          model=model, request=request,
                          principal=OPEN if caller is None else caller.principal,
                          purpose=purpose,
                          on_behalf_of=None if caller is None else caller.request_id)

    @contextmanager
    def _recorded(self, acct: Accounting) -> Iterator[_Ending]:
        """Record ``acct`` however the block ends: ``ok()`` inside it, an error, or
        cancelled."""
        ending = _Ending()
        try:
            yield ending
        except InferplaneError as exc:
            ending.status, ending.error = exc.status, exc.code or exc.type
            raise
        except Exception:
            ending.status, ending.error = 500, "own_request_failed"
            raise
        finally:
            self._record(acct.record(ending.status, ending.error), acct.timings())

    async def embed(self, model: str, texts: list[str], caller: Caller | None,
                    purpose: str) -> Embeddings:
        """``texts`` embedded by ``model``'s deployments."""
        acct = self._accounting("embeddings", model, caller, purpose)
        req = EmbeddingRequest(id=acct.id, model=model, inputs=tuple(texts))
        with self._recorded(acct) as ending:
            plan = self._router.plan(embedding_route_request(req, _residency(caller)))
            acct.policy, acct.reason = plan.policy, plan.reason()
            attempts = Attempts(self._router, plan, acct.attempts, timer=acct)
            acct.target, result = await attempts.call(lambda t: t.provider.embed(req))
            acct.started(result.prompt_tokens)
            ending.ok()
            return result

    async def answer(self, req: GenerationRequest, caller: Caller | None,
                     purpose: str) -> str:
        """The text ``req``'s model answers (streamed from the deployment, read whole)."""
        acct = self._accounting(req.endpoint, req.model, caller, purpose, req)
        acct.stream = req.stream
        text: list[str] = []
        with self._recorded(acct) as ending:
            plan = self._router.plan(route_request(req, client_limits({}, _residency(caller))))
            acct.policy, acct.reason = plan.policy, plan.reason()
            acct.target, started, events = await Attempts(
                self._router, plan, acct.attempts, timer=acct).open(req, acct)
            try:
                acct.started(started.prompt_tokens)
                await drain(events, acct, text)
            finally:
                await events.aclose()
            ending.ok()
            return "".join(text)


@dataclass(slots=True)
class _Ending:
    """How an own request ended: cancelled until it says otherwise."""

    status: int = CLIENT_CLOSED
    error: str | None = "own_request_cancelled"

    def ok(self) -> None:
        self.status, self.error = 200, None


def _residency(caller: Caller | None) -> tuple[str, ...] | None:
    """Where the caller's key lets its data go (its texts go where its request might)."""
    key = None if caller is None else caller.principal.key
    return None if key is None else key.residency
