"""Routing across several real upstream servers: policies, residency, retries, fallbacks, the
circuit breaker and mid-stream failures, driven through the gateway with the openai SDK."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.upstream.process import UpstreamProcess, upstreams

from .gateway_proc import GatewayProc, ledger_yaml, running_gateway

KEY = "sk-upstream-secret-1234"


def deployment(name: str, model: str, up: UpstreamProcess, extra: str = "") -> str:
    return (f"  - {{name: {name}, model: {model}, provider: openai, base_url: '{up.url}/v1', "
            f"api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1{extra}}}\n")


def config(root: Path, ups: list[UpstreamProcess]) -> str:
    up1, up2, up3, slow = ups
    return (
        ledger_yaml(root)
        + "breaker: {window: 8, min_requests: 4, error_threshold: 0.5, cooldown_s: 1.0}\n"
        "models:\n"
        "  - name: chat\n"
        "    routing: {policy: cost, fallbacks: [backup],\n"
        "              retry: {max_attempts: 3, per_deployment: 2, backoff_base_s: 0.05}}\n"
        "  - name: backup\n"
        "  - name: primary\n    routing: {fallbacks: [backup], retry: {backoff_base_s: 0.01}}\n"
        "  - name: spread\n    routing: {policy: weighted}\n"
        "  - name: affinity\n    routing: {policy: prefix-affinity}\n"
        "  - name: green\n    routing: {policy: carbon}\n"
        "  - name: fast\n    routing: {policy: latency}\n"
        "  - name: eu-only\n    routing: {residency: [eu]}\n"
        "  - name: flaky\n    routing: {policy: cost, retry: {max_attempts: 1}}\n"
        "  - name: impatient\n    routing: {retry: {backoff_base_s: 0.01}}\n"
        "deployments:\n"
        + deployment("cheap-us", "chat", up1, ", region: us-east-1, jurisdiction: us, "
                     "price: {input_per_mtok: 0.1, output_per_mtok: 0.4, "
                     "cached_input_per_mtok: 0.05}")
        + deployment("pricey-eu", "chat", up2, ", region: eu-west-1, jurisdiction: eu, "
                     "price: {input_per_mtok: 1.0, output_per_mtok: 4.0}")
        + deployment("backup-1", "backup", up3, ", price: {input_per_mtok: 2, output_per_mtok: 8}")
        + deployment("primary-1", "primary", up1)
        + deployment("w-heavy", "spread", up1, ", weight: 3")
        + deployment("w-light", "spread", up2, ", weight: 1")
        + deployment("a-1", "affinity", up1)
        + deployment("a-2", "affinity", up2)
        + deployment("a-3", "affinity", up3)
        + deployment("dirty", "green", up1, ", energy: {joules_per_token: 0.5, "
                     "grid_gco2_per_kwh: 700}")
        + deployment("clean", "green", up2, ", energy: {joules_per_token: 0.5, "
                     "grid_gco2_per_kwh: 30}")
        + deployment("quick", "fast", up1)
        + deployment("sluggish", "fast", slow)
        + deployment("eu-1", "eu-only", up2, ", region: eu-west-1, jurisdiction: eu")
        + deployment("us-1", "eu-only", up1, ", region: us-east-1, jurisdiction: us")
        + deployment("flaky-1", "flaky", up3)
        + deployment("impatient-1", "impatient", up3,
                     ", timeouts: {first_token_s: 0.5, idle_s: 0.5}")
    )


@pytest.fixture(scope="module")
def ups() -> Iterator[list[UpstreamProcess]]:
    with upstreams(3, api_key=KEY, args=["--cached-tokens", "2", "--reasoning-tokens", "3"]
                   ) as three, UpstreamProcess("slow", api_key=KEY,
                                               args=["--think-ms", "150"]) as slow:
        yield [*three, slow]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, ups: list[UpstreamProcess]
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("routing"))
    with running_gateway(root, config(root, ups), env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(ups: list[UpstreamProcess]) -> None:
    for up in ups:
        up.reset()


@pytest.fixture
def client(gateway: GatewayProc) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


def chat(client: openai.OpenAI, model: str, text: str = "hello there", **kw: Any
         ) -> tuple[str, Mapping[str, str]]:
    raw = client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **kw)
    completion = raw.parse()
    return completion.choices[0].message.content or "", raw.headers


def raw_stream(gateway: GatewayProc, model: str, text: str) -> tuple[str, list[str]]:
    """A streamed chat read as raw SSE (an SDK hides the error event): its request id and
    the data of each event."""
    with httpx.stream("POST", gateway.url + "/v1/chat/completions", json={
        "model": model, "stream": True, "messages": [{"role": "user", "content": text}],
    }, timeout=30) as response:
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
        return response.headers["x-request-id"], events


def served_by(headers: Mapping[str, str]) -> str:
    return headers["x-inferplane-deployment"]


# -- translation through an OpenAI-compatible upstream ------------------------------------------

def test_chat_reaches_the_upstream_with_its_key_and_model(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    text, headers = chat(client, "chat", "what is routing", max_tokens=50)
    assert text == "[up1] echo: what is routing"
    assert served_by(headers) == "cheap-us" and headers["x-inferplane-attempts"] == "1"
    seen = ups[0].requests()[-1]
    assert seen["auth_ok"] and seen["body"]["model"] == "echo-1"
    assert KEY not in json.dumps(seen["headers"])
    record = gateway.ledger_row(headers["x-request-id"])
    assert record["deployment"] == "cheap-us" and record["region"] == "us-east-1"
    assert record["cached_tokens"] == 2 and record["reasoning_tokens"] == 3
    fresh_prompt = record["prompt_tokens"] - 2
    assert record["cost_usd"] == pytest.approx(
        (fresh_prompt * 0.1 + 2 * 0.05 + record["completion_tokens"] * 0.4) / 1e6)
    assert record["routing_policy"] == "cost"
    assert json.loads(record["routing_reason"])["decisions"][0]["order"][0] == "cheap-us"
    assert KEY not in gateway.log.read_text()


def test_stream_with_usage_details(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "count to three"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "[up1] echo: count to three"
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 2
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 3


TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "lookup", "description": "Look a word up",
    "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_call_round_trip(client: openai.OpenAI, stream: bool) -> None:
    messages: list[Any] = [{"role": "user", "content": "define gateway"}]
    if stream:
        chunks = list(client.chat.completions.create(
            model="chat", messages=messages, tools=TOOLS, stream=True))
        calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
        call_id, name = calls[0].id, calls[0].function.name  # type: ignore[union-attr]
        arguments = "".join(tc.function.arguments or "" for tc in calls)  # type: ignore[union-attr]
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        reply = client.chat.completions.create(model="chat", messages=messages, tools=TOOLS)
        call = reply.choices[0].message.tool_calls[0]  # type: ignore[index]
        call_id, name = call.id, call.function.name  # type: ignore[union-attr]
        arguments = call.function.arguments  # type: ignore[union-attr]
        finish = reply.choices[0].finish_reason
    assert finish == "tool_calls" and name == "lookup" and call_id
    assert json.loads(arguments) == {"echo": "define gateway"}
    messages += [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": name, "arguments": arguments}}]},
        {"role": "tool", "tool_call_id": call_id, "content": "a thing in the middle"},
    ]
    final = client.chat.completions.create(model="chat", messages=messages, tools=TOOLS)
    assert final.choices[0].message.content == "[up1] tool result: a thing in the middle"


def test_embeddings(client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="chat", input=["one", "two words"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 1536
    assert result.usage.prompt_tokens > 0


def test_upstream_client_error_passes_through_without_retry(
        client: openai.OpenAI, ups: list[UpstreamProcess]) -> None:
    ups[0].add_faults({"kind": "status", "status": 400, "message": "bad temperature"})
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, "chat")
    assert "bad temperature" in info.value.message
    assert len(ups[0].requests()) == 1 and not ups[1].requests()


# -- policies -----------------------------------------------------------------------------------

def test_weighted_spreads_by_weight(client: openai.OpenAI) -> None:
    counts = Counter(served_by(chat(client, "spread")[1]) for _ in range(40))
    assert set(counts) == {"w-heavy", "w-light"}
    assert counts["w-heavy"] > counts["w-light"]


def test_prefix_affinity_keeps_a_prefix_on_one_replica(client: openai.OpenAI) -> None:
    served: dict[int, set[str]] = {}
    for prefix in range(4):
        shared = f"document {prefix} " + "lorem ipsum dolor sit amet " * 60
        for question in range(3):
            served.setdefault(prefix, set()).add(
                served_by(chat(client, "affinity", shared + f" question {question}")[1]))
    assert all(len(names) == 1 for names in served.values())  # one replica per prefix
    assert len(set().union(*served.values())) >= 2  # and prefixes spread over replicas


def test_carbon_prefers_the_cleaner_grid(client: openai.OpenAI) -> None:
    assert {served_by(chat(client, "green")[1]) for _ in range(3)} == {"clean"}


def test_latency_learns_the_faster_deployment(client: openai.OpenAI) -> None:
    for _ in range(4):  # both get measured
        chat(client, "fast")
    assert {served_by(chat(client, "fast")[1]) for _ in range(4)} == {"quick"}


# -- residency and price caps -------------------------------------------------------------------

def test_residency_header_keeps_the_request_in_the_region(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    _, headers = chat(client, "chat", extra_headers={"x-inferplane-residency": "eu"})
    assert served_by(headers) == "pricey-eu"  # the cheap one is in the US
    assert gateway.ledger_row(headers["x-request-id"])["region"] == "eu-west-1"


def test_residency_is_never_violated_even_when_the_region_fails(
        client: openai.OpenAI, ups: list[UpstreamProcess]) -> None:
    ups[1].add_faults({"kind": "status", "status": 503, "count": -1})
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, "eu-only")
    assert info.value.status_code == 503
    assert not ups[0].requests()  # the US deployment was never tried
    ups[1].clear_faults()


def test_unsatisfiable_residency_is_a_clear_403(client: openai.OpenAI) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        chat(client, "chat", extra_headers={"x-inferplane-residency": "apac"})
    body: Any = info.value.body
    assert body["code"] == "residency_unsatisfiable"
    assert "apac" in body["message"]


def test_price_cap(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(client, "backup", max_tokens=1000,
             extra_headers={"x-inferplane-max-price-usd": "0.000001"})
    assert info.value.code == "price_cap_exceeded"


# -- retries, fallbacks, breaker ----------------------------------------------------------------

def test_429_is_retried_after_retry_after(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[0].add_faults({"kind": "status", "status": 429, "retry_after": 0.3})
    began = time.monotonic()
    text, headers = chat(client, "chat")
    assert time.monotonic() - began >= 0.3  # Retry-After honoured
    assert text.startswith("[up1]") and headers["x-inferplane-attempts"] == "2"
    attempts = json.loads(gateway.ledger_row(headers["x-request-id"])["attempts"])
    assert [a["outcome"] for a in attempts] == ["error", "ok"]
    assert attempts[0]["upstream_status"] == 429


def test_fallback_alias_serves_when_every_deployment_fails(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[0].add_faults({"kind": "status", "status": 500, "count": -1})
    text, headers = chat(client, "primary")
    ups[0].clear_faults()
    assert text.startswith("[up3]") and served_by(headers) == "backup-1"
    record = gateway.ledger_row(headers["x-request-id"])
    attempts = json.loads(record["attempts"])
    assert [a["deployment"] for a in attempts] == ["primary-1", "primary-1", "backup-1"]
    assert [a.get("upstream_status") for a in attempts] == [500, 500, None]


def test_timeouts_and_broken_bodies_move_to_the_next_deployment(
        client: openai.OpenAI, ups: list[UpstreamProcess]) -> None:
    ups[0].add_faults({"kind": "malformed_json"}, {"kind": "malformed_json"})
    _, headers = chat(client, "chat")
    assert served_by(headers) == "pricey-eu" and headers["x-inferplane-attempts"] == "3"


def test_breaker_opens_then_probes_and_closes(
        client: openai.OpenAI, ups: list[UpstreamProcess]) -> None:
    ups[2].add_faults({"kind": "status", "status": 503, "count": -1})
    for _ in range(4):  # min_requests failures open it
        with pytest.raises(openai.APIStatusError):
            chat(client, "flaky")
    tried = len(ups[2].requests())
    with pytest.raises(openai.APIStatusError) as info:
        chat(client, "flaky")  # open: refused without reaching the upstream
    assert info.value.status_code == 503 and "circuit open" in info.value.message
    assert len(ups[2].requests()) == tried
    ups[2].clear_faults()
    time.sleep(1.1)  # cooldown: the next request is a probe, and it succeeds
    assert chat(client, "flaky")[0].startswith("[up3]")
    assert chat(client, "flaky")[0].startswith("[up3]")  # closed again


def test_mid_stream_reset_ends_the_stream_with_an_error_and_a_record(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[0].add_faults({"kind": "reset_mid_stream", "after_chunks": 2})
    request_id, events = raw_stream(gateway, "chat", "a long answer please now")
    assert events[-1] != "[DONE]"
    error = json.loads(events[-1])["error"]
    assert error["code"] == "upstream_disconnected"
    record = gateway.ledger_row(request_id)
    assert record["status"] == 502 and record["error_type"] == "upstream_disconnected"
    assert not ups[1].requests()  # bytes had reached the client: no retry elsewhere


def test_an_error_chunk_before_any_content_is_retried(
        ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    """The relayed stream's first chunk is read before the client's response starts: an error
    there is a failed attempt like any other, and the next one serves the client."""
    ups[0].add_faults({"kind": "stream_error", "after_chunks": 0, "protocol": "openai"})
    request_id, events = raw_stream(gateway, "primary", "try again")
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content") or ""
                   for e in events[:-1]) == "[up1] echo: try again"
    record = gateway.ledger_row(request_id)
    assert record["status"] == 200
    assert [a["outcome"] for a in json.loads(record["attempts"])] == ["error", "ok"]


def test_an_error_chunk_after_content_ends_the_stream_with_it(
        ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[0].add_faults({"kind": "stream_error", "after_chunks": 2, "protocol": "openai"})
    request_id, events = raw_stream(gateway, "primary", "a long answer please now")
    assert json.loads(events[0])["choices"][0]["delta"]["role"] == "assistant"
    assert json.loads(events[1])["choices"][0]["delta"]["content"] == "[up1]"  # before it
    assert "error" in json.loads(events[-1]) and len(events) == 3
    record = gateway.ledger_row(request_id)
    assert record["status"] >= 500
    assert len(json.loads(record["attempts"])) == 1  # bytes had reached the client: no retry


def test_a_slow_first_token_times_out_and_is_retried(
        client: openai.OpenAI, ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[2].add_faults({"kind": "slow_first_token", "delay_ms": 3000})
    began = time.monotonic()
    text, headers = chat(client, "impatient")
    assert text.startswith("[up3]") and headers["x-inferplane-attempts"] == "2"
    assert time.monotonic() - began < 2.5  # gave up on the slow attempt after 0.5 s
    attempts = json.loads(gateway.ledger_row(headers["x-request-id"])["attempts"])
    assert attempts[0]["error"] == "upstream_timeout"


def test_a_stalled_stream_ends_with_a_timeout_event(
        ups: list[UpstreamProcess], gateway: GatewayProc) -> None:
    ups[2].add_faults({"kind": "hang", "after_chunks": 2})
    request_id, events = raw_stream(gateway, "impatient", "one two three four five")
    assert json.loads(events[-1])["error"]["code"] == "upstream_timeout"
    assert gateway.ledger_row(request_id)["status"] == 504
