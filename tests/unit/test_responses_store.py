"""Stored responses on SQLite and PostgreSQL (migration 0011): tenant scope, the chain that
previous_response_id follows, retention (expired rows are never served, and swept), delete."""

from __future__ import annotations

from inferplane.ledger.store import make_engine, migrate
from inferplane.responses.store import ResponseStore, StoredResponse

DAY = 86_400.0


def _stored(response_id: str, tenant: str, now: float, previous: str | None = None,
            days: float = 30) -> StoredResponse:
    item = {"type": "message", "id": f"msg_{response_id}", "role": "user",
            "content": [{"type": "input_text", "text": f"said in {response_id}"}]}
    return StoredResponse(response_id, tenant, now, now + days * DAY, previous, [item],
                          {"id": response_id, "output": [], "metadata": {"k": "v"}})


def test_stored_responses_are_tenant_scoped_chained_and_expire(store_url: str) -> None:
    engine = make_engine(store_url)
    migrate(engine)
    store = ResponseStore(engine)
    now = 1_000_000.0
    store.save(_stored("r1", "acme", now))
    store.save(_stored("r2", "acme", now + 1, previous="r1"))
    store.save(_stored("r3", "acme", now + 2, previous="r2", days=1))
    store.save(_stored("z1", "zeta", now))

    got = store.get("acme", "r2", now)
    assert got is not None and got.input_items[0]["content"][0]["text"] == "said in r2"
    assert got.response["metadata"] == {"k": "v"} and got.previous_id == "r1"
    assert store.get("zeta", "r2", now) is None  # another tenant's
    chain = store.chain("acme", "r3", now, limit=10)
    assert chain is not None and [s.id for s in chain] == ["r1", "r2", "r3"]
    assert [s.id for s in store.chain("acme", "r3", now, limit=2) or []] == ["r2", "r3"]
    assert store.chain("zeta", "r3", now, limit=10) is None

    later = now + 2 * DAY  # r3 kept one day: expired, never served, then swept
    assert store.get("acme", "r3", later) is None
    assert store.delete("acme", "r3", later) is False
    assert store.sweep(later) == 1
    assert store.sweep(later) == 0
    assert store.get("acme", "r2", later) is not None

    assert store.delete("zeta", "r1", now) is False  # not zeta's to delete
    assert store.delete("acme", "r1", now) is True
    chain = store.chain("acme", "r2", now, limit=10)  # a deleted predecessor ends the chain
    assert chain is not None and [s.id for s in chain] == ["r2"]
    engine.dispose()
