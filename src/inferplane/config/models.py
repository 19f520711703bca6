"""The ``models`` entries: a name clients ask for, its aliases, and how its requests are routed
(policy, fallbacks, latency SLO, retries, residency, cost cap)."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from inferplane.config.problems import Section, invalid


class SloConfig(Section):
    """The latency a model's requests should meet; the ``cost`` policy honours it."""

    ttft_s: float | None = Field(None, gt=0, examples=[1.0])  # time to first token
    tpot_s: float | None = Field(None, gt=0, examples=[0.05])  # time per output token


class RetryConfig(Section):
    """Attempts on retryable errors (429, 5xx, timeouts, connection errors), never once a
    streamed response has begun."""

    max_attempts: int = Field(3, ge=1, le=10)  # across all deployments and fallbacks
    per_deployment: int = Field(2, ge=1, le=10)  # attempts on one deployment before the next
    backoff_base_s: float = Field(0.1, ge=0)
    backoff_cap_s: float = Field(2.0, ge=0)
    deadline_s: float = Field(30.0, gt=0)  # no new attempt starts after this


class RoutingConfig(Section):
    """How a model's requests pick a deployment, and which models to fall back to."""

    policy: Literal[
        "cost", "latency", "least-busy", "weighted", "round-robin", "prefix-affinity", "carbon"
    ] = "cost"
    fallbacks: list[str] = Field(default_factory=list, examples=[["chat-large"]])
    slo: SloConfig = Field(default_factory=SloConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    residency: list[str] | None = Field(None, examples=[["eu"]])  # allowed regions/jurisdictions
    max_request_usd: float | None = Field(None, gt=0)  # refuse deployments expected to cost more


class SemanticCacheConfig(Section):
    """Paraphrases answered from the cache (docs/cache.md#the-semantic-cache): the nearest kept
    question of the same scope, when the threshold learned for it says the answer is right with
    the probability ``max_false_hit_rate`` asks for."""

    enabled: bool = False
    max_false_hit_rate: float = Field(0.02, gt=0, lt=1)  # wrong answers per lookup, at most
    embeddings: str | None = None  # a model of this gateway serving embeddings; none: shipped
    compare: Literal["exact", "embedding", "judge"] = "embedding"  # how a verified answer is judged
    judge: str | None = None  # compare: judge, a model of this gateway that says same or not
    answer_similarity: float = Field(0.9, gt=0, le=1)  # compare: embedding, same answer from
    min_similarity: float = Field(0.5, ge=-1, lt=1)  # a nearer neighbour is not even considered
    verify_rate: float = Field(0.02, ge=0, le=1)  # would-be hits also sent upstream, at least
    max_question_chars: int = Field(4000, ge=1)  # a longer last user turn is not embedded

    @model_validator(mode="after")
    def _judge_named(self) -> Self:
        if self.compare == "judge" and self.judge is None:
            raise invalid("judge_missing", "compare: judge needs the model that judges",
                          "name it: `judge: <a model of this gateway>`", field="judge")
        return self


class CacheConfig(Section):
    """The model's response cache (docs/cache.md): answers kept per tenant, model, the
    deployments that would serve it and the whole request, replayed to identical requests."""

    exact: bool = True  # identical requests are answered from the cache
    semantic: SemanticCacheConfig = Field(default_factory=SemanticCacheConfig)
    ttl_s: float = Field(3600.0, gt=0, le=365 * 86400)  # an entry is served this long
    max_entries: int = Field(10_000, ge=1)  # per model (memory: per process; redis: shared)
    max_bytes: int = Field(64 * 1024 * 1024, ge=1024)  # memory backend: all entries together
    max_entry_bytes: int = Field(1024 * 1024, ge=256)  # a larger answer is not kept
    backend: Literal["memory", "redis"] = "memory"  # redis: the top-level redis.url, shared
    deterministic_only: bool = True  # only temperature 0 or seeded requests, unless forced


class ModelConfig(Section):
    """A name clients ask for."""

    name: str = Field(min_length=1, examples=["chat-small"])
    aliases: list[str] = Field(default_factory=list, examples=[["gpt-4o-mini"]])
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    cache: CacheConfig | None = None  # no cache unless set

    @model_validator(mode="after")
    def _no_fallback_to_self(self) -> Self:
        own = {self.name, *self.aliases}
        for i, fallback in enumerate(self.routing.fallbacks):
            if fallback in own:
                raise invalid(
                    "fallback_to_self",
                    f"model '{self.name}' falls back to itself",
                    f"remove '{fallback}' from the fallbacks; list other models",
                    field=f"routing.fallbacks.{i}",
                )
        return self
