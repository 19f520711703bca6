"""What the routing policies see: the deployments that could serve a request, and the request.

Both are frozen snapshots the router builds per request from configuration and live stats;
the policies and constraints only read them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def _finite_non_negative(name: str, value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One deployment of a model alias, as the policies see it for one request.

    Prices are USD per million tokens; for a local deployment the caller supplies an equivalent
    derived from its hardware cost. ``cached_input_per_mtok`` of ``None`` means the deployment
    gives no discount on a cached prefix. Latency stats are EWMAs in seconds (``None`` until
    measured); ``grid_gco2_per_kwh`` and ``joules_per_output_token`` are ``None`` when unknown.
    """

    name: str
    alias: str
    provider: str
    region: str
    jurisdiction: str
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cached_input_per_mtok: float | None = None
    weight: float = 1.0
    in_flight: int = 0
    capacity: int | None = None
    ttft_s: float | None = None
    itl_s: float | None = None
    error_rate: float = 0.0
    grid_gco2_per_kwh: float | None = None
    joules_per_output_token: float | None = None
    pue: float | None = None
    breaker_open: bool = False
    held_back: str | None = None  # why governance keeps requests from it (not approved, killed)
    # From the engine's own metrics, when a fresh reading exists (routing/engine_load.py):
    # ``in_flight`` then counts its running and waiting requests from every client.
    engine_waiting: int | None = None
    kv_cache_usage: float | None = None
    saturated: str | None = None  # why the engine is saturated (ranked after the others)

    def __post_init__(self) -> None:
        for field_name in ("input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                           "ttft_s", "itl_s", "grid_gco2_per_kwh", "joules_per_output_token"):
            _finite_non_negative(field_name, getattr(self, field_name))
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"weight must be > 0, got {self.weight!r}")
        if self.in_flight < 0:
            raise ValueError(f"in_flight must be >= 0, got {self.in_flight}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity must be >= 1 or None, got {self.capacity}")
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be in [0, 1], got {self.error_rate}")
        if self.pue is not None and not (math.isfinite(self.pue) and self.pue >= 1.0):
            raise ValueError(f"pue must be >= 1, got {self.pue!r}")

    @property
    def load(self) -> float:
        """In-flight requests over capacity when capacity is known, else the in-flight count.

        >>> Candidate("a", "m", "p", "local", "local", in_flight=3, capacity=4).load
        0.75
        >>> Candidate("b", "m", "p", "us-east", "us", in_flight=3).load
        3.0
        """
        if self.capacity is not None:
            return self.in_flight / self.capacity
        return float(self.in_flight)


@dataclass(frozen=True, slots=True)
class RequestProfile:
    """What the router knows about a request before sending it.

    ``output_tokens`` is the request's ``max_tokens`` or the alias's default. ``cached_share``
    is the estimated fraction of the prompt a deployment may already hold in its prefix cache.
    ``allowed_regions`` (the request's), ``allowed_jurisdictions`` (the alias's) and
    ``allowed_by_key`` (the API key's) are ``None`` when unrestricted; a value in a set matches
    a candidate whose region *or* jurisdiction equals it, and a candidate must match every set
    that is given. ``max_price_usd`` caps the expected cost of the request;
    ``slo_ttft_s`` / ``slo_tpot_s`` are the alias's latency targets (time to first token, time
    per output token).
    """

    prompt_tokens: int
    output_tokens: int
    cached_share: float | None = None
    prefix_key: int | None = None
    allowed_regions: frozenset[str] | None = None
    allowed_jurisdictions: frozenset[str] | None = None
    allowed_by_key: frozenset[str] | None = None
    max_price_usd: float | None = None
    slo_ttft_s: float | None = None
    slo_tpot_s: float | None = None

    def __post_init__(self) -> None:
        if self.prompt_tokens < 0 or self.output_tokens < 0:
            raise ValueError("prompt_tokens and output_tokens must be >= 0")
        if self.cached_share is not None and not 0.0 <= self.cached_share <= 1.0:
            raise ValueError(f"cached_share must be in [0, 1], got {self.cached_share}")
        for field_name in ("max_price_usd", "slo_ttft_s", "slo_tpot_s"):
            _finite_non_negative(field_name, getattr(self, field_name))


def max_cost_usd(candidate: Candidate, profile: RequestProfile) -> float:
    """The cost the price cap is checked against: every prompt token at the full input price.

    A cached-prefix share is only an estimate, so a cap must not rely on it.

    >>> c = Candidate("a", "m", "p", "us", "us", input_per_mtok=1.0, output_per_mtok=4.0)
    >>> max_cost_usd(c, RequestProfile(prompt_tokens=1000, output_tokens=500))
    0.003
    """
    return (profile.prompt_tokens * candidate.input_per_mtok
            + profile.output_tokens * candidate.output_per_mtok) / 1_000_000


def expected_cost_usd(candidate: Candidate, profile: RequestProfile) -> float:
    """Expected cost of the request on ``candidate``, counting the estimated cached prefix at
    the cached-input price.

    >>> c = Candidate("a", "m", "p", "us", "us", input_per_mtok=1.0, output_per_mtok=4.0,
    ...               cached_input_per_mtok=0.5)
    >>> p = RequestProfile(prompt_tokens=1000, output_tokens=500, cached_share=0.5)
    >>> expected_cost_usd(c, p)
    0.00275
    """
    share = profile.cached_share or 0.0
    cached_price = candidate.cached_input_per_mtok
    if cached_price is None:
        cached_price = candidate.input_per_mtok
    cached = profile.prompt_tokens * share
    return ((profile.prompt_tokens - cached) * candidate.input_per_mtok
            + cached * cached_price
            + profile.output_tokens * candidate.output_per_mtok) / 1_000_000


def usd(amount: float) -> str:
    """Dollars with enough digits to tell small per-request amounts apart.

    >>> usd(0.0123), usd(0.01), usd(0.00042), usd(2.5), usd(0.0)
    ('$0.0123', '$0.01', '$0.00042', '$2.50', '$0')
    """
    if amount == 0:
        return "$0"
    if abs(amount) >= 1:
        return f"${amount:,.2f}"
    decimals = max(2, 2 - math.floor(math.log10(abs(amount))))
    return "$" + f"{amount:.{decimals}f}".rstrip("0").rstrip(".")


def seconds(value: float) -> str:
    """A duration for a human: milliseconds below one second.

    >>> seconds(0.31), seconds(0.0046), seconds(1.0), seconds(12.25)
    ('0.31s', '4.6ms', '1.0s', '12.2s')
    """
    if value < 1:
        if value < 0.1:
            return f"{value * 1000:.3g}ms"
        return f"{value:.2g}s"
    return f"{value:.1f}s"
