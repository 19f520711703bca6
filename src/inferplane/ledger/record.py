"""One usage record: what a single request cost and how it went."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """The ledger's unit: written once per request, successful or not.

    ``ts`` is the request's arrival time (Unix seconds). ``status`` is the HTTP status the
    client got (499 when the client went away first). ``cost_usd`` is computed by
    ``metering/prices.py``; ``engine_seconds`` is the share of engine time the request used.
    ``prompt_tokens`` includes ``cached_tokens``; ``completion_tokens`` includes
    ``reasoning_tokens``. ``region`` is where the request was processed. The routing fields
    say how the deployment was chosen: the policy, its reason (with the scores, JSON), and
    ``attempts``, a JSON list of every attempt (deployment, outcome, error, milliseconds).
    The accounting fields (docs/accounting.md): ``usage_source`` says where the token counts
    came from (``reported`` by the upstream, ``counted`` by the gateway from a stream cut short,
    ``estimated`` from the text's length when the upstream reported none); ``cost_method`` which
    price applied (``deployment``, ``catalog``, ``hardware``, or None: no price known);
    ``energy_j`` with its ``energy_method`` (``measured``, ``modelled``, ``estimated``); ``co2_g``
    and ``water_l`` from the energy and the region. ``tenant`` and ``key_id`` name the API key the
    request came with and its tenant (None when no keys are in use). ``version`` is the model
    version that served it (the deployment's ``version``, docs/governance.md). ``shadow_of``
    is set on a shadow version's record only: the id of the live request it mirrors (its
    answer went to no one). ``cache`` is what the model's response cache did (``hit-exact``,
    ``miss``, ``bypass``; None: the model has no cache); a hit used no tokens and cost nothing,
    and ``cache_saved_usd``, ``cache_saved_energy_j`` and ``cache_saved_co2_g`` say what the
    request that produced the answer cost (docs/cache.md). ``purpose`` is set on the
    gateway's own requests made for a client request (``on_behalf_of``: its id): the semantic
    cache's embeddings (``cache-embedding``) and judge calls (``cache-judge``). ``batch_id``
    is set on a batch line's record only: the batch it belongs to (its ``id`` is derived from
    the batch and the line, so a line run again after a crash is still one record; it is
    priced at the batch price where the deployment has one, docs/accounting.md#batch-prices).
    Fields added after the first release have defaults, so older WAL records still load.
    """

    id: str
    ts: float
    endpoint: str
    model: str
    deployment: str | None
    provider: str | None
    prompt_tokens: int
    completion_tokens: int
    ttft_ms: float | None
    latency_ms: float
    status: int
    error_type: str | None
    finish_reason: str | None
    stream: bool
    engine_seconds: float
    cost_usd: float
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    region: str | None = None
    routing_policy: str | None = None
    routing_reason: str | None = None
    attempts: str | None = None
    attempt_count: int = 1
    usage_source: str = "reported"
    cost_method: str | None = None
    energy_j: float | None = None
    energy_method: str | None = None
    co2_g: float | None = None
    water_l: float | None = None
    tenant: str | None = None
    key_id: str | None = None
    version: str | None = None
    cache: str | None = None
    cache_saved_usd: float = 0.0
    cache_saved_energy_j: float | None = None
    cache_saved_co2_g: float | None = None
    shadow_of: str | None = None
    purpose: str | None = None
    on_behalf_of: str | None = None
    batch_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UsageRecord:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
