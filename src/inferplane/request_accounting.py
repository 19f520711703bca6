"""What one request did, turned into its ledger record (and its timings, for the metrics)
when it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from inferplane.cache.entry import Saved
from inferplane.errors import InferplaneError
from inferplane.ledger.record import UsageRecord
from inferplane.metering.meter import Metered
from inferplane.metering.tokens import request_chars, settle_usage
from inferplane.protocol.types import Endpoint, Finished, GenerationRequest, Usage
from inferplane.routing.router import Target
from inferplane.tenancy.admission import Reservation
from inferplane.tenancy.records import OPEN, Principal

CLIENT_CLOSED = 499
NOT_METERED = Metered(0.0, None, None, None, None, None)  # reached no deployment
FROM_CACHE = Metered(0.0, None, 0.0, None, 0.0, 0.0)  # answered by the response cache


@dataclass(frozen=True, slots=True)
class Timings:
    """What a request's record does not hold and its histograms need (seconds)."""

    queued_s: float  # admission's wait, plus the engine's queue where the engine reports it
    upstream_s: float | None  # time spent in attempts; None when none was made
    attempts: list[dict[str, Any]]  # the ledger's attempt entries: deployment, outcome


@dataclass(slots=True)
class Accounting:
    id: str
    endpoint: Endpoint
    ts: float = field(default_factory=time.time)
    start: float = field(default_factory=time.perf_counter)
    model: str = ""
    stream: bool = False
    target: Target | None = None
    usage: Usage = field(default_factory=Usage)
    engine_seconds: float = 0.0
    energy_j: float | None = None
    energy_method: str | None = None
    first_token_at: float | None = None
    finish_reason: str | None = None
    deltas: int = 0
    output_chars: int = 0
    request: GenerationRequest | None = None  # read only when usage must be estimated
    principal: Principal = OPEN
    reservation: Reservation | None = None  # what admission charged, settled at the end
    policy: str | None = None
    reason: dict[str, Any] | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)
    admission_s: float = 0.0  # waiting for admission (rate limits, budgets)
    engine_queue_s: float | None = None  # waiting for an engine slot, where reported
    upstream_s: float = 0.0  # in attempts, to the end of the stream (routing/dispatch.py)
    cache: str | None = None  # the response cache's outcome (cache/policy.py)
    saved: Saved | None = None  # a cache hit: what the answer first cost
    shadow_of: str | None = None  # a shadow request's: the live request it mirrors
    purpose: str | None = None  # the gateway's own request: what for (ledger/record.py)
    on_behalf_of: str | None = None  # ... and for which client request
    batch_id: str | None = None  # a batch line's: its batch (priced at the batch price)

    @property
    def prompt_tokens(self) -> int:
        return self.usage.prompt_tokens

    def delta(self, chars: int, pieces: int = 1) -> None:
        """``pieces`` pieces of text (or tool-call arguments) arrived, ``chars`` characters in
        all: at least one token each."""
        if not pieces:
            return
        self.deltas += pieces
        self.output_chars += chars
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def started(self, prompt_tokens: int) -> None:
        self.usage = Usage(prompt_tokens)

    def finished(self, event: Finished) -> None:
        self.usage = event.usage
        self.engine_seconds = event.engine_seconds
        self.energy_j, self.energy_method = event.energy_j, event.energy_method
        self.finish_reason = event.finish_reason
        self.engine_queue_s = event.queue_s

    def energy(self, joules: float, method: str) -> None:
        """A stream ended without its final event, having used ``joules`` (measured by its
        engine's counter): what the record carries unless a later attempt finishes."""
        self.energy_j, self.energy_method = joules, method

    def upstream(self, seconds: float) -> None:
        """An attempt ended (or its stream finished) after ``seconds`` upstream."""
        self.upstream_s += seconds

    def timings(self) -> Timings:
        queued = self.admission_s + (self.engine_queue_s or 0.0)
        return Timings(queued, self.upstream_s if self.attempts else None, self.attempts)

    def record(self, status: int, error: InferplaneError | str | None = None) -> UsageRecord:
        now = time.perf_counter()
        usage, source = self.usage, "reported"
        if self.target is not None:  # a request that reached no deployment used no tokens
            usage, source = settle_usage(
                self.usage, self.finish_reason is not None, self.deltas,
                request_chars(self.request) if self.usage.prompt_tokens == 0 else 0,
                self.output_chars)
        deployment = self.target.deployment if self.target is not None else None
        metered = NOT_METERED if self.target is None else self.target.meter.measure(
            usage, self.engine_seconds, self.energy_j, self.energy_method,
            batch=self.batch_id is not None)
        saved = self.saved
        if saved is not None:  # a cache hit: no tokens used, nothing spent
            usage, metered = Usage(), FROM_CACHE
        error_type = error if isinstance(error, str) or error is None else (
            error.code or error.type
        )
        ttft = self.first_token_at
        return UsageRecord(
            id=self.id, ts=self.ts, endpoint=self.endpoint, model=self.model,
            deployment=deployment.name if deployment else None,
            provider=deployment.provider if deployment else None,
            prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens, cache_write_tokens=usage.cache_write_tokens,
            reasoning_tokens=usage.reasoning_tokens,
            region=deployment.region if deployment else None,
            routing_policy=self.policy,
            routing_reason=orjson.dumps(self.reason).decode() if self.reason else None,
            attempts=orjson.dumps(self.attempts).decode() if self.attempts else None,
            attempt_count=max(1, len(self.attempts)),
            ttft_ms=None if ttft is None else (ttft - self.start) * 1000,
            latency_ms=(now - self.start) * 1000, status=status, error_type=error_type,
            finish_reason=self.finish_reason, stream=self.stream,
            engine_seconds=self.engine_seconds,
            cost_usd=metered.cost_usd, usage_source=source, cost_method=metered.cost_method,
            energy_j=metered.energy_j, energy_method=metered.energy_method,
            co2_g=metered.co2_g, water_l=metered.water_l,
            tenant=self.principal.tenant_name, key_id=self.principal.key_id,
            version=deployment.version_name if deployment else None,
            cache=self.cache, cache_saved_usd=0.0 if saved is None else saved.cost_usd,
            cache_saved_energy_j=None if saved is None else saved.energy_j,
            cache_saved_co2_g=None if saved is None else saved.co2_g,
            shadow_of=self.shadow_of, purpose=self.purpose, on_behalf_of=self.on_behalf_of,
            batch_id=self.batch_id,
        )
