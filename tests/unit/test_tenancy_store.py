"""The tenancy store on SQLite and PostgreSQL: every change recorded and counted in the
revision, keys found by hash only, spend read back from the ledger by key and by tenant."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from inferplane.errors import Conflict, InvalidRequest, NotFound
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store
from inferplane.tenancy.admission import nanos
from inferplane.tenancy.budget import Budget
from inferplane.tenancy.keys import Scope, hash_secret
from inferplane.tenancy.records import ApiKey, Tenant
from inferplane.tenancy.store import TenancyStore
from tests.services import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> TenancyStore:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/db/inferplane.db"
    else:
        url = fresh_database(request.getfixturevalue("postgres_url"), request.node.nodeid)
    opened = TenancyStore.open(url)
    request.addfinalizer(opened.close)
    request.node.store_url = url
    return opened


def test_changes_are_recorded_and_bump_the_revision(store: TenancyStore) -> None:
    assert store.revision() == 0 and store.key_count() == 0
    store.create_tenant(Tenant("acme", rpm=10, budget=Budget(5.0, "day")), "cli:me")
    with pytest.raises(Conflict):
        store.create_tenant(Tenant("acme"), "cli:me")
    with pytest.raises(InvalidRequest):
        store.create_tenant(Tenant("Not OK"), "cli:me")
    spec = ApiKey(id="", tenant="acme", scopes=frozenset({Scope.INFERENCE, Scope.READ_LEDGER}),
                  models=("chat-*",), residency=("eu",), tpm=1000)
    key, secret = store.create_key(spec, "key:admin")
    assert store.key_count() == 1
    found = store.key_by_hash(hash_secret(secret))
    assert found is not None and found[0] == key and found[1].budget == Budget(5.0, "day")
    assert store.key_by_hash(hash_secret(secret + "x")) is None
    with pytest.raises(NotFound):
        store.create_key(ApiKey(id="", tenant="nobody"), "cli:me")
    updated = store.update_tenant("acme", {"rpm": None, "tpm": 50}, "cli:me")
    assert (updated.rpm, updated.tpm) == (None, 50)
    new, new_secret = store.rotate_key(key.id, "cli:me", grace_s=60)
    old = store.key(key.id)
    assert old is not None and old.active(time.time()) and not old.active(time.time() + 61)
    revoked = store.revoke_key(new.id, "cli:me")
    assert revoked.revoked_at is not None and not revoked.active(time.time())
    with pytest.raises(Conflict):
        store.rotate_key(new.id, "cli:me")
    with pytest.raises(NotFound):
        store.revoke_key(key.id, "cli:me", tenant="globex")  # another tenant's key: unknown
    events = store.events()
    assert [e["action"] for e in reversed(events)] == [
        "tenant.create", "key.create", "tenant.update", "key.rotate", "key.revoke"]
    assert store.revision() == 5  # one per change; refused changes none
    assert secret not in str(events) and new_secret not in str(events)
    assert events[-2]["details"]["models"] == ["chat-*"]


def test_spend_is_read_from_the_ledger_by_key_and_tenant(
        store: TenancyStore, request: pytest.FixtureRequest) -> None:
    store.create_tenant(Tenant("acme"), "cli:me")
    a, _ = store.create_key(ApiKey(id="", tenant="acme"), "cli:me")
    b, _ = store.create_key(ApiKey(id="", tenant="acme"), "cli:me")
    ledger = Store.open(request.node.store_url)
    try:
        rows = [UsageRecord(f"r{i}", ts, "chat.completions", "m", "d", "openai", 1, 1, None,
                            1.0, 200, None, "stop", False, 0.0, cost, tenant="acme",
                            key_id=key).to_dict()
                for i, (ts, cost, key) in enumerate([(100.0, 0.25, a.id), (200.0, 0.125, b.id),
                                                     (300.0, 1.0, a.id), (50.0, 9.0, a.id)])]
        ledger.commit(rows, "w", (1, 0))
    finally:
        ledger.close()
    assert store.spent_nanos(f"key:{a.id}", "day:100") == nanos(1.25)
    assert store.spent_nanos(f"key:{b.id}", "day:100") == nanos(0.125)
    assert store.spent_nanos("tenant:acme", "month:150") == nanos(1.125)
    assert store.spent_nanos("tenant:globex", "total:0") == 0
