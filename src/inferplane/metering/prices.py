"""What a request cost, in US dollars.

Two methods, by what the deployment declares:

* ``price`` (a hosted API): tokens x the per-million-token prices.
* ``hardware`` (a deployment we run): the hardware's hourly price x the engine time the request
  used. The engine measures each decode step's wall time and splits it across the sequences in
  that batch in proportion to the tokens each contributed, so concurrent requests share the
  machine's cost instead of each paying for the whole of it, and idle time is charged to no one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from inferplane.config import DeploymentConfig


def request_cost_usd(
    deployment: DeploymentConfig, prompt_tokens: int, completion_tokens: int,
    engine_seconds: float,
) -> float:
    """Cost of one request on ``deployment``.

    >>> from inferplane.config import DeploymentConfig, HardwareConfig
    >>> d = DeploymentConfig(name="x", model="m", provider="p",
    ...                      hardware=HardwareConfig(usd_per_hour=3.6, count=2))
    >>> round(request_cost_usd(d, 10, 20, engine_seconds=0.5), 6)
    0.001
    """
    if deployment.price is not None:
        price = deployment.price
        return (prompt_tokens * price.input_per_mtok
                + completion_tokens * price.output_per_mtok) / 1_000_000
    if deployment.hardware is not None:
        hardware = deployment.hardware
        return hardware.usd_per_hour * hardware.count * engine_seconds / 3600.0
    return 0.0
