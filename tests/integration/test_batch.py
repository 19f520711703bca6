"""The Batch API through the official openai SDK, against a gateway in front of a fake OpenAI
upstream: upload, create, poll, download, errors file, cancel, list, tenant scoping, invalid
files, and batch prices in the ledger. The embedded engine's round trip and a gateway killed
mid-batch are in test_batch_engine.py and test_batch_restart.py."""

from __future__ import annotations

import io
import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import sqlalchemy as sa

from inferplane.metering.price_catalog import load_price_catalog
from inferplane.metering.prices import token_cost_usd
from inferplane.protocol.types import Usage
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

UPSTREAM_KEY = "sk-upstream-batch-7788"


@dataclass
class Setup:
    gateway: GatewayProc
    upstream: UpstreamProcess
    slow: UpstreamProcess
    acme: str  # a key of tenant acme (every model)
    globex: str  # a key of tenant globex, which may use only "chat"

    def client(self, key: str | None = None) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=key or self.acme,
                             max_retries=0)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        engine = sa.create_engine(f"sqlite:///{self.gateway.db}")
        try:
            with engine.connect() as c:
                return [dict(r) for r in c.execute(sa.text(sql), params).mappings()]
        finally:
            engine.dispose()


def config(root: Path, upstream: UpstreamProcess, slow: UpstreamProcess) -> str:
    hosted = "provider: openai, api_key: 'env:UPSTREAM_KEY', vendor: openai"
    return (
        ledger_yaml(root)
        + "batch: {max_file_bytes: 65536, max_lines: 50, poll_interval_s: 0.1}\n"
        "models:\n  - name: chat\n  - name: slow\n  - name: emb\n"
        "deployments:\n"
        f"  - {{name: chat-up, model: chat, {hosted}, base_url: '{upstream.url}/v1',"
        " upstream_model: gpt-4o-mini}\n"
        f"  - {{name: slow-up, model: slow, {hosted}, base_url: '{slow.url}/v1',"
        " upstream_model: gpt-4o-mini, batch: {max_concurrency: 1}}\n"
        f"  - {{name: emb-up, model: emb, {hosted}, base_url: '{upstream.url}/v1',"
        " upstream_model: text-embedding-3-small}\n"
    )


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("batch")
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamProcess("batch", api_key=UPSTREAM_KEY))
        slow = stack.enter_context(UpstreamProcess("slow", api_key=UPSTREAM_KEY,
                                                   args=["--think-ms", "400"]))
        path = root / "inferplane.yaml"
        path.write_text(config(root, upstream, slow))

        def key(*args: str) -> str:
            return subprocess.run(
                [str(BIN / "inferplane"), "keys", "create", *args, "--config", str(path)],
                capture_output=True, text=True, check=True, cwd=root).stdout.strip()

        acme, globex = key("--tenant", "acme"), key("--tenant", "globex", "--models", "chat")
        gateway = stack.enter_context(running_gateway(
            root, path.read_text(), env={"UPSTREAM_KEY": UPSTREAM_KEY}))
        yield Setup(gateway, upstream, slow, acme, globex)


def jsonl(*lines: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def chat_line(custom_id: str, model: str = "chat", **body: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "max_tokens": 8,
                     "messages": [{"role": "user", "content": f"say {custom_id}"}], **body}}


def upload(client: openai.OpenAI, content: bytes) -> str:
    return client.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch").id


def wait(client: openai.OpenAI, batch_id: str, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in ("completed", "failed", "expired", "cancelled"):
            return batch
        time.sleep(0.1)
    raise AssertionError(f"batch {batch_id} still {batch.status}")


def lines_of(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    assert file_id is not None
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_round_trip_priced_at_the_batch_price(setup: Setup) -> None:
    client = setup.client()
    file_id = upload(client, jsonl(*(chat_line(f"req-{i}") for i in range(6))))
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.request_counts is not None
    assert batch.status == "validating" and batch.request_counts.total == 6
    assert batch.metadata == {"job": "nightly"}
    done = wait(client, batch.id)
    assert done.status == "completed", done
    assert (done.request_counts.completed, done.request_counts.failed) == (6, 0)
    assert done.error_file_id is None and done.completed_at is not None
    out = lines_of(client, done.output_file_id)
    assert sorted(line["custom_id"] for line in out) == [f"req-{i}" for i in range(6)]
    for line in out:
        assert line["error"] is None and line["response"]["status_code"] == 200
        body = line["response"]["body"]
        assert body["object"] == "chat.completion"
        assert line["custom_id"] in body["choices"][0]["message"]["content"]
    # one ledger record per line, under its request id, at half the list price
    ids = {line["response"]["request_id"] for line in out}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        rows = setup.rows("SELECT * FROM usage_records WHERE batch_id = :b", b=batch.id)
        if len(rows) == 6:
            break
        time.sleep(0.1)
    assert {r["id"] for r in rows} == ids
    entry = load_price_catalog().find("openai", "gpt-4o-mini")
    assert entry is not None and entry.price.batch_factor == 0.5
    for row in rows:
        usage = Usage(row["prompt_tokens"], row["completion_tokens"])
        full = token_cost_usd(entry.price, usage)
        assert full > 0 and row["cost_usd"] == pytest.approx(full / 2)
        assert row["tenant"] == "acme" and row["status"] == 200


def test_failed_lines_go_to_the_error_file(setup: Setup) -> None:
    client = setup.client()
    file_id = upload(client, jsonl(chat_line("good"), chat_line("bad", temperature=9),
                                   chat_line("also-good")))
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    done = wait(client, batch.id)
    assert done.status == "completed"
    assert (done.request_counts.completed, done.request_counts.failed) == (2, 1)
    assert [line["custom_id"] for line in lines_of(client, done.output_file_id)] == [
        "good", "also-good"]
    [bad] = lines_of(client, done.error_file_id)
    assert bad["custom_id"] == "bad" and bad["response"]["status_code"] == 400
    assert bad["response"]["body"]["error"]["param"] == "temperature"


def test_embeddings_batch(setup: Setup) -> None:
    client = setup.client()
    lines = [{"custom_id": f"e{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "emb", "input": f"text {i}"}} for i in range(3)]
    batch = client.batches.create(input_file_id=upload(client, jsonl(*lines)),
                                  endpoint="/v1/embeddings", completion_window="24h")
    done = wait(client, batch.id)
    out = lines_of(client, done.output_file_id)
    assert [line["custom_id"] for line in out] == ["e0", "e1", "e2"]
    assert all(line["response"]["body"]["data"][0]["embedding"] for line in out)


def test_responses_batch(setup: Setup) -> None:
    client = setup.client()
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/responses",
              "body": {"model": "chat", "input": f"say r{i}", "max_output_tokens": 8}}
             for i in range(2)]
    batch = client.batches.create(input_file_id=upload(client, jsonl(*lines)),
                                  endpoint="/v1/responses", completion_window="24h")
    done = wait(client, batch.id)
    out = lines_of(client, done.output_file_id)
    assert [line["custom_id"] for line in out] == ["r0", "r1"]
    for line in out:
        body = line["response"]["body"]
        assert body["object"] == "response" and body["status"] == "completed"
        assert body["id"] == line["response"]["request_id"]
        assert line["custom_id"] in body["output"][0]["content"][0]["text"]
    # stored like any response: retrievable by its id
    assert client.responses.retrieve(out[0]["response"]["body"]["id"]).status == "completed"


def test_a_line_for_another_endpoint_fails_the_batch(setup: Setup) -> None:
    client = setup.client()
    lines = [chat_line("c"), {"custom_id": "e", "method": "POST", "url": "/v1/embeddings",
                              "body": {"model": "emb", "input": "x"}}]
    batch = client.batches.create(input_file_id=upload(client, jsonl(*lines)),
                                  endpoint="/v1/chat/completions", completion_window="24h")
    assert batch.status == "failed" and batch.errors is not None and batch.errors.data
    assert batch.errors.data[0].line == 2 and batch.errors.data[0].code == "invalid_url"


def test_cancel(setup: Setup) -> None:
    client = setup.client()
    file_id = upload(client, jsonl(*(chat_line(f"s{i}", model="slow") for i in range(12))))
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    time.sleep(0.6)  # one line at a time (batch.max_concurrency 1), 0.4 s each
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    done = wait(client, batch.id)
    assert done.status == "cancelled" and done.cancelled_at is not None
    counts = done.request_counts
    assert counts.total == 12 and counts.completed + counts.failed == 12
    assert 1 <= counts.completed < 12
    unrun = lines_of(client, done.error_file_id)
    assert len(unrun) == counts.failed
    assert all(line["error"]["code"] == "batch_cancelled" and line["response"] is None
               for line in unrun)
    assert len(lines_of(client, done.output_file_id)) == counts.completed
    # a finished batch stays as it is
    assert client.batches.cancel(batch.id).status == "cancelled"


def test_past_its_window_a_batch_expires(setup: Setup) -> None:
    client = setup.client()
    file_id = upload(client, jsonl(*(chat_line(f"x{i}", model="slow") for i in range(10))))
    batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h")
    time.sleep(0.6)
    engine = sa.create_engine(f"sqlite:///{setup.gateway.db}")  # the window ends now
    with engine.begin() as c:
        c.execute(sa.text("UPDATE batches SET expires_at = 0 WHERE id = :b"), {"b": batch.id})
    engine.dispose()
    done = wait(client, batch.id)
    assert done.status == "expired" and done.expired_at is not None
    counts = done.request_counts
    assert counts.completed + counts.failed == 10 and counts.failed >= 1
    expired = lines_of(client, done.error_file_id)
    assert len(expired) == counts.failed
    assert {line["error"]["code"] for line in expired} == {"batch_expired"}
    if counts.completed:  # what ran before the window ended is returned
        assert len(lines_of(client, done.output_file_id)) == counts.completed


def test_list_pages_newest_first(setup: Setup) -> None:
    client = setup.client(setup.globex)
    file_id = upload(client, jsonl(chat_line("x")))
    made = [client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                  completion_window="24h").id for _ in range(3)]
    first = client.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2] and first.has_more
    rest = client.batches.list(limit=2, after=first.data[-1].id)
    assert [b.id for b in rest.data] == made[:1]
    assert [b.id for b in client.batches.list()] == made[::-1]  # the SDK pages through
    listed = client.files.list()
    assert file_id in [f.id for f in listed]


def test_tenants_see_only_their_own(setup: Setup) -> None:
    acme, globex = setup.client(), setup.client(setup.globex)
    file_id = upload(acme, jsonl(chat_line("mine")))
    batch = acme.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                completion_window="24h")
    for call in (lambda: globex.batches.retrieve(batch.id),
                 lambda: globex.batches.cancel(batch.id),
                 lambda: globex.files.retrieve(file_id),
                 lambda: globex.files.content(file_id),
                 lambda: globex.files.delete(file_id),
                 lambda: globex.batches.create(input_file_id=file_id,
                                               endpoint="/v1/chat/completions",
                                               completion_window="24h")):
        with pytest.raises(openai.NotFoundError):
            call()
    assert batch.id not in [b.id for b in globex.batches.list()]
    assert file_id not in [f.id for f in globex.files.list()]
    assert acme.files.retrieve(file_id).bytes == len(jsonl(chat_line("mine")))
    wait(acme, batch.id)
    assert acme.files.delete(file_id).deleted
    with pytest.raises(openai.NotFoundError):
        acme.files.retrieve(file_id)


@pytest.mark.parametrize(("content", "needle"), [
    (b"{not json}\n", "Line 1 of the file: not valid JSON"),
    (jsonl(chat_line("a"), chat_line("a")), "custom_id 'a' is already on line 1"),
    (jsonl({**chat_line("a"), "url": "/v1/images"}), "the url '/v1/images' is not one"),
    (jsonl({**chat_line("a"), "method": "GET"}), 'the method must be "POST"'),
    (jsonl(chat_line("a", model="nope")), "the model 'nope' does not exist"),
    (jsonl(chat_line("a", model="emb")), "may not use the model 'emb'"),  # globex: chat only
    (jsonl(chat_line("a", stream=True)), "cannot stream"),
    (b"\n\n", "holds no requests"),
    (jsonl(*(chat_line(f"n{i}") for i in range(51))), "more than 50 requests"),
])
def test_invalid_files_are_400s(setup: Setup, content: bytes, needle: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        upload(setup.client(setup.globex), content)
    assert needle in caught.value.message
    assert caught.value.status_code == 400


def test_upload_limits_and_bad_requests(setup: Setup) -> None:
    client = setup.client()
    with pytest.raises(openai.APIStatusError) as caught:
        upload(client, b" " * 70_000)
    assert caught.value.status_code == 413 and "batch.max_file_bytes" in caught.value.message
    boundary = "b0undary"
    head = (f"--{boundary}\r\ncontent-disposition: form-data; name=\"purpose\"\r\n\r\nbatch"
            f"\r\n--{boundary}\r\ncontent-disposition: form-data; name=\"file\"; "
            "filename=\"big.jsonl\"\r\ncontent-type: application/jsonl\r\n\r\n").encode()

    def chunked() -> Iterator[bytes]:  # no content-length: the limit holds while reading
        yield head
        for _ in range(40):
            yield b" " * 4096

    r = httpx.post(setup.gateway.url + "/v1/files", content=chunked(), timeout=30,
                   headers={"authorization": f"Bearer {setup.acme}",
                            "content-type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    with pytest.raises(openai.BadRequestError, match="purpose"):
        client.files.create(file=("x.jsonl", io.BytesIO(jsonl(chat_line("a")))),
                            purpose="fine-tune")
    file_id = upload(client, jsonl(chat_line("a")))
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                              completion_window="1h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        client.batches.create(input_file_id=file_id, endpoint="/v1/completions",
                              completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.create(input_file_id="file-none", endpoint="/v1/chat/completions",
                              completion_window="24h")
    with pytest.raises(openai.NotFoundError):
        client.batches.retrieve("batch_none")
    r = httpx.get(setup.gateway.url + "/v1/batches", params={"limit": "0"},
                  headers={"authorization": f"Bearer {setup.acme}"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "limit"
