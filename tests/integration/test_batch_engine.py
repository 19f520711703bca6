"""A batch on the embedded engine (gemma-3-270m), through the openai SDK: the lines run at
batch priority beside an interactive stream, each with its ledger record."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import openai

from .gateway_proc import running_gateway


def test_engine_batch_round_trip(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as gateway:
        client = openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)
        lines = [{"custom_id": f"q{i}", "method": "POST", "url": "/v1/chat/completions",
                  "body": {"model": "default", "max_tokens": 8, "temperature": 0,
                           "messages": [{"role": "user", "content": f"Count to {i + 2}."}]}}
                 for i in range(6)]
        content = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
        file_id = client.files.create(file=("in.jsonl", io.BytesIO(content)),
                                      purpose="batch").id
        batch = client.batches.create(input_file_id=file_id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        # an interactive stream while the batch runs is served, not queued behind it
        stream = client.chat.completions.create(
            model="default", max_tokens=8, stream=True,
            messages=[{"role": "user", "content": "Say hello."}])
        assert any(chunk.choices and chunk.choices[0].delta.content for chunk in stream)
        deadline = time.monotonic() + 120
        while (done := client.batches.retrieve(batch.id)).status != "completed":
            assert time.monotonic() < deadline, done.status
            time.sleep(0.2)
        assert done.request_counts is not None and done.request_counts.completed == 6
        assert done.output_file_id is not None
        out = [json.loads(x)
               for x in client.files.content(done.output_file_id).text.splitlines()]
        assert sorted(x["custom_id"] for x in out) == [f"q{i}" for i in range(6)]
        for x in out:
            body = x["response"]["body"]
            assert body["usage"]["completion_tokens"] >= 1
            row = gateway.ledger_row(x["response"]["request_id"])
            assert row["batch_id"] == batch.id and row["deployment"] == "local-gemma"
            assert row["cost_usd"] > 0  # the hardware's hourly price; no batch price here
