"""The tenancy stage of the data path: who is calling (:meth:`Access.authenticate`), may the
request start (:meth:`Access.admit`), and what it really used (:meth:`Access.settle`).

Keys are looked up by the SHA-256 of the presented secret and cached; every process polls the
store's revision every ``tenancy.poll_interval_ms`` and drops its cache when it moved, so a
revoked key, or a changed limit, takes effect everywhere within that interval plus one query.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence

from inferplane.config import Config
from inferplane.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    InferplaneError,
    PermissionDenied,
    RateLimited,
)
from inferplane.polling import poll_forever
from inferplane.tenancy.admission import Demand, Limits, Refusal, Reservation, nanos
from inferplane.tenancy.counters import Counters, MemoryCounters, RedisCounters
from inferplane.tenancy.keys import Scope, hash_secret, key_id
from inferplane.tenancy.records import OPEN, ApiKey, Principal, Tenant
from inferplane.tenancy.store import TenancyStore

log = logging.getLogger("inferplane.tenancy")
_Entry = tuple[ApiKey, Tenant] | None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent: ``Authorization: Bearer <key>`` (OpenAI) or ``x-api-key``
    (Anthropic).

    >>> presented_key({"authorization": "Bearer abc"}), presented_key({"x-api-key": "k"})
    ('abc', 'k')
    """
    auth = headers.get("authorization")
    if auth is not None:
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return headers.get("x-api-key") or None


@functools.lru_cache(maxsize=1024)
def loopback(host: str | None) -> bool:
    """Whether ``host`` (a client address) is on this machine; cached, as the same few
    clients ask over and over.

    >>> loopback("127.0.0.1"), loopback("::1"), loopback("10.0.0.2"), loopback(None)
    (True, True, False, False)
    """
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refusal_error(refusal: Refusal) -> InferplaneError:
    """The 429 a refusal becomes, in words a client can act on."""
    who = refusal.scope.replace(":", " ", 1)
    if refusal.kind == "budget":
        return BudgetExceeded(
            f"The {who} has used ${refusal.used:.6g} of its ${refusal.limit:.6g} budget; this "
            "request could cost more than what is left. The budget resets at the start of the "
            "next period; ask an admin to raise it.", retry_after=None)
    unit = "requests" if refusal.kind == "rpm" else "tokens"
    return RateLimited(
        f"Rate limit reached for {who}: {refusal.limit:g} {unit} per minute. "
        f"Retry in {refusal.retry_after_s or 0:.2f}s.", retry_after=refusal.retry_after_s)


class Access:
    def __init__(self, config: Config, store: TenancyStore, counters: Counters) -> None:
        self._tenancy = config.tenancy
        self._store = store
        self._counters = counters
        self._cache: OrderedDict[str, _Entry] = OrderedDict()
        self._revision = -1
        self._keys = 0  # keys ever created (revoked ones too): any means auth is required
        self._poller: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, config: Config, store: TenancyStore) -> Access:
        async def spent(scope: str, budget_key: str) -> int:
            return await asyncio.to_thread(store.spent_nanos, scope, budget_key)

        counters: Counters = (RedisCounters(config.redis.url, spent) if config.redis.url
                              else MemoryCounters(spent))
        return cls(config, store, counters)

    @property
    def open(self) -> bool:
        """No key exists yet and keys are not required: loopback clients need none."""
        return self._tenancy.auth == "auto" and self._keys == 0

    @property
    def store(self) -> TenancyStore:
        return self._store

    @property
    def shared(self) -> bool:
        return isinstance(self._counters, RedisCounters)

    async def start(self) -> None:
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="inferplane-key-revision")

    async def stop(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        await self._counters.close()
        self._store.close()

    async def refresh(self) -> None:
        """Drop cached keys if the store's revision moved since the last look."""
        revision = await asyncio.to_thread(self._store.revision)
        if revision != self._revision:
            self._keys = await asyncio.to_thread(self._store.key_count)
            self._cache.clear()
            self._revision = revision

    async def _poll(self) -> None:
        await poll_forever(self._tenancy.poll_interval_ms / 1000, self.refresh, "key changes",
                           log)

    async def authenticate(self, headers: Mapping[str, str], client: str | None,
                           scope: Scope = Scope.INFERENCE) -> Principal:
        presented = presented_key(headers)
        ours = presented is not None and key_id(presented) is not None
        if self.open and not ours:  # another gateway's key (an SDK needs one) or none at all
            if loopback(client):
                return OPEN
            raise AuthenticationFailed(
                "No API key exists yet, so only clients on this machine are served. Create one "
                "with `inferplane keys create --tenant NAME` and send it as a bearer token.")
        if presented is None:
            raise AuthenticationFailed(
                "Missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key'.")
        if not ours:
            raise AuthenticationFailed("The API key is not valid.")
        entry = await self._lookup(hash_secret(presented))
        if entry is None:
            raise AuthenticationFailed("The API key is not valid.")
        key, tenant = entry
        now = time.time()
        if key.revoked_at is not None:
            raise AuthenticationFailed(f"The API key {key.id} was revoked.")
        if key.expires_at is not None and now >= key.expires_at:
            raise AuthenticationFailed(f"The API key {key.id} has expired.")
        principal = Principal(key, tenant)
        if not principal.has(scope):
            raise PermissionDenied(f"The API key {key.id} lacks the '{scope}' scope.")
        return principal

    async def _lookup(self, secret_hash: str) -> _Entry:
        if secret_hash in self._cache:
            self._cache.move_to_end(secret_hash)
            return self._cache[secret_hash]
        revision = self._revision
        entry = await asyncio.to_thread(self._store.key_by_hash, secret_hash)
        if revision == self._revision:  # not stale: no change was seen while looking
            self._cache[secret_hash] = entry
            if len(self._cache) > self._tenancy.key_cache_size:
                self._cache.popitem(last=False)
        return entry

    def reserve_tokens(self, max_tokens: int | None) -> int:
        return max_tokens or self._tenancy.reserve_output_tokens

    async def admit(self, limits: Sequence[Limits], demand: Demand) -> Reservation:
        """Charge the request to ``limits`` (its key's and tenant's), or raise the 429."""
        outcome = await self._counters.admit(limits, demand)
        if isinstance(outcome, Refusal):
            raise refusal_error(outcome)
        return outcome

    async def settle(self, reservation: Reservation, tokens: int, cost_usd: float) -> None:
        try:
            await self._counters.settle(reservation, tokens, nanos(cost_usd))
        except InferplaneError as exc:  # the hold lapses on its own after its expiry
            log.warning("could not settle reservation %s: %s", reservation.id, exc.message)

