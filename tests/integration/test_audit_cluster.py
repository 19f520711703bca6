"""Concurrent writers through real gateways: three `inferplane up` processes share one
PostgreSQL store and one signing key; tenants, keys and limits are changed through each one's
admin API at once while chat requests go through all three to a fake upstream. Then
`inferplane audit verify` passes, the log holds exactly one entry per admin event and one
batch entry per usage record, every inclusion proof at the final size verifies against the
signed checkpoint, and consistency proofs between the checkpoints verify."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from inferplane.audit.checkpoint import parse
from inferplane.audit.entries import LEDGER_BATCH, TENANCY_KINDS
from inferplane.audit.merkle import verify_consistency, verify_inclusion
from inferplane.audit.signer import parse_verifier
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, running_gateway

UPSTREAM_KEY = "sk-upstream-audit-cluster"
TENANTS = 6  # per gateway: each a create, a key and a limits change, and CHATS requests
CHATS = 2


def _config(root: Path, db_url: str, upstream: UpstreamProcess, name: str) -> str:
    return (f"store: {{url: '{db_url}'}}\n"
            f"ledger: {{dir: '{root}/wal-{name}', commit_interval_ms: 20}}\n"
            f"audit: {{key_file: '{root}/audit.key', checkpoint_interval_s: 0.5}}\n"
            "tenancy: {poll_interval_ms: 250}\n"
            "models:\n  - name: chat\n"
            "deployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n")


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str) -> Iterator[tuple[str, list[GatewayProc]]]:
    from tests.services import fresh_database

    db_url = fresh_database(postgres_url, "audit_cluster")
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamProcess("audit-cluster", api_key=UPSTREAM_KEY,
                                                       args=["--no-log"]))
        gateways = [stack.enter_context(running_gateway(
            tmp_path / name, _config(tmp_path, db_url, upstream, name),
            env={"UPSTREAM_KEY": UPSTREAM_KEY})) for name in ("a", "b", "c")]
        yield db_url, gateways


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _call(method: str, url: str, key: str, expect: int, **kwargs: Any) -> Any:
    response = httpx.request(method, url, headers={"authorization": f"Bearer {key}"},
                             timeout=60, **kwargs)
    assert response.status_code == expect, response.text
    return response.json()


def _changes(gateway: GatewayProc, admin: str, g: int) -> int:
    """Tenants, keys, limits and chats through one gateway; the admin changes made."""
    admin_api = f"{gateway.url}/admin/v1"
    for i in range(TENANTS):
        name = f"t{g}-{i}"
        _call("POST", f"{admin_api}/tenants", admin, 201, json={"name": name})
        key = _call("POST", f"{admin_api}/keys", admin, 201, json={"tenant": name})["key"]
        _call("PATCH", f"{admin_api}/tenants/{name}", admin, 200, json={"rpm": 100 + i})
        for _ in range(CHATS):
            _call("POST", f"{gateway.url}/v1/chat/completions", key, 200, json={
                "model": "chat", "messages": [{"role": "user", "content": "hi"}]})
    return 3 * TENANTS


def _rows(db_url: str, sql: str) -> list[Any]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            return list(c.execute(sa.text(sql)))
    finally:
        engine.dispose()


def _wait_for_batches(gateway: GatewayProc, admin: str, records: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        size = _call("GET", f"{gateway.url}/admin/v1/audit/checkpoint", admin, 200)["tree_size"]
        entries = [e for s in range(0, size, 1000) for e in _call(
            "GET", f"{gateway.url}/admin/v1/audit/entries", admin, 200,
            params={"start": s, "end": min(s + 1000, size)})["entries"]]
        covered = sum(e["data"]["count"] for e in entries if e["kind"] == LEDGER_BATCH)
        if covered >= records or time.monotonic() > deadline:
            return entries
        time.sleep(0.2)


def test_three_gateways_writing_at_once_make_one_verifiable_log(
        cluster: tuple[str, list[GatewayProc]], tmp_path: Path) -> None:
    db_url, gateways = cluster
    config = gateways[0].config
    made = subprocess.run([str(BIN / "inferplane"), "keys", "create", "--tenant", "ops",
                           "--scopes", "admin,viewer", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=True)
    admin = made.stdout.strip()
    for gateway in gateways:  # the key reaches every process (tenancy polling)
        deadline = time.monotonic() + 15
        while httpx.get(f"{gateway.url}/admin/v1/tenants", timeout=30, headers={
                "authorization": f"Bearer {admin}"}).status_code != 200:
            assert time.monotonic() < deadline, "the admin key never reached a gateway"
            time.sleep(0.1)
    first = _call("GET", f"{gateways[0].url}/admin/v1/audit/checkpoint", admin, 200)
    saved = tmp_path / "first.checkpoint"
    saved.write_text(first["checkpoint"])

    started = time.perf_counter()
    with ThreadPoolExecutor(len(gateways)) as pool:
        changes = sum(pool.map(_changes, gateways, [admin] * 3, range(3)))
    busy_s = time.perf_counter() - started
    records = len(gateways) * TENANTS * CHATS
    entries = _wait_for_batches(gateways[2], admin, records)

    # one entry per admin event, in order, and one batch entry per usage record
    assert [e["index"] for e in entries] == list(range(len(entries)))
    events = _call("GET", f"{gateways[1].url}/admin/v1/events", admin, 200,
                   params={"limit": 1000})
    tenancy = [e for e in entries if e["kind"] in TENANCY_KINDS]
    assert Counter(e["data"]["event"] for e in tenancy) == Counter(e["id"] for e in events)
    assert len(tenancy) == len(events) == changes + 2  # and the CLI's tenant and key
    # (event ids come from a sequence before the tree head's lock: not in leaf order)
    batched = Counter(i for e in entries if e["kind"] == LEDGER_BATCH for i in e["data"]["ids"])
    stored = [r[0] for r in _rows(db_url, "SELECT id FROM usage_records")]
    assert len(stored) == records and batched == Counter(stored)
    assert Counter(e["kind"] for e in entries)["config.load"] == 3

    # the signed checkpoint of the final size; every inclusion proof against it
    last = _call("GET", f"{gateways[1].url}/admin/v1/audit/checkpoint", admin, 200)
    verifier = parse_verifier(first["verifier_key"])
    assert last["verifier_key"] == first["verifier_key"]  # one key, shared by the three
    signed = parse(last["checkpoint"])
    assert signed.verified_by([verifier]) == [verifier]
    size, root = signed.checkpoint.size, signed.checkpoint.root
    assert size == len(entries)
    proving = time.perf_counter()
    for entry in entries:
        leaf = hashlib.sha256(b"\x00" + _b64(entry["leaf_input"])).digest()
        proof = _call("GET", f"{gateways[entry['index'] % 3].url}/admin/v1/audit/proof/inclusion",
                      admin, 200, params={"leaf": entry["index"], "size": size})
        assert verify_inclusion(entry["index"], size, leaf,
                                [_b64(p) for p in proof["inclusion_path"]], root)
    # consistency from every checkpoint the gateways signed (periodic and on demand)
    notes = [parse(r[0]) for r in _rows(db_url, "SELECT note FROM audit_checkpoints")]
    assert len(notes) >= 2
    for note in notes:
        cp = note.checkpoint
        assert note.verified_by([verifier]) == [verifier]
        proof = _call("GET", f"{gateways[2].url}/admin/v1/audit/proof/consistency", admin, 200,
                      params={"from": cp.size, "to": size})
        assert verify_consistency(cp.size, size, cp.root, root,
                                  [_b64(p) for p in proof["consistency_path"]])
    proofs_s = time.perf_counter() - proving

    verifying = time.perf_counter()
    result = subprocess.run([str(BIN / "inferplane"), "audit", "verify", "--since-checkpoint",
                             str(saved), "--key", first["verifier_key"], "--config", str(config)],
                            capture_output=True, text=True, timeout=120)
    verify_s = time.perf_counter() - verifying
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: "), result.stdout
    print(f"\naudit cluster: {size} entries ({len(tenancy)} admin, "
          f"{sum(e['kind'] == LEDGER_BATCH for e in entries)} ledger batches over {records} "
          f"records, {len(notes)} checkpoints); changes+chats through 3 gateways {busy_s:.2f} s; "
          f"{size} inclusion + {len(notes)} consistency proofs {proofs_s:.2f} s; "
          f"audit verify {verify_s:.2f} s")
