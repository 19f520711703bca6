"""Serious incidents in the store (migration 0010_compliance): opening one starts its Art. 73
clock; its initial and final reports are recorded as they come. Each change is an audit-log
entry (``incident.open``, ``incident.report``) in the change's own transaction."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from inferplane.audit import store as audit
from inferplane.compliance.deadlines import Clock, IncidentKind, report_due
from inferplane.errors import Conflict, NotFound

metadata = MetaData()
incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("system", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detected_at", Float, nullable=False),
    Column("due_at", Float, nullable=False),
    Column("summary", Text, nullable=False),
    Column("opened_by", String(128), nullable=False),
    Column("opened_at", Float, nullable=False),
    Column("initial_report", Text),
    Column("initial_at", Float),
    Column("final_report", Text),
    Column("final_at", Float),
)

Stage = Literal["initial", "final"]


@dataclass(frozen=True, slots=True)
class Incident:
    id: int
    system: str
    kind: IncidentKind
    detected_at: float
    due_at: float
    summary: str
    opened_by: str
    opened_at: float
    initial_report: str | None
    initial_at: float | None
    final_report: str | None
    final_at: float | None

    @property
    def clock(self) -> Clock:
        return Clock(self.due_at, self.initial_at, self.final_at)


def _incident(row: object) -> Incident:
    m = row._mapping  # type: ignore[attr-defined]
    return Incident(**{**m, "kind": IncidentKind(m["kind"])})


class Incidents:
    """The incidents of the store behind ``engine`` (migrated by the caller)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def open(self, system: str, kind: IncidentKind, detected_at: float, summary: str,
             actor: str) -> Incident:
        now = time.time()
        due = report_due(kind, detected_at)
        with self._engine.begin() as c:
            made = c.execute(insert(incidents).values(
                system=system, kind=str(kind), detected_at=detected_at, due_at=due,
                summary=summary, opened_by=actor, opened_at=now))
            key = made.inserted_primary_key
            assert key is not None
            audit.append(c, "incident.open", {
                "incident": key[0], "system": system, "kind": str(kind),
                "detected_at": detected_at, "due_at": due, "summary": summary}, actor, ts=now)
            return self._get(c, int(key[0]))

    def report(self, incident_id: int, stage: Stage, text: str, actor: str) -> Incident:
        """Record the initial or final report; a final one needs the initial one first."""
        now = time.time()
        with self._engine.begin() as c:
            found = self._get(c, incident_id, lock=True)
            if stage == "initial" and found.initial_at is not None:
                raise Conflict(f"Incident {incident_id} has its initial report already.")
            if stage == "final" and found.final_at is not None:
                raise Conflict(f"Incident {incident_id} has its final report already.")
            values = ({"initial_report": text, "initial_at": now} if stage == "initial" else
                      {"final_report": text, "final_at": now,
                       **({"initial_report": text, "initial_at": now}
                          if found.initial_at is None else {})})
            c.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))
            audit.append(c, "incident.report", {
                "incident": incident_id, "system": found.system, "report": stage,
                "sha256": hashlib.sha256(text.encode()).hexdigest(),
                "late": stage == "initial" and now > found.due_at}, actor, ts=now)
            return self._get(c, incident_id)

    def _get(self, c: Connection, incident_id: int, lock: bool = False) -> Incident:
        query = select(incidents).where(incidents.c.id == incident_id)
        row = c.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(f"No incident {incident_id}.")
        return _incident(row)

    def get(self, incident_id: int) -> Incident:
        with self._engine.connect() as c:
            return self._get(c, incident_id)

    def all(self, system: str | None = None) -> list[Incident]:
        query = select(incidents).order_by(incidents.c.due_at, incidents.c.id)
        if system is not None:
            query = query.where(incidents.c.system == system)
        with self._engine.connect() as c:
            return [_incident(r) for r in c.execute(query)]

    def pending(self) -> list[tuple[str, float]]:
        """(system, deadline) of every incident whose initial report is not in."""
        query = select(incidents.c.system, incidents.c.due_at).where(
            incidents.c.initial_at.is_(None), incidents.c.final_at.is_(None))
        with self._engine.connect() as c:
            return [(r.system, float(r.due_at)) for r in c.execute(query)]
