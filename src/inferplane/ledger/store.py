"""The SQL store of usage records: schema, engine, batched inserts with a checkpoint, queries.

Portable SQLAlchemy core: SQLite (WAL mode) is the default, PostgreSQL (psycopg 3) the choice
for production. Records come in batches (one ``executemany`` and one transaction per batch,
never one per request), each batch together with the WAL position it reaches, so a replay after
a crash inserts nothing twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from operator import itemgetter
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, RowMapping, make_url
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.sql.dml import Insert

from inferplane.audit import store as audit
from inferplane.audit.entries import LEDGER_BATCH, batch_data
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.stats import GroupRow, summarize

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_S = 5.0
PG_CONNECT_TIMEOUT_S = 10  # unless the URL sets ?connect_timeout=SECONDS
# FULL, not NORMAL: a group commit must be durable before the WAL segments it covers are deleted.
# It costs one fsync per batch, on the committer thread, never on the request path.
SQLITE_SYNCHRONOUS = "FULL"
RECORDS_BATCH = 5_000  # rows Store.records fetches at a time (PostgreSQL: a server-side cursor)
# PostgreSQL: the key of the advisory lock that lets one process at a time migrate a database.
MIGRATION_LOCK_KEY = 0x1EDCE7_1ED6E8  # "ledger ledger", in hex-ish; any constant bigint will do

metadata = MetaData()

usage_records = Table(
    "usage_records",
    metadata,
    Column("id", String, primary_key=True),
    Column("ts", Float, nullable=False),
    Column("endpoint", String, nullable=False),
    Column("model", String, nullable=False),
    Column("deployment", String),
    Column("provider", String),
    Column("prompt_tokens", Integer, nullable=False),
    Column("completion_tokens", Integer, nullable=False),
    Column("ttft_ms", Float),
    Column("latency_ms", Float, nullable=False),
    Column("status", Integer, nullable=False),
    Column("error_type", String),
    Column("finish_reason", String),
    Column("stream", Boolean, nullable=False),
    Column("engine_seconds", Float, nullable=False),
    Column("cost_usd", Float, nullable=False),
    Column("cached_tokens", Integer, nullable=False, server_default="0"),
    Column("cache_write_tokens", Integer, nullable=False, server_default="0"),
    Column("reasoning_tokens", Integer, nullable=False, server_default="0"),
    Column("region", String),
    Column("routing_policy", String),
    Column("routing_reason", Text),
    Column("attempts", Text),
    Column("attempt_count", Integer, nullable=False, server_default="1"),
    Column("usage_source", String, nullable=False, server_default="reported"),
    Column("cost_method", String),
    Column("energy_j", Float),
    Column("energy_method", String),
    Column("co2_g", Float),
    Column("water_l", Float),
    Column("tenant", String),
    Column("key_id", String(16)),
    Column("version", String(128)),
    Column("cache", String(16)),
    Column("cache_saved_usd", Float, nullable=False, server_default="0"),
    Column("cache_saved_energy_j", Float),
    Column("cache_saved_co2_g", Float),
    Column("shadow_of", String(64)),
    Column("purpose", String(32)),
    Column("on_behalf_of", String(64)),
    Column("batch_id", String(64)),
    Index("ix_usage_records_ts", "ts"),
    Index("ix_usage_records_model_ts", "model", "ts"),
    Index("ix_usage_records_tenant_ts", "tenant", "ts"),
    Index("ix_usage_records_key_ts", "key_id", "ts"),
    Index("ix_usage_records_version_ts", "version", "ts"),
)

ledger_checkpoint = Table(
    "ledger_checkpoint",
    metadata,
    Column("wal_id", String(64), primary_key=True),
    Column("segment", BigInteger, nullable=False),
    Column("byte_offset", BigInteger, nullable=False),
    Column("updated_at", Float, nullable=False),
)

# One row (id 1): the store's identity, a random id made by the migration that created it. A WAL
# directory notes it on first use and is refused by any other store (see ledger/waldir.py).
ledger_store_identity = Table(
    "ledger_store_identity",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("store_id", String(32), nullable=False),
    Column("created_at", Float, nullable=False),
)

Row = Mapping[str, Any]
FLOAT_COLUMNS = frozenset(c.name for c in usage_records.c if isinstance(c.type, Float))


def database_url(url: str) -> URL:
    """``url`` parsed, PostgreSQL's driver made explicit: psycopg 3 unless the URL names one.

    >>> database_url("postgres://me@db.internal/ledger").render_as_string()
    'postgresql+psycopg://me@db.internal/ledger'
    >>> database_url("postgresql+asyncpg://me@db/ledger").drivername
    'postgresql+asyncpg'
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for ``url``; for SQLite: ``~`` expanded, parent dirs made, WAL mode, FULL sync.

    ``postgresql://`` and ``postgres://`` URLs use psycopg 3. SQLite's busy timeout is 5 s unless
    the URL sets ``?timeout=SECONDS``. ``:memory:`` is not supported: each thread would see a
    database of its own.
    """
    parsed = database_url(url)
    if parsed.get_backend_name() != "sqlite":
        connect = {"connect_timeout": PG_CONNECT_TIMEOUT_S} if "connect_timeout" not in (
            parsed.query) else {}  # an unreachable host must not stall the committer forever
        return create_engine(parsed, pool_pre_ping=True, connect_args=connect)
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        raise ValueError(f"the ledger needs a SQLite file, not {url!r}")
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    parsed = parsed.set(database=str(path))
    timeout = parsed.query.get("timeout", str(SQLITE_BUSY_TIMEOUT_S))
    busy_ms = int(float(timeout if isinstance(timeout, str) else timeout[-1]) * 1000)
    engine = create_engine(parsed)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.close()

    return engine


def migrate(target: Engine | str) -> None:
    """Upgrade the ledger's tables to the newest migration (Alembic, configured in code)."""
    engine = make_engine(target) if isinstance(target, str) else target
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Gateways starting together on a new database: the first migrates, the others
                # wait here (until its transaction ends) and then find nothing left to do.
                connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    finally:
        if isinstance(target, str):
            engine.dispose()


def _compile_sqlite_insert() -> tuple[str, Callable[[Row], tuple[Any, ...]]]:
    statement = sqlite.insert(usage_records).on_conflict_do_nothing(index_elements=["id"])
    compiled = statement.compile(dialect=sqlite.dialect())
    return compiled.string, itemgetter(*(compiled.positiontup or ()))  # qmark: positional


# SQLite gets the driver's executemany directly: SQLAlchemy's per-row parameter processing
# doubled the committer's CPU time per record, time in which it holds the GIL the request path
# needs. (PostgreSQL keeps SQLAlchemy's executemany, which batches rows into multi-row VALUES.)
_SQLITE_INSERT, _sqlite_params = _compile_sqlite_insert()


def _without_nul(row: Row) -> Row:
    """``row`` with each NUL character in its text replaced by U+FFFD: PostgreSQL's text types
    cannot hold NUL, which a client can put in a model name (SQLite stores it as it is).

    >>> _without_nul({"model": "chat\\x00small", "status": 404})
    {'model': 'chat�small', 'status': 404}
    """
    if not any(isinstance(value, str) and "\x00" in value for value in row.values()):
        return row
    return {
        name: value.replace("\x00", "\ufffd") if isinstance(value, str) else value
        for name, value in row.items()
    }


def _insert_ignoring_duplicates(connection: Connection, rows: Sequence[Row]) -> None:
    statement: Insert
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql(_SQLITE_INSERT, [_sqlite_params(row) for row in rows])
        return
    if connection.dialect.name == "postgresql":
        statement = postgresql.insert(usage_records).on_conflict_do_nothing(index_elements=["id"])
        rows = [_without_nul(row) for row in rows]
    else:  # any other database: leave out the ids it already has
        ids = [row["id"] for row in rows]
        query = select(usage_records.c.id).where(usage_records.c.id.in_(ids))
        known = set(connection.scalars(query))
        rows = list({row["id"]: row for row in rows if row["id"] not in known}.values())
        statement = insert(usage_records)
    if rows:
        connection.execute(statement, list(rows))


class Store:
    """The usage records in a SQL database. Thread-safe (connections come from a pool)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._identity: str | None = None

    @classmethod
    def open(cls, url: str) -> Store:
        """Connect and migrate to the newest schema."""
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL with any password hidden."""
        return self._engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self._engine.dispose()

    def identity(self) -> str:
        """This store's id: 32 hex digits, random, made when the store was first migrated and
        the same for every process and URL that reaches this database.

        Should the row be gone (deleted by hand), a new id is made, once for every process: the
        WAL directories bound to the old one are then refused, never replayed here by mistake.
        """
        if self._identity is None:
            self._identity = self._read_identity() or self._make_identity()
        return self._identity

    def _read_identity(self) -> str | None:
        query = select(ledger_store_identity.c.store_id).where(ledger_store_identity.c.id == 1)
        with self._engine.connect() as connection:
            found = connection.execute(query).scalar_one_or_none()
        return None if found is None else str(found)

    def _make_identity(self) -> str:
        row = {"id": 1, "store_id": uuid.uuid4().hex, "created_at": time.time()}
        try:
            with self._engine.begin() as connection:
                connection.execute(insert(ledger_store_identity).values(**row))
        except IntegrityError:  # another process made it first: its id is the one
            pass
        made = self._read_identity()
        if made is None:
            raise RuntimeError("the store's identity row vanished while it was being made")
        return made

    # -- writing -------------------------------------------------------------------------

    def checkpoint(self, wal_id: str) -> tuple[int, int] | None:
        """The (segment, offset) of WAL ``wal_id`` the store has taken everything before."""
        query = select(ledger_checkpoint.c.segment, ledger_checkpoint.c.byte_offset).where(
            ledger_checkpoint.c.wal_id == wal_id
        )
        with self._engine.connect() as connection:
            row = connection.execute(query).first()
        return None if row is None else (int(row[0]), int(row[1]))

    def commit(self, rows: Sequence[Row], wal_id: str, position: tuple[int, int], *,
               covered: Sequence[Row] | None = None) -> None:
        """Insert ``rows`` (ids already present are skipped) and move the checkpoint, atomically.

        The same transaction appends a ``ledger.batch`` entry to the audit log: the digest of
        ``covered`` (default: ``rows``), the records this checkpoint move accounts for, unless
        there are none. The entry is therefore appended exactly once per batch, as the
        checkpoint moves exactly once.
        """
        values = {"segment": position[0], "byte_offset": position[1], "updated_at": time.time()}
        with self._engine.begin() as connection:
            if rows:
                _insert_ignoring_duplicates(connection, rows)
            moved = connection.execute(
                update(ledger_checkpoint)
                .where(ledger_checkpoint.c.wal_id == wal_id)
                .values(**values)
            )
            if moved.rowcount == 0:
                connection.execute(insert(ledger_checkpoint).values(wal_id=wal_id, **values))
            audited = rows if covered is None else covered
            if audited:
                data = batch_data(audited, FLOAT_COLUMNS, wal_id=wal_id, position=position)
                audit.append(connection, LEDGER_BATCH, data, actor="ledger")

    def insert_each(self, rows: Sequence[Row]) -> list[Row]:
        """Insert rows one transaction each; return those the database refuses outright."""
        rejected: list[Row] = []
        for row in rows:
            try:
                with self._engine.begin() as connection:
                    _insert_ignoring_duplicates(connection, [row])
            except (IntegrityError, DataError):
                rejected.append(row)
        return rejected

    # -- reading -------------------------------------------------------------------------

    def tail(self, n: int = 20, model: str | None = None) -> list[UsageRecord]:
        """The ``n`` newest records (of ``model`` if given), newest last."""
        t = usage_records
        query = select(t).order_by(t.c.ts.desc(), t.c.id.desc()).limit(n)
        if model is not None:
            query = query.where(t.c.model == model)
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [UsageRecord(**row) for row in reversed(rows)]

    def records(
        self,
        since: float | None = None,
        until: float | None = None,
        columns: Sequence[str] | None = None,
        *,
        tenant: str | None = None,
        model: str | None = None,
    ) -> Iterator[RowMapping]:
        """The records with ``since <= ts < until`` (either bound may be None), of ``tenant``
        and ``model`` when given, as mappings of ``columns`` (default: all), streamed in batches
        rather than loaded at once, oldest first.

        The connection stays open until the iterator is exhausted or closed.
        """
        t = usage_records
        query = select(*(t.c[name] for name in columns)) if columns else select(t)
        for column, value in ((t.c.tenant, tenant), (t.c.model, model)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(t.c.ts >= since)
        if until is not None:
            query = query.where(t.c.ts < until)
        query = query.order_by(t.c.ts)
        with self._engine.connect() as connection:
            result = connection.execution_options(yield_per=RECORDS_BATCH).execute(query)
            yield from result.mappings()

    def page(self, *, tenant: str | None = None, model: str | None = None,
             since: float | None = None, until: float | None = None,
             after: tuple[float, str] | None = None, limit: int = 100) -> list[UsageRecord]:
        """Up to ``limit`` records, oldest first, of ``tenant`` / ``model`` when given, with
        ``since <= ts < until``, strictly after the (ts, id) cursor ``after``."""
        t = usage_records
        query = select(t).order_by(t.c.ts, t.c.id).limit(limit)
        for column, value in ((t.c.tenant, tenant), (t.c.model, model)):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(t.c.ts >= since)
        if until is not None:
            query = query.where(t.c.ts < until)
        if after is not None:
            query = query.where((t.c.ts > after[0]) | ((t.c.ts == after[0]) & (t.c.id > after[1])))
        with self._engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [UsageRecord(**row) for row in rows]

    def get(self, record_id: str) -> UsageRecord | None:
        with self._engine.connect() as connection:
            row = (
                connection.execute(select(usage_records).where(usage_records.c.id == record_id))
                .mappings()
                .first()
            )
        return None if row is None else UsageRecord(**row)

    def count(self) -> int:
        with self._engine.connect() as connection:
            query = select(func.count()).select_from(usage_records)
            return int(connection.execute(query).scalar_one())

    def stats(self) -> dict[str, Any]:
        """Totals and latency percentiles, overall and per model (see :func:`summarize`)."""
        t = usage_records
        keys = (t.c.model, t.c.status, t.c.error_type)
        grouped = select(
            *keys,
            func.count(),
            func.coalesce(func.sum(t.c.prompt_tokens), 0),
            func.coalesce(func.sum(t.c.completion_tokens), 0),
            func.coalesce(func.sum(t.c.cost_usd), 0.0),
            func.coalesce(func.sum(t.c.engine_seconds), 0.0),
        ).group_by(*keys)
        with self._engine.connect() as connection:
            groups = [
                GroupRow(
                    r[0], int(r[1]), r[2], int(r[3]), int(r[4]), int(r[5]), float(r[6]), float(r[7])
                )
                for r in connection.execute(grouped)
            ]
            timings = connection.execute(select(t.c.model, t.c.latency_ms, t.c.ttft_ms)).all()
        return summarize(groups, timings)
