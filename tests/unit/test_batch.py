"""The Batch API's pure parts: input file checks, lifecycle steps, batch room, batch prices."""

from __future__ import annotations

import json

import pytest

from inferplane.batch.jsonl import parse_input
from inferplane.batch.lifecycle import Lines, Share, Status, Step, next_step, room
from inferplane.batch.results import answered, request_id, unrun
from inferplane.batch.runner import default_share
from inferplane.config import DeploymentConfig
from inferplane.errors import InvalidRequest
from inferplane.metering.price_catalog import load_price_catalog
from inferplane.metering.prices import Price, Rates, Tier, token_cost_usd
from inferplane.protocol.types import Usage

URLS = ("/v1/chat/completions", "/v1/embeddings")


def line(custom_id: str, model: str = "m", **extra: object) -> bytes:
    return json.dumps({"custom_id": custom_id, "method": "POST",
                       "url": "/v1/chat/completions", "body": {"model": model},
                       **extra}).encode()


def allow(model: str) -> str | None:
    return None if model == "m" else f"not {model}"


def test_parse_input_skips_blank_lines_and_keeps_order() -> None:
    content = b"\xef\xbb\xbf" + line("a") + b"\n\n" + line("b") + b"\r\n"
    assert [x.custom_id for x in parse_input(content, URLS, allow, 5)] == ["a", "b"]


@pytest.mark.parametrize(("content", "needle"), [
    (line("a", model="x"), "Line 1 of the file: not x"),
    (line("") , "custom_id must be a non-empty string"),
    (b"[1]", "each line must be a JSON object"),
    (line("a", body=[]), "body must be a JSON object"),
    (line("a", body={"input": "x"}), "body.model must name a model"),
    (line("a") + b"\n" + line("b") + b"\n" + line("c"), "more than 2 requests"),
])
def test_parse_input_refusals(content: bytes, needle: str) -> None:
    with pytest.raises(InvalidRequest, match=needle) as caught:
        parse_input(content, URLS, allow, 2)
    assert caught.value.param == "file" and caught.value.status == 400


@pytest.mark.parametrize(("status", "lines", "now", "step"), [
    (Status.VALIDATING, Lines(pending=2), 0, Step.START),
    (Status.IN_PROGRESS, Lines(pending=2, claimed=1), 0, Step.RUN),
    (Status.IN_PROGRESS, Lines(pending=2), 100, Step.EXPIRE),
    (Status.IN_PROGRESS, Lines(claimed=2, done=1), 100, Step.WAIT),
    (Status.IN_PROGRESS, Lines(done=3), 0, Step.FINALIZE),
    (Status.CANCELLING, Lines(pending=2), 0, Step.CANCEL),
    (Status.CANCELLING, Lines(done=2), 0, Step.FINALIZE),
    (Status.FINALIZING, Lines(done=2), 0, Step.FINALIZE),
])
def test_next_step(status: Status, lines: Lines, now: float, step: Step) -> None:
    assert next_step(status, lines, now, 100.0) == step


def test_room_backs_off_for_interactive_requests_on_hosted_upstreams() -> None:
    hosted = [Share(4, 0, True), Share(2, 0, True)]
    assert room(hosted, 0) == 6
    busy = [Share(4, 3, True), Share(2, 2, True)]  # 5 in flight, 1 of them ours
    assert room(busy, 1) == 6 - 4 - 1
    assert room([Share(4, 10, True)], 0) == 0
    assert room([Share(0, 0, True)], 0) == 0  # a deployment that takes no batch work


def test_results_lines() -> None:
    ok = answered("batch_x", 3, "c", 200, {"id": "r"})
    assert ok["response"] == {"status_code": 200, "request_id": request_id("batch_x", 3),
                              "body": {"id": "r"}}
    assert ok["error"] is None
    gone = unrun("batch_x", 3, "c", "batch_expired")
    assert gone["response"] is None and gone["error"]["code"] == "batch_expired"
    assert gone["id"] == ok["id"]


def test_batch_price_halves_every_rate_and_tier() -> None:
    price = Price(Rates(2.0, 8.0, cached_input=0.5), (Tier(1000, Rates(4.0, 16.0)),),
                  batch_factor=0.5)
    batch = price.batch()
    assert batch is not None and batch.batch_factor is None
    for usage in (Usage(500, 100, cached_tokens=200), Usage(5000, 100)):
        assert token_cost_usd(batch, usage) == pytest.approx(token_cost_usd(price, usage) / 2)
    assert Price(Rates(1.0, 1.0)).batch() is None


@pytest.mark.parametrize(("vendor", "model"), [
    ("openai", "gpt-4o-mini"), ("anthropic", "claude-sonnet-4-5"), ("google", "gemini-2.5-flash"),
])
def test_the_catalog_has_the_vendors_batch_prices(vendor: str, model: str) -> None:
    entry = load_price_catalog().find(vendor, model)
    assert entry is not None
    assert entry.price.batch_factor == 0.5 and entry.price.batch_source.startswith("https://")


@pytest.mark.parametrize(("fields", "share"), [
    ({"provider": "llamacpp", "engine": {"parallel": 8}}, 1),
    ({"provider": "managed", "engine": {"kind": "vllm", "model": "m", "parallel": 16}}, 16),
    ({"provider": "openai", "base_url": "http://127.0.0.1:1/v1"}, 4),
])
def test_a_deployment_without_a_batch_share_gets_its_kind_s_default(
        fields: dict[str, object], share: int) -> None:
    deployment = DeploymentConfig.model_validate({"name": "d", "model": "m", **fields})
    assert default_share(deployment) == share
