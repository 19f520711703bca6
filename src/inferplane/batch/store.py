"""Batch files, batches and their lines in the SQL store (SQLite or PostgreSQL).

A line is ``pending``, then ``claimed`` by one process (a random claim token and a lease it
renews), then ``done`` with its result. A claim is one atomic statement: an UPDATE of the
first pending lines (or claimed ones whose lease ran out), which on PostgreSQL picks them with
``FOR UPDATE SKIP LOCKED`` and on SQLite holds the database's write lock; so two processes
never hold the same line. A line is finished only by the claim that holds it, and a done line
is never claimed again. Status changes are compare-and-set updates: of several processes
finalizing a batch, one writes its files.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Select,
    Table,
    and_,
    case,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from inferplane.batch.jsonl import InputLine
from inferplane.batch.lifecycle import ACTIVE, Lines, Status, final_status
from inferplane.batch.results import EXPIRED, unrun
from inferplane.batch.tables import batch_files, batch_lines, batches

PENDING, CLAIMED, DONE = "pending", "claimed", "done"
OUTPUT_PURPOSE = ERROR_PURPOSE = "batch_output"  # as OpenAI names both


@dataclass(frozen=True, slots=True)
class StoredFile:
    id: str
    tenant: str | None
    filename: str
    purpose: str
    bytes: int
    created_at: float


@dataclass(frozen=True, slots=True)
class Claimed:
    """A line this process holds: run it, then finish it with its ``claim``."""

    batch_id: str
    index: int
    custom_id: str
    body: dict[str, Any]
    claim: str


_FILE_COLUMNS = [c for c in batch_files.c if c.name != "content"]


def _file(row: Any) -> StoredFile:
    return StoredFile(row.id, row.tenant, row.filename, row.purpose, row.bytes, row.created_at)


def _tenant_is(column: Any, tenant: str | None) -> Any:
    return column.is_(None) if tenant is None else column == tenant


class BatchStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def close(self) -> None:
        self._engine.dispose()

    # -- files ---------------------------------------------------------------------------

    def add_file(self, tenant: str | None, filename: str, purpose: str, content: bytes,
                 connection: Connection | None = None) -> StoredFile:
        file_id, name, now = "file-" + uuid.uuid4().hex, filename[:256], time.time()
        row = {"id": file_id, "tenant": tenant, "filename": name, "purpose": purpose,
               "bytes": len(content), "created_at": now, "content": content}
        if connection is not None:
            connection.execute(insert(batch_files).values(**row))
        else:
            with self._engine.begin() as c:
                c.execute(insert(batch_files).values(**row))
        return StoredFile(file_id, tenant, name, purpose, len(content), now)

    def file(self, file_id: str, tenant: str | None) -> StoredFile | None:
        query = select(*_FILE_COLUMNS).where(batch_files.c.id == file_id,
                                             _tenant_is(batch_files.c.tenant, tenant))
        with self._engine.connect() as c:
            row = c.execute(query).first()
        return None if row is None else _file(row)

    def content(self, file_id: str, tenant: str | None) -> bytes | None:
        query = select(batch_files.c.content).where(batch_files.c.id == file_id,
                                                    _tenant_is(batch_files.c.tenant, tenant))
        with self._engine.connect() as c:
            found = c.execute(query).scalar_one_or_none()
        return None if found is None else bytes(found)

    def files(self, tenant: str | None, purpose: str | None, after: str | None,
              limit: int) -> list[StoredFile]:
        """Newest first, from after the file ``after`` (a cursor)."""
        query = select(*_FILE_COLUMNS).where(_tenant_is(batch_files.c.tenant, tenant))
        if purpose is not None:
            query = query.where(batch_files.c.purpose == purpose)
        with self._engine.connect() as c:
            return [_file(r) for r in c.execute(_page(c, query, batch_files, after, limit))]

    def delete_file(self, file_id: str, tenant: str | None) -> bool:
        with self._engine.begin() as c:
            gone = c.execute(delete(batch_files).where(
                batch_files.c.id == file_id, _tenant_is(batch_files.c.tenant, tenant)))
        return bool(gone.rowcount)

    # -- batches -------------------------------------------------------------------------

    def create(self, *, tenant: str | None, key_id: str | None, endpoint: str,
               input_file_id: str, window: str, window_s: float, metadata: dict[str, str] | None,
               lines: Sequence[InputLine], errors: list[dict[str, Any]] | None = None
               ) -> dict[str, Any]:
        """A new batch: ``validating`` with its lines pending, or ``failed`` with ``errors``
        (and no lines)."""
        now = time.time()
        row: dict[str, Any] = {
            "id": "batch_" + uuid.uuid4().hex, "tenant": tenant, "key_id": key_id,
            "endpoint": endpoint, "input_file_id": input_file_id, "completion_window": window,
            "status": Status.FAILED if errors else Status.VALIDATING,
            "metadata": None if metadata is None else orjson.dumps(metadata).decode(),
            "errors": None if not errors else orjson.dumps(errors).decode(),
            "total": 0 if errors else len(lines), "created_at": now,
            "expires_at": now + window_s, "failed_at": now if errors else None,
        }
        with self._engine.begin() as c:
            c.execute(insert(batches).values(**row))
            if not errors:
                c.execute(insert(batch_lines), [
                    {"batch_id": row["id"], "idx": i, "custom_id": line.custom_id,
                     "body": orjson.dumps(line.body).decode(), "state": PENDING, "tries": 0}
                    for i, line in enumerate(lines)])
        found = self.batch(row["id"], tenant)
        assert found is not None
        return found

    def batch(self, batch_id: str, tenant: str | None) -> dict[str, Any] | None:
        """The batch's row with its ``completed`` and ``failed`` line counts."""
        query = select(batches).where(batches.c.id == batch_id,
                                      _tenant_is(batches.c.tenant, tenant))
        with self._engine.connect() as c:
            row = c.execute(query).mappings().first()
            return None if row is None else self._with_counts(c, [dict(row)])[0]

    def batches(self, tenant: str | None, after: str | None, limit: int
                ) -> list[dict[str, Any]]:
        """Newest first, from after the batch ``after`` (a cursor)."""
        query = select(batches).where(_tenant_is(batches.c.tenant, tenant))
        with self._engine.connect() as c:
            rows = [dict(r) for r in c.execute(
                _page(c, query, batches, after, limit)).mappings()]
            return self._with_counts(c, rows)

    @staticmethod
    def _with_counts(c: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``rows`` (batches) with their ``completed`` and ``failed`` line counts, read in one
        query."""
        ok = func.sum(case((batch_lines.c.status_code == 200, 1), else_=0))
        query = (select(batch_lines.c.batch_id, func.count(), ok)
                 .where(batch_lines.c.batch_id.in_([r["id"] for r in rows]),
                        batch_lines.c.state == DONE)
                 .group_by(batch_lines.c.batch_id))
        counts = {batch_id: (int(done), int(completed or 0))
                  for batch_id, done, completed in c.execute(query)} if rows else {}
        for row in rows:
            done, completed = counts.get(row["id"], (0, 0))
            row["completed"], row["failed"] = completed, done - completed
        return rows

    def cancel(self, batch_id: str, tenant: str | None) -> dict[str, Any] | None:
        """Move the batch to ``cancelling`` where it still runs; the batch as it then is."""
        with self._engine.begin() as c:
            c.execute(update(batches).where(
                batches.c.id == batch_id, _tenant_is(batches.c.tenant, tenant),
                batches.c.status.in_([Status.VALIDATING, Status.IN_PROGRESS]),
            ).values(status=Status.CANCELLING, cancelling_at=time.time()))
        return self.batch(batch_id, tenant)

    def active(self) -> list[dict[str, Any]]:
        """The batches the runners still have work in, oldest first."""
        query = (select(batches.c.id, batches.c.status, batches.c.expires_at, batches.c.tenant,
                        batches.c.key_id, batches.c.endpoint)
                 .where(batches.c.status.in_([str(s) for s in ACTIVE]))
                 .order_by(batches.c.created_at))
        with self._engine.connect() as c:
            return [dict(r) for r in c.execute(query).mappings()]

    def move(self, batch_id: str, sources: Iterable[Status], target: Status) -> bool:
        """Compare and set: ``target`` (and its time) if the batch is in one of ``sources``."""
        with self._engine.begin() as c:
            moved = c.execute(update(batches).where(
                batches.c.id == batch_id, batches.c.status.in_([str(s) for s in sources]),
            ).values({"status": target, f"{target}_at": time.time()}))
        return bool(moved.rowcount)

    # -- lines ---------------------------------------------------------------------------

    def lines(self, batch_id: str) -> Lines:
        """How many lines are in each state; a claim whose lease ran out (its process is
        gone) counts as pending: it is claimed again."""
        lines = batch_lines.c
        state = case((and_(lines.state == CLAIMED, lines.lease_until < time.time()), PENDING),
                     else_=lines.state)
        query = (select(state, func.count()).where(lines.batch_id == batch_id)
                 .group_by(state))
        with self._engine.connect() as c:
            counts = {str(name): int(n) for name, n in c.execute(query)}
        return Lines(counts.get(PENDING, 0), counts.get(CLAIMED, 0), counts.get(DONE, 0))

    def claim(self, batch_id: str, n: int, lease_s: float) -> list[Claimed]:
        """Take up to ``n`` lines to run: pending ones, or claimed ones whose lease ran out
        (their process is gone), first lines first."""
        now, token = time.time(), uuid.uuid4().hex
        lines = batch_lines.c
        free = (select(lines.idx).where(
            lines.batch_id == batch_id,
            or_(lines.state == PENDING, and_(lines.state == CLAIMED, lines.lease_until < now)))
            .order_by(lines.idx).limit(n).with_for_update(skip_locked=True))
        with self._engine.begin() as c:
            c.execute(update(batch_lines).where(lines.batch_id == batch_id, lines.idx.in_(free))
                      .values(state=CLAIMED, claim=token, lease_until=now + lease_s,
                              tries=lines.tries + 1))
            rows = c.execute(select(lines.idx, lines.custom_id, lines.body).where(
                lines.batch_id == batch_id, lines.claim == token).order_by(lines.idx)).all()
        return [Claimed(batch_id, r.idx, r.custom_id, orjson.loads(r.body), token)
                for r in rows]

    def renew(self, claims: Iterable[str], lease_s: float) -> None:
        self._set_claimed(claims, lease_until=time.time() + lease_s)

    def release(self, claims: Iterable[str]) -> None:
        """Give lines this process holds back (it stops): pending again, at once."""
        self._set_claimed(claims, state=PENDING, claim=None, lease_until=None)

    def _set_claimed(self, claims: Iterable[str], **values: Any) -> None:
        """Set ``values`` on the lines still claimed under any of ``claims``."""
        tokens = list(claims)
        if not tokens:
            return
        with self._engine.begin() as c:
            c.execute(update(batch_lines).where(
                batch_lines.c.claim.in_(tokens), batch_lines.c.state == CLAIMED,
            ).values(**values))

    def finish(self, line: Claimed, status: int | None, result: dict[str, Any]) -> bool:
        """Store a line's result (``status`` None: it never ran); False when this claim no
        longer holds the line."""
        lines = batch_lines.c
        with self._engine.begin() as c:
            done = c.execute(update(batch_lines).where(
                lines.batch_id == line.batch_id, lines.idx == line.index,
                lines.claim == line.claim, lines.state == CLAIMED,
            ).values(state=DONE, status_code=status, result=orjson.dumps(result).decode(),
                     claim=None, lease_until=None))
        return bool(done.rowcount)

    def close_pending(self, batch_id: str, code: str) -> int:
        """Answer every pending line with ``code`` (results.EXPIRED or CANCELLED) unrun."""
        lines = batch_lines.c
        with self._engine.begin() as c:
            rows = c.execute(select(lines.idx, lines.custom_id).where(
                lines.batch_id == batch_id, lines.state == PENDING)).all()
            closed = 0
            for r in rows:
                closed += c.execute(update(batch_lines).where(
                    lines.batch_id == batch_id, lines.idx == r.idx, lines.state == PENDING,
                ).values(state=DONE, result=orjson.dumps(
                    unrun(batch_id, r.idx, r.custom_id, code)).decode())).rowcount
        return closed

    def finalize(self, batch_id: str) -> Status | None:
        """Write a finalizing batch's output and error files and end it (completed, expired
        or cancelled); None when another process did (or it is not finalizing)."""
        with self._engine.begin() as c:
            # a write first: the row's lock (PostgreSQL) or the database's (SQLite) is held
            # from here, so a second process finalizing waits, then finds nothing to do
            held = c.execute(update(batches).where(
                batches.c.id == batch_id, batches.c.status == Status.FINALIZING,
            ).values(finalizing_at=batches.c.finalizing_at))
            if not held.rowcount:
                return None
            row = c.execute(select(batches.c.tenant, batches.c.cancelling_at).where(
                batches.c.id == batch_id)).one()
            ok, bad, expired = bytearray(), bytearray(), 0
            results = c.execute(select(batch_lines.c.status_code, batch_lines.c.result).where(
                batch_lines.c.batch_id == batch_id).order_by(batch_lines.c.idx))
            for status, result in results:
                (ok if status == 200 else bad).extend(result.encode() + b"\n")
                if status is None and f'"{EXPIRED}"' in result:
                    expired += 1
            final = final_status(row.cancelling_at is not None, expired)
            values: dict[str, Any] = {"status": final, f"{final}_at": time.time()}
            if ok:
                values["output_file_id"] = self.add_file(
                    row.tenant, f"{batch_id}_output.jsonl", OUTPUT_PURPOSE, bytes(ok), c).id
            if bad:
                values["error_file_id"] = self.add_file(
                    row.tenant, f"{batch_id}_error.jsonl", ERROR_PURPOSE, bytes(bad), c).id
            c.execute(update(batches).where(batches.c.id == batch_id).values(values))
        return final


def _page(c: Connection, query: Select[Any], table: Table, after: str | None,
          limit: int) -> Select[Any]:
    """``query`` over ``table`` newest first, from after the row ``after`` (a cursor: its id;
    an unknown one starts at the newest), at most ``limit`` rows."""
    if after is not None:
        mark = c.execute(select(table.c.created_at).where(
            table.c.id == after)).scalar_one_or_none()
        if mark is not None:
            query = query.where(or_(table.c.created_at < mark, and_(
                table.c.created_at == mark, table.c.id < after)))
    return query.order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
