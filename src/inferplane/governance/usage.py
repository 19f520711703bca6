"""What the ledger says about model versions: which served when (for ``models history``), what
each used (energy and carbon for its model card), and a rollout's window (for its gates).
Queries on ``usage_records``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, case, func, or_, select

from inferplane.governance.cards import Footprint
from inferplane.governance.gate_window import Row
from inferplane.ledger.store import usage_records

JOULES_PER_KWH = 3_600_000


def footprint(engine: Engine, version: str) -> Footprint:
    """Requests, tokens, energy (all, and measured) and carbon the ledger holds for ``version``."""
    t = usage_records
    measured = case((t.c.energy_method == "measured", t.c.energy_j), else_=0.0)
    query = select(func.count(), func.coalesce(func.sum(t.c.prompt_tokens + t.c.completion_tokens),
                                               0),
                   func.coalesce(func.sum(t.c.energy_j), 0.0),
                   func.coalesce(func.sum(measured), 0.0),
                   func.coalesce(func.sum(t.c.co2_g), 0.0)).where(t.c.version == version)
    with engine.connect() as c:
        n, tokens, joules, measured_j, co2 = c.execute(query).one()
    return Footprint(int(n), int(tokens), float(joules) / JOULES_PER_KWH,
                     float(measured_j) / JOULES_PER_KWH, float(co2))


def served(engine: Engine, versions: Sequence[str], at: float, window_s: float,
           tenant: str | None = None) -> dict[str, Any]:
    """Of ``versions``: the requests each served in ``[at - window_s, at]``, and the version
    of the latest request at or before ``at`` (of ``tenant`` when given). Shadow requests
    served no one: they are left out."""
    t = usage_records
    where = [t.c.version.in_(versions), t.c.ts <= at, t.c.shadow_of.is_(None)]
    if tenant is not None:
        where.append(t.c.tenant == tenant)
    window = select(t.c.version, func.count(), func.min(t.c.ts), func.max(t.c.ts)).where(
        and_(*where, t.c.ts >= at - window_s)).group_by(t.c.version).order_by(t.c.version)
    latest = select(t.c.version, t.c.ts, t.c.id).where(and_(*where)).order_by(
        t.c.ts.desc()).limit(1)
    with engine.connect() as c:
        rows = c.execute(window).all()
        last = c.execute(latest).first()
    return {
        "window_s": window_s,
        "in_window": [{"version": r[0], "requests": int(r[1]), "first_ts": r[2], "last_ts": r[3]}
                      for r in rows],
        "last": None if last is None else {"version": last[0], "ts": last[1], "record": last[2]},
    }


def window(engine: Engine, since: float, versions: Sequence[str], models: Sequence[str]
           ) -> list[Row]:
    """The records since ``since`` of ``versions`` (shadow ones included), and those of
    ``models`` (a model's names) that no deployment answered."""
    t = usage_records
    query = select(t.c.version, t.c.status, t.c.ttft_ms, t.c.cost_usd,
                   t.c.prompt_tokens + t.c.completion_tokens, t.c.attempts, t.c.routing_reason,
                   t.c.shadow_of).where(
        t.c.ts >= since, or_(t.c.version.in_(versions),
                             and_(t.c.deployment.is_(None), t.c.model.in_(models))))
    with engine.connect() as c:
        return [Row(*r) for r in c.execute(query)]
