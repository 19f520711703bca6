"""The tenancy parts of the configuration: when API keys are required, how budgets reserve,
and the Redis that several gateway processes share limits through (docs/tenancy.md).
``inferplane.config`` re-exports every class here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from inferplane.config.problems import Section, invalid, secret_url

_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


class TenancyConfig(Section):
    """API keys, budgets and rate limits."""

    # auto: keys are required once one exists; until then only loopback clients are served.
    auth: Literal["auto", "required"] = "auto"
    reserve_output_tokens: int = Field(4096, gt=0)  # reserved when a request sets no max_tokens
    poll_interval_ms: int = Field(250, gt=0, le=1000)  # key changes reach every process within
    key_cache_size: int = Field(10_000, gt=0)
    budget_metrics_interval_s: float = Field(60.0, gt=0)  # the budget gauges' refresh


class RedisConfig(Section):
    """The Redis that gateway processes share rate limits and budget reservations through.
    Required when ``inferplane up --workers`` is more than 1."""

    url: str | None = Field(None, examples=["redis://127.0.0.1:6379/0"])

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        url = None if url is None else secret_url(url, "redis.url")
        if url is not None and not url.startswith(_REDIS_SCHEMES):
            raise invalid("redis_url", "the Redis URL must start with redis://, rediss:// or "
                          "unix://", "write e.g. `url: redis://127.0.0.1:6379/0`")
        return url
