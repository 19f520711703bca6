"""Tenants, keys and the admin event record in the SQL database the ledger uses (same
migrations, SQLite or PostgreSQL). Every change is one transaction that also records who made
it (``admin_events``) and bumps the revision every gateway process polls, so a revoked key stops
working everywhere within the poll interval.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from inferplane.audit import store as audit
from inferplane.errors import Conflict, NotFound
from inferplane.ledger.store import make_engine, migrate, usage_records
from inferplane.tenancy.admission import NANOS_PER_USD, Limits
from inferplane.tenancy.budget import Budget, BudgetStanding, period_end
from inferplane.tenancy.keys import NewKey, Scope, new_key
from inferplane.tenancy.records import ApiKey, Tenant, check_tenant_name

metadata = MetaData()


def _limit_columns() -> tuple[Column[Any], ...]:
    return (Column("rpm", Integer), Column("tpm", BigInteger), Column("budget_usd", Float),
            Column("budget_period", String(8)))


tenants = Table(
    "tenants", metadata,
    Column("name", String(64), primary_key=True),
    *_limit_columns(),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
)
api_keys = Table(
    "api_keys", metadata,
    Column("id", String(16), primary_key=True),
    Column("tenant", String(64), ForeignKey("tenants.name"), nullable=False),
    Column("name", String(128)),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(128), nullable=False),
    Column("models", Text),
    Column("residency", Text),
    *_limit_columns(),
    Column("expires_at", Float),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
)
admin_events = Table(
    "admin_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("actor", String(128), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target", String(128)),
    Column("tenant", String(64)),
    Column("details", Text),
)
tenancy_revision = Table(
    "tenancy_revision", metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", BigInteger, nullable=False),
)

# Fields a tenant or key update may change, and how each is stored.
LIMIT_FIELDS = ("rpm", "tpm", "budget")


def _budget_of(row: Mapping[Any, Any]) -> Budget | None:
    if row["budget_usd"] is None:
        return None
    return Budget(float(row["budget_usd"]), row["budget_period"])


def _split(text: str | None) -> tuple[str, ...]:
    return tuple(p for p in (text or "").split(",") if p)


def tenant_of(row: Mapping[Any, Any]) -> Tenant:
    return Tenant(row["name"], row["rpm"], row["tpm"], _budget_of(row), row["created_at"])


def key_of(row: Mapping[Any, Any]) -> ApiKey:
    residency = row["residency"]
    return ApiKey(
        id=row["id"], tenant=row["tenant"], name=row["name"],
        scopes=frozenset(Scope(s) for s in _split(row["scopes"])),
        models=_split(row["models"]),
        residency=None if residency is None else _split(residency),
        rpm=row["rpm"], tpm=row["tpm"], budget=_budget_of(row),
        expires_at=row["expires_at"], created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _limit_values(rpm: int | None, tpm: int | None, budget: Budget | None) -> dict[str, Any]:
    return {"rpm": rpm, "tpm": tpm,
            "budget_usd": None if budget is None else budget.usd,
            "budget_period": None if budget is None else budget.period}


def _key_values(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id, "tenant": key.tenant, "name": key.name,
        "scopes": ",".join(sorted(key.scopes)), "models": ",".join(key.models) or None,
        "residency": None if key.residency is None else ",".join(key.residency),
        **_limit_values(key.rpm, key.tpm, key.budget),
        "expires_at": key.expires_at, "created_at": key.created_at, "revoked_at": key.revoked_at,
    }


def describe(value: Any) -> Any:
    """A JSON-able form of a tenant, key or change for the admin event record."""
    if isinstance(value, ApiKey | Tenant):
        return {k: describe(getattr(value, k)) for k in value.__slots__}
    if isinstance(value, Budget):
        return str(value)
    if isinstance(value, frozenset | tuple | list):
        return sorted(map(str, value)) if isinstance(value, frozenset) else list(value)
    return value


class TenancyStore:
    """Thread-safe (a connection pool); the gateway calls it from worker threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> TenancyStore:
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self._engine.dispose()

    # -- reading -------------------------------------------------------------------------

    def revision(self) -> int:
        with self._engine.connect() as c:
            return int(c.execute(select(tenancy_revision.c.revision)).scalar_one())

    def key_count(self) -> int:
        """Keys ever created, revoked and expired ones included."""
        with self._engine.connect() as c:
            return int(c.execute(select(func.count()).select_from(api_keys)).scalar_one())

    def key_by_hash(self, secret_hash: str) -> tuple[ApiKey, Tenant] | None:
        query = select(api_keys, *[c.label(f"t_{c.name}") for c in tenants.c]).join(
            tenants, tenants.c.name == api_keys.c.tenant).where(
            api_keys.c.secret_hash == secret_hash)
        with self._engine.connect() as c:
            row = c.execute(query).mappings().first()
        if row is None:
            return None
        tenant = tenant_of({c.name: row[f"t_{c.name}"] for c in tenants.c})
        return key_of(row), tenant

    def key(self, key_id: str) -> ApiKey | None:
        with self._engine.connect() as c:
            row = c.execute(select(api_keys).where(api_keys.c.id == key_id)).mappings().first()
        return None if row is None else key_of(row)

    def keys(self, tenant: str | None = None) -> list[ApiKey]:
        query = select(api_keys).order_by(api_keys.c.tenant, api_keys.c.created_at)
        if tenant is not None:
            query = query.where(api_keys.c.tenant == tenant)
        with self._engine.connect() as c:
            return [key_of(r) for r in c.execute(query).mappings()]

    def tenant(self, name: str) -> Tenant | None:
        with self._engine.connect() as c:
            row = c.execute(select(tenants).where(tenants.c.name == name)).mappings().first()
        return None if row is None else tenant_of(row)

    def tenants(self) -> list[Tenant]:
        with self._engine.connect() as c:
            rows = c.execute(select(tenants).order_by(tenants.c.name)).mappings().all()
        return [tenant_of(r) for r in rows]

    def events(self, limit: int = 100, tenant: str | None = None) -> list[dict[str, Any]]:
        """The newest admin events, newest first."""
        query = select(admin_events).order_by(admin_events.c.id.desc()).limit(limit)
        if tenant is not None:
            query = query.where(admin_events.c.tenant == tenant)
        with self._engine.connect() as c:
            rows = c.execute(query).mappings().all()
        return [{**r, "details": orjson.loads(r["details"]) if r["details"] else None}
                for r in rows]

    def spent_nanos(self, scope: str, budget_key: str) -> int:
        """What the ledger has recorded against ``scope`` (``key:<id>`` / ``tenant:<name>``)
        since the start of the budget period ``budget_key`` names."""
        kind, _, name = scope.partition(":")
        start = float(budget_key.partition(":")[2])  # "month:1793491200"
        column = usage_records.c.key_id if kind == "key" else usage_records.c.tenant
        query = select(func.coalesce(func.sum(usage_records.c.cost_usd), 0.0)).where(
            column == name, usage_records.c.ts >= start)
        with self._engine.connect() as c:
            total = float(c.execute(query).scalar_one())
        return round(total * NANOS_PER_USD)

    # -- changing (each change: one transaction, one admin event, one revision) -----------

    def budget_standings(self, now: float) -> list[BudgetStanding]:
        """Every budget of a tenant or an unrevoked key, with what the ledger has recorded
        against it in its current period."""
        limits = [t.limits for t in self.tenants()]
        limits += [Limits(f"key:{k.id}", budget=k.budget) for k in self.keys()
                   if k.revoked_at is None]
        standings = []
        for lim in limits:
            budget_key = lim.budget_key(now)
            if lim.budget is None or budget_key is None:
                continue
            spent = self.spent_nanos(lim.scope, budget_key) / NANOS_PER_USD
            standings.append(BudgetStanding(lim.scope, lim.budget.usd, spent,
                                            period_end(lim.budget.period, now)))
        return standings

    def _changed(self, c: Connection, actor: str, action: str, target: str | None,
                 tenant: str | None, details: Mapping[str, Any] | None) -> None:
        """Record the change as an admin event and as an audit log entry of kind ``action``,
        in the change's own transaction: both or neither commit."""
        now = time.time()
        event = c.execute(insert(admin_events).values(
            ts=now, actor=actor, action=action, target=target, tenant=tenant,
            details=orjson.dumps(details).decode() if details is not None else None))
        event_id = event.inserted_primary_key[0] if event.inserted_primary_key else None
        audit.append(c, action, {"event": event_id, "target": target,
                                 "tenant": tenant, "details": details}, actor, ts=now)
        c.execute(update(tenancy_revision).where(tenancy_revision.c.id == 1)
                  .values(revision=tenancy_revision.c.revision + 1))

    def create_tenant(self, tenant: Tenant, actor: str) -> Tenant:
        now = time.time()
        tenant = replace(tenant, name=check_tenant_name(tenant.name), created_at=now)
        try:
            with self._engine.begin() as c:
                c.execute(insert(tenants).values(
                    name=tenant.name, created_at=now, updated_at=now,
                    **_limit_values(tenant.rpm, tenant.tpm, tenant.budget)))
                self._changed(c, actor, "tenant.create", tenant.name, tenant.name,
                              describe(tenant))
        except IntegrityError as exc:
            raise Conflict(f"The tenant '{tenant.name}' already exists.") from exc
        return tenant

    def ensure_tenant(self, name: str, actor: str) -> Tenant:
        existing = self.tenant(name)
        if existing is not None:
            return existing
        try:
            return self.create_tenant(Tenant(name), actor)
        except Conflict:  # created meanwhile by someone else
            found = self.tenant(name)
            assert found is not None
            return found

    def update_tenant(self, name: str, changes: Mapping[str, Any], actor: str) -> Tenant:
        """Set the tenant's ``rpm``, ``tpm`` and/or ``budget`` (None removes a limit)."""
        with self._engine.begin() as c:
            row = c.execute(select(tenants).where(tenants.c.name == name)
                            .with_for_update()).mappings().first()
            if row is None:
                raise NotFound(f"No tenant named '{name}'.")
            tenant = replace(tenant_of(row), **changes)
            c.execute(update(tenants).where(tenants.c.name == name).values(
                updated_at=time.time(), **_limit_values(tenant.rpm, tenant.tpm, tenant.budget)))
            self._changed(c, actor, "tenant.update", name, name, describe(dict(changes)))
        return tenant

    def create_key(self, key: ApiKey, actor: str) -> tuple[ApiKey, str]:
        """Store a new key for ``key.tenant`` (which must exist) with ``key``'s settings; return
        it with its secret, which is not kept anywhere."""
        fresh = new_key()
        key = replace(key, id=fresh.id, created_at=time.time(), revoked_at=None)
        with self._engine.begin() as c:
            self._insert_key(c, key, fresh)
            self._changed(c, actor, "key.create", key.id, key.tenant, describe(key))
        return key, fresh.secret

    def _insert_key(self, c: Connection, key: ApiKey, fresh: NewKey) -> None:
        if c.execute(select(tenants.c.name).where(tenants.c.name == key.tenant)).first() is None:
            raise NotFound(f"No tenant named '{key.tenant}'.")
        c.execute(insert(api_keys).values(secret_hash=fresh.hash, **_key_values(key)))

    def rotate_key(self, key_id: str, actor: str, grace_s: float = 0.0,
                   tenant: str | None = None) -> tuple[ApiKey, str]:
        """A new key with the same settings; the old one stops working after ``grace_s``."""
        fresh = new_key()
        now = time.time()
        with self._engine.begin() as c:
            old = self._key_for_update(c, key_id, tenant)
            if not old.active(now):
                raise Conflict(f"The key '{key_id}' is revoked or expired; create a new one.")
            key = replace(old, id=fresh.id, created_at=now)
            self._insert_key(c, key, fresh)
            end = now + grace_s
            if old.expires_at is None or end < old.expires_at:
                c.execute(update(api_keys).where(api_keys.c.id == key_id).values(
                    **({"revoked_at": now} if grace_s == 0 else {"expires_at": end})))
            self._changed(c, actor, "key.rotate", key_id, old.tenant,
                          {"new_key": key.id, "grace_s": grace_s})
        return key, fresh.secret

    def revoke_key(self, key_id: str, actor: str, tenant: str | None = None) -> ApiKey:
        now = time.time()
        with self._engine.begin() as c:
            key = self._key_for_update(c, key_id, tenant)
            if key.revoked_at is None:
                c.execute(update(api_keys).where(api_keys.c.id == key_id)
                          .values(revoked_at=now))
                key = replace(key, revoked_at=now)
            self._changed(c, actor, "key.revoke", key_id, key.tenant, None)
        return key

    def _key_for_update(self, c: Connection, key_id: str, tenant: str | None) -> ApiKey:
        query = select(api_keys).where(api_keys.c.id == key_id).with_for_update()
        row = c.execute(query).mappings().first()
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise NotFound(f"No key '{key_id}'.")
        return key_of(row)

