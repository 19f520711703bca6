"""Trying a plan's deployments in turn until one streams.

A failed attempt is retried only when its error says another attempt may succeed (429, 5xx,
timeouts, broken connections, an engine restarting): on the same deployment after a jittered
backoff that honours ``Retry-After``, up to the alias's per-deployment limit, then on the next
deployment in the plan. The caller decides whether a failure after the stream started may be
retried (never once bytes reached the client). Every attempt feeds the deployment's live stats
and circuit breaker, and is logged for the ledger; the time spent in each (to its stream's
end) goes to the request's ``UpstreamTimer``; where the request is traced, each attempt is a
child span (``AttemptTracer``).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from inferplane.errors import (
    InferplaneError,
    ServiceUnavailable,
    UpstreamError,
)
from inferplane.protocol.types import (
    Finished,
    GenerationRequest,
    Relayed,
    Started,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    UsageSink,
)
from inferplane.routing.health import DeploymentStats
from inferplane.routing.retry import RetryBudget
from inferplane.routing.router import Plan, Router, Target

T = TypeVar("T")


class UpstreamTimer(Protocol):
    """Takes the seconds each attempt spent upstream: from its start to its stream's end."""

    def upstream(self, seconds: float) -> None: ...


class AttemptSpan(Protocol):
    """An attempt's trace span, ended with its log entry (``observe/spans.py``)."""

    def end(self, entry: dict[str, Any]) -> None: ...


class AttemptTracer(Protocol):
    """Opens a span per attempt: the request's span, where it is traced."""

    def attempt(self, target: Target) -> AttemptSpan: ...


# a started attempt: its deployment's stats, when it began, its log entry, its span
_Attempt = tuple[DeploymentStats, float, dict[str, Any], AttemptSpan | None]

class _Untimed:
    def upstream(self, seconds: float) -> None:
        pass


def retryable(exc: InferplaneError) -> bool:
    """Whether another attempt may succeed where this one failed."""
    if isinstance(exc, UpstreamError):
        return exc.retryable
    return isinstance(exc, ServiceUnavailable)


def breaker_outcome(exc: InferplaneError) -> bool | None:
    """What a failure counts as for the deployment's stats and breaker: False (it failed)
    when the deployment is at fault, None when the request itself was refused."""
    return False if retryable(exc) or exc.status in (502, 503, 504) else None


class Attempts:
    """One request's attempts over a :class:`Plan`; ``log`` receives one entry per attempt."""

    def __init__(self, router: Router, plan: Plan, log: list[dict[str, Any]],
                 rng: random.Random | None = None, timer: UpstreamTimer | None = None,
                 tracer: AttemptTracer | None = None) -> None:
        self.router = router
        self.plan = plan
        self.log = log
        self.timer = timer or _Untimed()
        self.tracer = tracer
        self.rng = rng or router.context.rng
        self.budget = RetryBudget(plan.retry, started_at=time.monotonic())
        self._index = 0
        self._last: InferplaneError | None = None

    async def open(self, request: GenerationRequest, meter: UsageSink
                   ) -> tuple[Target, Started, AsyncGenerator[StreamEvent, None]]:
        """The first deployment that starts: its target, its ``Started`` event and the rest of
        its stream (observed for the stats). Raises the last error when every attempt failed."""

        async def start(target: Target) -> tuple[Started, AsyncGenerator[StreamEvent, None]]:
            events = target.provider.stream(request, meter)
            try:
                first = await anext(events, None)
                if not isinstance(first, Started):
                    name = target.deployment.name
                    raise ServiceUnavailable(f"{name} ended the request before starting it")
            except BaseException:
                await events.aclose()
                raise
            return first, events

        target, (first, events), attempt = await self._attempt(start)
        stats, began, entry, span = attempt
        return target, first, _observed(events, stats, began, entry, self.timer, span)

    async def call(self, fn: Callable[[Target], Awaitable[T]]) -> tuple[Target, T]:
        """``fn`` on the first deployment where it succeeds (a whole, unstreamed answer)."""
        target, result, (stats, began, entry, span) = await self._attempt(fn)
        now = time.monotonic()
        stats.end(now, ok=True)
        self.timer.upstream(now - began)
        if span is not None:
            span.end(entry)
        return target, result

    async def _attempt(self, fn: Callable[[Target], Awaitable[T]]
                       ) -> tuple[Target, T, _Attempt]:
        """Try ``fn`` on each target in turn, within the retry budget, each gated by its
        breaker and logged. On success the deployment still counts the request in flight:
        the caller ends it."""
        while (target := await self._next()) is not None:
            name = target.deployment.name
            stats = self.router.stats[name]
            if not stats.start(time.monotonic()):  # its breaker opened meanwhile
                self._index += 1
                continue
            self.budget.record(name)
            entry: dict[str, Any] = {"deployment": name, "outcome": "ok"}
            self.log.append(entry)
            span = None if self.tracer is None else self.tracer.attempt(target)
            began = time.monotonic()
            try:
                result = await fn(target)
            except InferplaneError as exc:
                ended = time.monotonic()
                stats.end(ended, ok=breaker_outcome(exc))
                self.timer.upstream(ended - began)
                _failed(entry, exc, began)
                self._last = exc
                if span is not None:
                    span.end(entry)
                if not retryable(exc):
                    raise
                continue
            except BaseException:
                stats.end(time.monotonic(), ok=None)
                self.timer.upstream(time.monotonic() - began)
                if span is not None:
                    span.end({"outcome": "cancelled", "error": "cancelled"})
                raise
            entry["ms"] = round((time.monotonic() - began) * 1000, 1)
            return target, result, (stats, began, entry, span)
        raise self._last or ServiceUnavailable(
            f"No deployment of '{self.plan.model.name}' could take the request; retry shortly.")

    async def _next(self) -> Target | None:
        """The target of the next attempt, after its backoff; None when the budget is spent."""
        targets = self.plan.targets
        while self._index < len(targets):
            target = targets[self._index]
            name = target.deployment.name
            tried = self.budget.attempts.get(name, 0)
            if tried == 0:
                return target if self.budget.allows(name, time.monotonic()) else None
            retry_after = self._last.retry_after if isinstance(self._last, UpstreamError) else None
            delay = self.budget.delay_before_retry(name, self.rng, retry_after)
            over_cap = retry_after is not None and retry_after > self.plan.retry.cap_s
            if not over_cap and self.budget.allows(name, time.monotonic(), delay):
                await asyncio.sleep(delay)
                return target
            self._index += 1  # this deployment is spent (or asks for too long): the next one
        return None


def _failed(entry: dict[str, Any], exc: InferplaneError, began: float) -> None:
    entry.update(outcome="error", error=exc.code or exc.type, status=exc.status,
                 ms=round((time.monotonic() - began) * 1000, 1))
    upstream = getattr(exc, "upstream_status", None)
    if upstream is not None:
        entry["upstream_status"] = upstream


async def _observed(events: AsyncGenerator[StreamEvent, None], stats: DeploymentStats,
                    began: float, entry: dict[str, Any], timer: UpstreamTimer,
                    span: AttemptSpan | None) -> AsyncGenerator[StreamEvent, None]:
    """``events``, feeding the deployment's stats: time to first token, inter-token latency,
    and the outcome (a client leaving early is no outcome); and the request's upstream time,
    taken before ``Finished`` is passed on (the request's record is written on it)."""
    first_at: float | None = None
    pieces = 0
    ok: bool | None = None
    timed = False
    try:
        async for event in events:
            if isinstance(event, TextDelta | ToolCallDelta | Relayed):
                pieces += event.deltas if isinstance(event, Relayed) else 1
                if first_at is None and pieces:
                    first_at = time.monotonic()
                    stats.first_token(began, first_at)
            elif isinstance(event, Finished) and first_at is not None:
                tokens = max(event.usage.completion_tokens, pieces) - 1
                stats.tokens(tokens, time.monotonic() - first_at)
            if isinstance(event, Finished):
                ok, timed = True, True
                timer.upstream(time.monotonic() - began)
            yield event
    except InferplaneError as exc:
        ok = breaker_outcome(exc)
        _failed(entry, exc, began)
        entry["outcome"] = "error_after_start"
        raise
    finally:
        await events.aclose()
        now = time.monotonic()
        stats.end(now, ok)
        if not timed:
            timer.upstream(now - began)
        if span is not None:
            span.end(entry)
