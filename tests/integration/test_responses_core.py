"""The Responses core without HTTP (what a batch runner calls): a started gateway in this
process, a real upstream process behind it. The answer, its stored copy and exactly one ledger
record per call, a refusal included."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from inferplane.api.responses_core import respond_as
from inferplane.config import load_config
from inferplane.errors import InvalidRequest, NotFound
from inferplane.gateway import Gateway
from inferplane.providers.base import provider_names
from inferplane.responses.store import OPEN_TENANT
from inferplane.tenancy.records import OPEN
from tests.upstream.process import UpstreamProcess

from .gateway_proc import ledger_yaml


async def test_respond_as_answers_stores_and_records_each_call_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "k")
    with UpstreamProcess("up", api_key="k") as up:
        path = tmp_path / "inferplane.yaml"
        path.write_text(ledger_yaml(tmp_path) + "models: [{name: oa}]\ndeployments:\n"
                        f"  - {{name: oa-1, model: oa, provider: openai, base_url: '{up.url}/v1',"
                        " api_key: 'env:UPSTREAM_KEY'}\n")
        gateway = Gateway(load_config(path, known_providers=provider_names()))
        await gateway.start()
        try:
            first = await respond_as(gateway, OPEN, {"model": "oa", "input": "Hello batch"})
            second = await respond_as(gateway, OPEN, {
                "model": "oa", "input": "And again", "previous_response_id": first["id"]},
                response_id="resp_batch_line_2")
            with pytest.raises(InvalidRequest) as refused:
                await respond_as(gateway, OPEN, {"model": "oa", "input": "x", "stream": True},
                                 response_id="resp_batch_line_3")
            with pytest.raises(NotFound):
                await respond_as(gateway, OPEN, {"model": "oa", "input": "x",
                                                 "previous_response_id": "resp_nope"},
                                 response_id="resp_batch_line_4")
            stored = gateway.responses.get(OPEN_TENANT, second["id"], time.time())
        finally:
            await gateway.stop()
        sent = str(up.requests()[-1]["body"]["messages"])
    assert first["output"][0]["content"][0]["text"] == "[up] echo: Hello batch"
    assert second["id"] == "resp_batch_line_2" and second["previous_response_id"] == first["id"]
    assert refused.value.param == "stream"
    assert stored is not None and stored.response == second
    assert "Hello batch" in sent  # the chain reached the upstream
    engine = sa.create_engine(f"sqlite:///{tmp_path}/ledger.db")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, endpoint, status FROM usage_records")).all()
    engine.dispose()
    assert sorted(rows) == sorted([(first["id"], "responses", 200),
                                   ("resp_batch_line_2", "responses", 200),
                                   ("resp_batch_line_3", "responses", 400),
                                   ("resp_batch_line_4", "responses", 404)])
