"""What one request did, turned into its ledger record when it ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from inferplane.errors import InferplaneError
from inferplane.ledger.record import UsageRecord
from inferplane.metering.prices import request_cost_usd
from inferplane.protocol.types import Endpoint, Finished
from inferplane.routing.router import Target

CLIENT_CLOSED = 499


@dataclass(slots=True)
class Accounting:
    id: str
    endpoint: Endpoint
    ts: float = field(default_factory=time.time)
    start: float = field(default_factory=time.perf_counter)
    model: str = ""
    stream: bool = False
    target: Target | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    engine_seconds: float = 0.0
    first_token_at: float | None = None
    finish_reason: str | None = None
    deltas: int = 0

    def delta(self) -> None:
        """A piece of text arrived (at least one token)."""
        self.deltas += 1
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    def finished(self, event: Finished) -> None:
        self.prompt_tokens = event.prompt_tokens
        self.completion_tokens = event.completion_tokens
        self.engine_seconds = event.engine_seconds
        self.finish_reason = event.finish_reason

    def record(self, status: int, error: InferplaneError | str | None = None) -> UsageRecord:
        now = time.perf_counter()
        if self.finish_reason is None:  # cut short: each text delta held at least one token
            self.completion_tokens = self.deltas
        deployment = self.target.deployment if self.target is not None else None
        cost = 0.0
        if deployment is not None:
            cost = request_cost_usd(
                deployment, self.prompt_tokens, self.completion_tokens, self.engine_seconds
            )
        error_type = error if isinstance(error, str) or error is None else (
            error.code or error.type
        )
        ttft = self.first_token_at
        return UsageRecord(
            id=self.id, ts=self.ts, endpoint=self.endpoint, model=self.model,
            deployment=deployment.name if deployment else None,
            provider=deployment.provider if deployment else None,
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            ttft_ms=None if ttft is None else (ttft - self.start) * 1000,
            latency_ms=(now - self.start) * 1000, status=status, error_type=error_type,
            finish_reason=self.finish_reason, stream=self.stream,
            engine_seconds=self.engine_seconds, cost_usd=cost,
        )
