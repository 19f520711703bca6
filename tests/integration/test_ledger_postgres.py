"""`inferplane up` with its ledger in PostgreSQL: what clients send through the gateway lands
there as usage records, one per request, from a `postgres://` URL as a user writes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from inferplane.ledger.record import UsageRecord
from inferplane.ledger.store import Store
from tests.services import fresh_database
from tests.upstream.process import UpstreamProcess

from .gateway_proc import running_gateway

KEY = "sk-upstream-postgres"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("pg", api_key=KEY) as up:
        yield up


def config(root: Path, store_url: str, upstream: UpstreamProcess) -> str:
    return (
        f"store: {{url: '{store_url}'}}\n"
        f"ledger: {{dir: '{root}/wal', commit_interval_ms: 20}}\n"
        "models:\n  - name: chat\n"
        "deployments:\n"
        f"  - {{name: pg-up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
        "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1, region: eu-west-1, "
        "price: {input_per_mtok: 1.0, output_per_mtok: 2.0}}\n"
    )


def stored(store: Store, ids: list[str], timeout: float = 15.0) -> dict[str, UsageRecord]:
    """The records of ``ids`` once the gateway's group commit has moved them all in."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        records = {i: r for i in ids if (r := store.get(i)) is not None}
        if len(records) == len(ids):
            return records
        time.sleep(0.1)
    raise AssertionError(f"not in the store: {sorted(set(ids) - set(records))}")


def test_requests_through_the_gateway_land_in_postgres(
    tmp_path: Path, postgres_url: str, upstream: UpstreamProcess
) -> None:
    database = fresh_database(postgres_url, "gateway_ledger")
    as_written = database.replace("postgresql+psycopg://", "postgres://")
    text = config(tmp_path, as_written, upstream)
    with running_gateway(tmp_path / "gateway", text, env={"UPSTREAM_KEY": KEY}) as gateway:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hello postgres"}])
        assert raw.parse().choices[0].message.content == "[pg] echo: hello postgres"
        with httpx.stream("POST", gateway.url + "/v1/chat/completions", timeout=30, json={
            "model": "chat", "stream": True,
            "messages": [{"role": "user", "content": "stream it"}],
        }) as streamed:
            assert streamed.status_code == 200
            assert streamed.read().endswith(b"data: [DONE]\n\n")
        unknown = httpx.post(gateway.url + "/v1/chat/completions", timeout=30, json={
            "model": "no\x00such", "messages": [{"role": "user", "content": "hi"}]})
        assert unknown.status_code == 404
        ids = [raw.headers["x-request-id"], streamed.headers["x-request-id"],
               unknown.headers["x-request-id"]]
        store = Store.open(database)  # another process reading while the gateway writes
        try:
            records = stored(store, ids)
        finally:
            store.close()
    plain, stream, missing = (records[i] for i in ids)
    assert (plain.model, plain.deployment, plain.provider) == ("chat", "pg-up", "openai")
    assert plain.status == 200 and not plain.stream and plain.region == "eu-west-1"
    assert plain.prompt_tokens > 0 and plain.completion_tokens > 0
    assert plain.cost_usd == pytest.approx(
        (plain.prompt_tokens * 1.0 + plain.completion_tokens * 2.0) / 1e6)
    assert stream.stream and stream.status == 200 and stream.finish_reason == "stop"
    assert missing.status == 404 and missing.deployment is None
    assert missing.model == "no\ufffdsuch"  # PostgreSQL's text holds no NUL
    store = Store.open(database)
    try:  # the gateway has stopped: every record in, nothing twice, the checkpoint moved
        assert store.count() == 3
        assert [r.id for r in store.tail(3)] == ids
        assert store.stats()["overall"]["status"] == {"2xx": 2, "4xx": 1}
    finally:
        store.close()
    assert not (tmp_path / "wal" / "rejected.jsonl").exists()
