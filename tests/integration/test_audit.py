"""The audit log through a real gateway: its start, an admin change and a ledger group commit
become entries; the admin API serves a signed checkpoint, proofs and entries that verify with
nothing but SHA-256 and the verifier key; checkpoints are also signed periodically."""

from __future__ import annotations

import base64
import hashlib
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from inferplane.audit.checkpoint import parse
from inferplane.audit.merkle import verify_consistency, verify_inclusion
from inferplane.audit.signer import parse_verifier
from tests.upstream.process import UpstreamProcess

from .gateway_proc import GatewayProc, running_gateway

KEY = "sk-upstream-audit"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("audit", api_key=KEY) as up:
        yield up


def _b64(text: str) -> bytes:
    return base64.b64decode(text)


def _get(gateway: GatewayProc, path: str, **params: Any) -> Any:
    response = httpx.get(f"{gateway.url}/admin/v1/audit/{path}", params=params, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def _entries(gateway: GatewayProc, kind: str, timeout: float = 15.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        entries = _get(gateway, "entries", start=0, end=1000)["entries"]
        if any(e["kind"] == kind for e in entries) or time.monotonic() > deadline:
            return list(entries)
        time.sleep(0.1)


def _checkpointed(db: Path, size: int) -> bool:
    """Whether a checkpoint of ``size`` entries or more is kept in the store."""
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.connect() as c:
        found = c.execute(sa.text("SELECT count(*) FROM audit_checkpoints WHERE size >= :s"),
                          {"s": size}).scalar_one()
    engine.dispose()
    return bool(found)


def test_the_gateway_logs_governance_and_serves_verifiable_proofs(
        tmp_path: Path, upstream: UpstreamProcess) -> None:
    text = (f"store: {{url: 'sqlite:///{tmp_path}/db.sqlite'}}\n"
            f"ledger: {{dir: '{tmp_path}/wal', commit_interval_ms: 20}}\n"
            "audit: {checkpoint_interval_s: 0.3}\n"
            "models:\n  - name: chat\n"
            "deployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n")
    with running_gateway(tmp_path / "gw", text, env={"UPSTREAM_KEY": KEY}) as gateway:
        created = httpx.post(f"{gateway.url}/admin/v1/tenants", json={"name": "acme"},
                             timeout=30)
        assert created.status_code == 201, created.text
        chat = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30, json={
            "model": "chat", "messages": [{"role": "user", "content": "hi"}]})
        assert chat.status_code == 200
        entries = _entries(gateway, "ledger.batch")
        kinds = [e["kind"] for e in entries]
        # the start (its configuration, then the versions it registers), then the admin change
        assert kinds[:3] == ["config.load", "governance.register", "tenant.create"]
        assert "ledger.batch" in kinds
        batch = next(e for e in entries if e["kind"] == "ledger.batch")
        assert chat.headers["x-request-id"] in batch["data"]["ids"]
        assert entries[0]["data"]["models"] == ["chat"] and len(entries[0]["data"]["sha256"]) == 64

        cp = _get(gateway, "checkpoint")
        verifier = parse_verifier(cp["verifier_key"])
        signed = parse(cp["checkpoint"])
        assert signed.verified_by([verifier]) == [verifier]
        size, root = cp["tree_size"], _b64(cp["root_hash"])
        assert signed.checkpoint.size == size == len(entries) and signed.checkpoint.root == root
        for entry in entries:  # only SHA-256 and the proof: what an outside verifier has
            leaf = hashlib.sha256(b"\x00" + _b64(entry["leaf_input"])).digest()
            proof = _get(gateway, "proof/inclusion", leaf=entry["index"], size=size)
            path = [_b64(p) for p in proof["inclusion_path"]]
            assert verify_inclusion(entry["index"], size, leaf, path, root)
        for first in range(1, size + 1):
            proof = _get(gateway, "proof/consistency", **{"from": first, "to": size})
            assert verify_consistency(first, size, _b64(proof["root_hash_1"]), root,
                                      [_b64(p) for p in proof["consistency_path"]])

        bad = httpx.get(f"{gateway.url}/admin/v1/audit/proof/inclusion",
                        params={"leaf": size + 5}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
        spec = httpx.get(f"{gateway.url}/admin/openapi.json", timeout=30).json()
        assert {"/v1/audit/checkpoint", "/v1/audit/proof/inclusion",
                "/v1/audit/proof/consistency", "/v1/audit/entries"} <= set(spec["paths"])
        time.sleep(0.8)  # a periodic checkpoint would be due, but the tree has not grown
        httpx.post(f"{gateway.url}/admin/v1/tenants", json={"name": "globex"}, timeout=30)
        deadline = time.monotonic() + 10
        while not _checkpointed(tmp_path / "db.sqlite", size + 1):
            assert time.monotonic() < deadline, "no periodic checkpoint"
            time.sleep(0.1)
    key = tmp_path / "wal" / "audit-signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
