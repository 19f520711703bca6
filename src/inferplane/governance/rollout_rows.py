"""The registry's record of staged rollouts (``version_rollouts``): a candidate's percent and
promotion schedule, and the latest verdict of its gates. Functions over one open connection,
called inside the registry's transactions (``registry.py``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from inferplane.governance.tables import version_rollouts as t


def start(c: Connection, version: str, percent: float | None, promote_after_s: float | None,
          actor: str, now: float, *, fresh: bool) -> None:
    """Record ``version``'s rollout at ``percent``. ``fresh``: it has just become a candidate,
    so the gates start over; otherwise (a new percent) their verdict stands."""
    values: dict[str, Any] = {"percent": percent, "promote_after_s": promote_after_s}
    if fresh:
        values |= {"started_at": now, "started_by": actor, "gate_outcome": None,
                   "gate_reasons": None, "gate_at": None, "gate_since": None}
    found = c.execute(select(t.c.version).where(t.c.version == version)
                      .with_for_update()).first()
    if found is None:
        c.execute(insert(t).values(version=version, **{"started_at": now, "started_by": actor,
                                                       **values}))
    else:
        c.execute(update(t).where(t.c.version == version).values(**values))


def percents(c: Connection) -> dict[str, float]:
    """Every version's rollout percent (the snapshot keeps those of the candidates)."""
    return {r.version: float(r.percent) for r in c.execute(select(t.c.version, t.c.percent))
            if r.percent is not None}


def read(c: Connection, versions: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """Version -> its rollout as ``models show`` prints it."""
    query = select(t)
    if versions is not None:
        query = query.where(t.c.version.in_(list(versions)))
    return {r["version"]: _shown(r) for r in c.execute(query).mappings()}


def _shown(row: Mapping[Any, Any]) -> dict[str, Any]:
    gate = None if row["gate_outcome"] is None else {
        "outcome": row["gate_outcome"], "reasons": orjson.loads(row["gate_reasons"] or "[]"),
        "at": row["gate_at"], "since": row["gate_since"]}
    return {"percent": row["percent"], "promote_after_s": row["promote_after_s"],
            "started_at": row["started_at"], "started_by": row["started_by"], "gate": gate}


def judged(c: Connection, version: str, outcome: str, reasons: Iterable[str], now: float
           ) -> tuple[float, float | None] | None:
    """Keep the gates' latest verdict on ``version``; return since when its outcome has been
    the same, and after how long a passing canary is promoted (None: the version has no
    rollout)."""
    row = c.execute(select(t.c.gate_outcome, t.c.gate_since, t.c.promote_after_s)
                    .where(t.c.version == version).with_for_update()).first()
    if row is None:
        return None
    since = row.gate_since if row.gate_outcome == outcome and row.gate_since else now
    c.execute(update(t).where(t.c.version == version).values(
        gate_outcome=outcome, gate_reasons=orjson.dumps(list(reasons)).decode(), gate_at=now,
        gate_since=since))
    return float(since), row.promote_after_s
