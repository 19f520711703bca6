"""What a request cost, in US dollars.

Two methods, by what the deployment declares:

* ``price`` (a hosted API): tokens x the per-million-token prices; cached input tokens at the
  cached price where the deployment has one.
* ``hardware`` (a deployment we run): the hardware's hourly price x the engine time the request
  used. The engine measures each decode step's wall time and splits it across the sequences in
  that batch in proportion to the tokens each contributed, so concurrent requests share the
  machine's cost instead of each paying for the whole of it, and idle time is charged to no one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inferplane.protocol.types import Usage

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig


def request_cost_usd(deployment: DeploymentConfig, usage: Usage, engine_seconds: float) -> float:
    """Cost of one request on ``deployment``.

    >>> from inferplane.config import DeploymentConfig, HardwareConfig, PriceConfig
    >>> d = DeploymentConfig(name="x", model="m", provider="p",
    ...                      hardware=HardwareConfig(usd_per_hour=3.6, count=2))
    >>> round(request_cost_usd(d, Usage(10, 20), engine_seconds=0.5), 6)
    0.001
    >>> p = DeploymentConfig(name="y", model="m", provider="openai", price=PriceConfig(
    ...     input_per_mtok=2.0, output_per_mtok=8.0, cached_input_per_mtok=0.5))
    >>> round(request_cost_usd(p, Usage(1000, 100, cached_tokens=600), 0.0), 6)
    0.0019
    """
    if deployment.price is not None:
        price = deployment.price
        cached = usage.cached_tokens if price.cached_input_per_mtok is not None else 0
        fresh = usage.prompt_tokens - cached
        return (fresh * price.input_per_mtok
                + cached * (price.cached_input_per_mtok or 0.0)
                + usage.completion_tokens * price.output_per_mtok) / 1_000_000
    if deployment.hardware is not None:
        hardware = deployment.hardware
        return hardware.usd_per_hour * hardware.count * engine_seconds / 3600.0
    return 0.0
