"""Tenants and API keys as stored, and the principal a request acts as."""

from __future__ import annotations

import re
from dataclasses import dataclass

from inferplane.errors import InvalidRequest
from inferplane.tenancy.admission import Limits
from inferplane.tenancy.budget import Budget
from inferplane.tenancy.keys import Scope, model_allowed

TENANT_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")


def check_tenant_name(name: str) -> str:
    """>>> check_tenant_name("acme-eu")
    'acme-eu'
    """
    if not TENANT_NAME.fullmatch(name):
        raise InvalidRequest("A tenant name is 1-64 characters: lowercase letters, digits, "
                             "'-', '_' or '.', starting with a letter or digit.", param="name")
    return name


@dataclass(frozen=True, slots=True)
class Tenant:
    name: str
    rpm: int | None = None
    tpm: int | None = None
    budget: Budget | None = None
    created_at: float = 0.0

    @property
    def limits(self) -> Limits:
        return Limits(f"tenant:{self.name}", self.rpm, self.tpm, self.budget)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key's settings; never its secret (only a hash of it is stored, apart from this)."""

    id: str
    tenant: str
    name: str | None = None
    scopes: frozenset[Scope] = frozenset({Scope.INFERENCE})
    models: tuple[str, ...] = ()  # shell globs; none: every model
    residency: tuple[str, ...] | None = None  # regions / jurisdictions its requests stay in
    rpm: int | None = None
    tpm: int | None = None
    budget: Budget | None = None
    expires_at: float | None = None
    created_at: float = 0.0
    revoked_at: float | None = None

    @property
    def limits(self) -> Limits:
        return Limits(f"key:{self.id}", self.rpm, self.tpm, self.budget)

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as. ``key`` is None only in open mode (no keys exist yet, loopback)."""

    key: ApiKey | None
    tenant: Tenant | None

    @property
    def open(self) -> bool:
        return self.key is None

    @property
    def tenant_name(self) -> str | None:
        return None if self.key is None else self.key.tenant

    @property
    def key_id(self) -> str | None:
        return None if self.key is None else self.key.id

    def has(self, scope: Scope) -> bool:
        """Open mode may do everything; ``admin`` implies ``viewer``, and ``viewer`` implies
        ``read:ledger`` (of every tenant)."""
        if self.key is None:
            return True
        scopes = self.key.scopes
        return scope in scopes or bool(_IMPLIED_BY.get(scope, frozenset()) & scopes)

    @property
    def operator(self) -> bool:
        """Sees every tenant (``viewer`` or ``admin`` scope, or open mode)."""
        return self.has(Scope.VIEWER)

    def may_use(self, model: str) -> bool:
        return self.key is None or model_allowed(self.key.models, model)

    def limits(self) -> list[Limits]:
        """The limits this request must pass: its key's, then its tenant's (those set)."""
        found = [] if self.key is None else [self.key.limits]
        if self.tenant is not None:
            found.append(self.tenant.limits)
        return [lim for lim in found if lim.rpm or lim.tpm or lim.budget]


OPEN = Principal(None, None)
_IMPLIED_BY = {Scope.VIEWER: frozenset({Scope.ADMIN}),
               Scope.READ_LEDGER: frozenset({Scope.VIEWER, Scope.ADMIN})}
