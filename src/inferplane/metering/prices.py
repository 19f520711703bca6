"""What a request cost, in US dollars: pure functions of a price and the usage.

Two ways a deployment is charged:

* by the token (a hosted API): its :class:`Price`, from the deployment's own ``price:`` block
  (a negotiated price) or else the packaged catalog (``data/prices.yaml``, list prices). Input
  tokens read from the prompt cache are priced at the cached rate, tokens written to it at the
  cache-write rate, and reasoning tokens at the reasoning rate, each only where the price names
  one (otherwise they are ordinary input or output tokens, which is how vendors without such a
  rate bill them). A long-context tier applies to the whole request once its input exceeds the
  tier's threshold, as Google and Anthropic bill them.
* by the hour (a deployment we run): the hardware's hourly price x the engine time the request
  used. The engine measures each decode step's wall time and splits it across the sequences in
  that batch in proportion to the tokens each contributed, so concurrent requests share the
  machine's cost instead of each paying for the whole of it, and idle time is charged to no one.

A batch line (the Batch API) pays the price's batch share (``Price.batch``) where the price has
one: the vendor's batch discount from the catalog, or a deployment's ``batch_factor``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from inferplane.protocol.types import Usage

MILLION = 1_000_000


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per million tokens of each kind; ``None``: billed as a plain input/output token."""

    input: float
    output: float
    cached_input: float | None = None
    cache_write: float | None = None
    reasoning: float | None = None


@dataclass(frozen=True, slots=True)
class Tier:
    """Rates for requests whose input exceeds ``above_input_tokens``."""

    above_input_tokens: int
    rates: Rates


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price: base rates, long-context tiers (ascending), and where it came from."""

    base: Rates
    tiers: tuple[Tier, ...] = ()
    origin: str = "deployment"  # "deployment" (negotiated, in the config) or "catalog"
    source: str = ""
    as_of: str = ""
    batch_factor: float | None = None  # a batch line's share of this price; None: no batch price
    batch_source: str = ""

    def batch(self) -> Price | None:
        """The batch price: every rate times ``batch_factor`` (None where there is none).

        >>> Price(Rates(2.0, 8.0, cached_input=0.5), batch_factor=0.5).batch().base
        Rates(input=1.0, output=4.0, cached_input=0.25, cache_write=None, reasoning=None)
        """
        f = self.batch_factor
        if f is None:
            return None
        return replace(self, base=_scaled(self.base, f),
                       tiers=tuple(Tier(t.above_input_tokens, _scaled(t.rates, f))
                                   for t in self.tiers), batch_factor=None)

    def rates_for(self, input_tokens: int) -> Rates:
        """The rates a request with ``input_tokens`` of input pays.

        >>> p = Price(Rates(1.25, 10.0), (Tier(200_000, Rates(2.5, 15.0)),))
        >>> p.rates_for(200_000).input, p.rates_for(200_001).input
        (1.25, 2.5)
        """
        rates = self.base
        for tier in self.tiers:
            if input_tokens > tier.above_input_tokens:
                rates = tier.rates
        return rates


def _scaled(rates: Rates, factor: float) -> Rates:
    def times(rate: float | None) -> float | None:
        return None if rate is None else rate * factor

    return Rates(rates.input * factor, rates.output * factor, times(rates.cached_input),
                 times(rates.cache_write), times(rates.reasoning))


def token_cost_usd(price: Price, usage: Usage) -> float:
    """Cost of ``usage`` at ``price``.

    >>> p = Price(Rates(3.0, 15.0, cached_input=0.3, cache_write=3.75))
    >>> u = Usage(10_000, 500, cached_tokens=6_000, cache_write_tokens=2_000)
    >>> round(token_cost_usd(p, u), 6)
    0.0228
    >>> o = Price(Rates(2.0, 8.0, reasoning=None))
    >>> round(token_cost_usd(o, Usage(1000, 400, reasoning_tokens=300)), 6)
    0.0052
    """
    rates = price.rates_for(usage.prompt_tokens)
    cached = usage.cached_tokens if rates.cached_input is not None else 0
    written = usage.cache_write_tokens if rates.cache_write is not None else 0
    fresh = max(0, usage.prompt_tokens - cached - written)
    reasoning = usage.reasoning_tokens if rates.reasoning is not None else 0
    visible = max(0, usage.completion_tokens - reasoning)
    return (fresh * rates.input
            + cached * (rates.cached_input or 0.0)
            + written * (rates.cache_write or 0.0)
            + visible * rates.output
            + reasoning * (rates.reasoning or 0.0)) / MILLION


def hardware_cost_usd(usd_per_hour: float, count: int, engine_seconds: float) -> float:
    """Cost of ``engine_seconds`` of a machine of ``count`` chips at ``usd_per_hour`` each.

    >>> round(hardware_cost_usd(3.6, 2, 0.5), 6)
    0.001
    """
    return usd_per_hour * count * engine_seconds / 3600.0
