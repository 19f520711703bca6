"""Stored responses in the SQL store (migration 0011_responses): what a response was asked
(its own input items) and what it answered (the response object), per tenant, until it
expires. Another tenant's response, or an expired one, is as if it did not exist.

The methods are blocking (one short transaction each); the gateway calls them in a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Engine,
    Float,
    MetaData,
    String,
    Table,
    Text,
    delete,
    literal,
    select,
)

metadata = MetaData()
responses = Table(
    "responses", metadata,
    Column("id", String(64), primary_key=True),
    Column("tenant", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("previous_id", String(64)),
    Column("input_items", Text, nullable=False),
    Column("response", Text, nullable=False),
)

OPEN_TENANT = ""  # the tenant of requests without a key (open mode)


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """One response: ``input_items`` its own (not its predecessors'), ``response`` the
    object as it was served (output items, usage, metadata, status)."""

    id: str
    tenant: str
    created_at: float
    expires_at: float
    previous_id: str | None
    input_items: list[dict[str, Any]]
    response: dict[str, Any]


def _stored(row: Any) -> StoredResponse:
    m = row._mapping
    return StoredResponse(m["id"], m["tenant"], m["created_at"], m["expires_at"],
                          m["previous_id"], orjson.loads(m["input_items"]),
                          orjson.loads(m["response"]))


class ResponseStore:
    """The stored responses of the store behind ``engine`` (migrated by the ledger)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def save(self, stored: StoredResponse) -> None:
        with self._engine.begin() as conn:
            conn.execute(responses.insert().values(
                id=stored.id, tenant=stored.tenant, created_at=stored.created_at,
                expires_at=stored.expires_at, previous_id=stored.previous_id,
                input_items=orjson.dumps(stored.input_items).decode(),
                response=orjson.dumps(stored.response).decode()))

    def get(self, tenant: str, response_id: str, now: float) -> StoredResponse | None:
        """``tenant``'s response ``response_id``; None when there is none, it is another
        tenant's, or it expired."""
        query = select(responses).where(responses.c.id == response_id,
                                        responses.c.tenant == tenant,
                                        responses.c.expires_at > now)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else _stored(row)

    def chain(self, tenant: str, response_id: str, now: float, limit: int
              ) -> list[StoredResponse] | None:
        """The conversation ending with ``response_id``: it and its predecessors, oldest
        first, at most ``limit`` of them (the newest); None when ``response_id`` itself is
        not there. A predecessor that expired or was deleted ends the chain. One query (a
        recursive one), however long the chain."""
        kept = (responses.c.tenant == tenant) & (responses.c.expires_at > now)
        walk = select(responses.c.id, responses.c.previous_id, literal(0).label("depth")).where(
            responses.c.id == response_id, kept).cte("walk", recursive=True)
        walk = walk.union_all(
            select(responses.c.id, responses.c.previous_id, (walk.c.depth + 1).label("depth"))
            .join(walk, responses.c.id == walk.c.previous_id)
            .where(kept, walk.c.depth + 1 < limit))
        query = (select(responses).join(walk, responses.c.id == walk.c.id)
                 .order_by(walk.c.depth.desc()))
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_stored(row) for row in rows] or None

    def delete(self, tenant: str, response_id: str, now: float) -> bool:
        """Whether ``tenant`` had a response ``response_id`` still kept (now removed)."""
        with self._engine.begin() as conn:
            gone = conn.execute(delete(responses).where(responses.c.id == response_id,
                                                        responses.c.tenant == tenant,
                                                        responses.c.expires_at > now))
        return bool(gone.rowcount)

    def sweep(self, now: float) -> int:
        """Remove every response expired by ``now``; how many were."""
        with self._engine.begin() as conn:
            gone = conn.execute(delete(responses).where(responses.c.expires_at <= now))
        return int(gone.rowcount or 0)
