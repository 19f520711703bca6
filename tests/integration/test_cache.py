"""The exact response cache with real processes: a gateway in front of a fake upstream, two
tenants' keys, the official openai and anthropic SDKs, the admin API and the CLI; then two
gateway processes sharing one Redis cache."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from tests.services import running_redis
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

UPSTREAM_KEY = "sk-upstream-cache"
PRICE = "price: {input_per_mtok: 1000, output_per_mtok: 1000}"
CACHE = "x-inferplane-cache"


def deployment(name: str, model: str, up: UpstreamProcess, provider: str = "openai") -> str:
    base = f"{up.url}/v1" if provider == "openai" else up.url
    return (f"  - {{name: {name}, model: {model}, provider: {provider}, base_url: '{base}', "
            f"api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1, {PRICE}}}\n")


@dataclass
class Setup:
    gateway: GatewayProc
    up: UpstreamProcess
    keys: dict[str, str]  # acme, zeta (inference), ops (admin)

    def oai(self, tenant: str = "acme") -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=self.keys[tenant],
                             max_retries=0)

    def claude(self, tenant: str = "acme") -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=self.keys[tenant],
                                   max_retries=0)

    def chat(self, content: str, *, tenant: str = "acme", model: str = "oa",
             headers: dict[str, str] | None = None, **extra: Any) -> httpx.Response:
        body = {"model": model, "temperature": 0, "max_tokens": 64,
                "messages": [{"role": "user", "content": content}], **extra}
        return httpx.post(self.gateway.url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"authorization": f"Bearer {self.keys[tenant]}",
                                   **(headers or {})})

    def upstream_calls(self) -> int:
        return len(self.up.requests())

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "inferplane"), "cache", *args, "--config", str(self.gateway.config),
             "--url", self.gateway.url, "--key", self.keys["ops"]],
            capture_output=True, text=True, timeout=60, check=False)


def make_keys(gateway: GatewayProc) -> dict[str, str]:
    def create(tenant: str, *extra: str) -> str:
        done = subprocess.run(
            [str(BIN / "inferplane"), "keys", "create", "--tenant", tenant, *extra,
             "--config", str(gateway.config)], capture_output=True, text=True, timeout=60,
            check=True)
        return done.stdout.strip()

    keys = {"acme": create("acme"), "zeta": create("zeta"),
            "limited": create("acme", "--rpm", "3"),
            "ops": create("ops", "--scopes", "admin,inference")}
    time.sleep(0.5)  # every process sees the keys within tenancy.poll_interval_ms
    return keys


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = Path(tmp_path_factory.mktemp("cache"))
    with UpstreamProcess("up", api_key=UPSTREAM_KEY) as up:
        text = (
            ledger_yaml(root) + "tenancy: {poll_interval_ms: 100}\n"
            "models:\n"
            "  - {name: oa, aliases: [oa-alias], cache: {ttl_s: 600},\n"
            "     routing: {retry: {max_attempts: 1}}}\n"
            "  - {name: an, cache: {}}\n"
            "  - {name: short, cache: {ttl_s: 1}}\n"
            "  - {name: plain}\n"
            "deployments:\n" + deployment("oa-1", "oa", up)
            + deployment("an-1", "an", up, "anthropic") + deployment("short-1", "short", up)
            + deployment("plain-1", "plain", up)
        )
        with running_gateway(root, text, env={"UPSTREAM_KEY": UPSTREAM_KEY}) as gateway:
            yield Setup(gateway, up, make_keys(gateway))


@pytest.fixture(autouse=True)
def fresh(setup: Setup) -> None:
    setup.up.reset()


def test_a_repeated_request_is_answered_from_the_cache_and_accounted(setup: Setup) -> None:
    first = setup.chat("what is a lighthouse")
    time.sleep(0.1)  # the entry is stored off the request's path
    second = setup.chat("what is a lighthouse")
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "hit-exact")
    assert second.json()["choices"][0]["message"]["content"] == "[up] echo: what is a lighthouse"
    assert second.json()["usage"] == first.json()["usage"]
    assert second.json()["id"] != first.json()["id"]
    assert "x-inferplane-deployment" not in second.headers
    assert setup.upstream_calls() == 1
    miss = setup.gateway.ledger_row(first.headers["x-request-id"])
    hit = setup.gateway.ledger_row(second.headers["x-request-id"])
    assert miss["cache"] == "miss" and miss["cost_usd"] > 0 and miss["cache_saved_usd"] == 0
    assert hit["cache"] == "hit-exact" and hit["cost_usd"] == 0 and hit["deployment"] is None
    assert hit["prompt_tokens"] == hit["completion_tokens"] == 0
    assert hit["cache_saved_usd"] == pytest.approx(miss["cost_usd"])
    assert hit["tenant"] == "acme" and hit["status"] == 200
    metrics = httpx.get(setup.gateway.url + "/metrics", timeout=10,
                        headers={"authorization": f"Bearer {setup.keys['ops']}"}).text
    assert 'inferplane_cache_requests_total{model="oa",outcome="hit-exact"}' in metrics
    assert 'inferplane_cache_saved_usd_total{model="oa"}' in metrics


def test_a_model_without_cache_says_nothing_and_always_goes_upstream(setup: Setup) -> None:
    responses = [setup.chat("plain question", model="plain") for _ in range(2)]
    assert all(r.status_code == 200 and CACHE not in r.headers for r in responses)
    assert setup.upstream_calls() == 2
    row = setup.gateway.ledger_row(responses[1].headers["x-request-id"])
    assert row["cache"] is None and row["cache_saved_usd"] == 0


def test_two_tenants_sending_the_same_prompt_never_share_an_entry(setup: Setup) -> None:
    a = setup.chat("a shared prompt", tenant="acme")
    time.sleep(0.1)
    z = setup.chat("a shared prompt", tenant="zeta")
    time.sleep(0.1)
    assert (a.headers[CACHE], z.headers[CACHE]) == ("miss", "miss")
    assert setup.upstream_calls() == 2
    assert setup.chat("a shared prompt", tenant="zeta").headers[CACHE] == "hit-exact"
    assert setup.chat("a shared prompt", tenant="acme").headers[CACHE] == "hit-exact"


TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look it up",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("variant", [
    {"messages": [{"role": "system", "content": "Answer in French."},
                  {"role": "user", "content": "VARIANTS"}]},
    {"tools": [TOOL], "tool_choice": "none"},
    {"response_format": {"type": "json_object"}},
    {"stop": ["zzz"]},
    {"seed": 11},
], ids=["system", "tools", "response_format", "stop", "seed"])
def test_different_system_prompts_tools_or_formats_never_share_an_entry(
        setup: Setup, variant: dict[str, Any]) -> None:
    prompt = f"variants {next(iter(variant))}"
    if "messages" in variant:
        variant["messages"][1]["content"] = prompt
    assert setup.chat(prompt).headers[CACHE] == "miss"
    time.sleep(0.1)
    assert setup.chat(prompt).headers[CACHE] == "hit-exact"  # the base request is kept
    other = setup.chat(prompt, **variant)
    assert other.status_code == 200 and other.headers[CACHE] == "miss"
    assert setup.upstream_calls() == 2


def test_an_upstream_error_is_never_cached(setup: Setup) -> None:
    setup.up.add_faults({"kind": "status", "status": 503, "count": 1})
    failed = setup.chat("an unlucky question")
    assert failed.status_code >= 500 and failed.headers[CACHE] == "miss"
    time.sleep(0.1)
    again = setup.chat("an unlucky question")
    assert again.status_code == 200 and again.headers[CACHE] == "miss"
    assert setup.upstream_calls() == 2
    row = setup.gateway.ledger_row(failed.headers["x-request-id"])
    assert row["cache"] == "miss" and row["status"] >= 500


def test_a_stream_cut_mid_way_is_never_cached(setup: Setup) -> None:
    setup.up.add_faults({"kind": "reset_mid_stream", "after_chunks": 3})
    with pytest.raises((openai.APIError, httpx.HTTPError)):
        stream = setup.oai().chat.completions.create(
            model="oa", temperature=0, max_tokens=64, stream=True,
            messages=[{"role": "user", "content": "a stream that will be cut short"}])
        for _ in stream:
            pass
    time.sleep(0.1)
    again = setup.chat("a stream that will be cut short")
    assert again.status_code == 200 and again.headers[CACHE] == "miss"


def test_a_stream_the_client_leaves_is_never_cached(setup: Setup) -> None:
    setup.up.add_faults({"kind": "slow_drip", "delay_ms": 100})
    body = {"model": "oa", "temperature": 0, "max_tokens": 64, "stream": True,
            "messages": [{"role": "user", "content": "a stream the client will leave"}]}
    headers = {"authorization": f"Bearer {setup.keys['acme']}"}
    with httpx.stream("POST", setup.gateway.url + "/v1/chat/completions", json=body,
                      headers=headers, timeout=30) as response:
        assert response.headers[CACHE] == "miss"
        next(response.iter_raw())  # the first frame, then the client leaves
    time.sleep(1.5)  # the upstream's whole answer would have arrived by now
    assert setup.chat("a stream the client will leave").headers[CACHE] == "miss"


def test_a_tool_call_is_never_cached(setup: Setup) -> None:
    first = setup.chat("call a tool", tools=[TOOL])
    assert first.json()["choices"][0]["finish_reason"] == "tool_calls"
    time.sleep(0.1)
    assert setup.chat("call a tool", tools=[TOOL]).headers[CACHE] == "miss"
    assert setup.upstream_calls() == 2


def test_streamed_hits_replay_as_valid_streams_for_both_sdks(setup: Setup) -> None:
    question = "replay this answer"
    stored = setup.chat(question)  # kept from a non-streamed request
    time.sleep(0.1)
    expected = stored.json()["choices"][0]["message"]["content"]
    raw = setup.oai().chat.completions.with_raw_response.create(
        model="oa", temperature=0, max_tokens=64, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": question}])
    assert raw.headers[CACHE] == "hit-exact"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and
              c.choices[0].finish_reason]
    assert text == expected and finish == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    # The Anthropic SDK, streaming, from the same entry (its SDK sets no temperature itself).
    with setup.claude().messages.stream(
            model="oa", max_tokens=64, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": question}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        assert stream.response.headers[CACHE] == "hit-exact"
    assert "".join(pieces) == expected
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 5
    assert setup.upstream_calls() == 1


def test_a_non_streamed_request_is_answered_from_a_streamed_entry(setup: Setup) -> None:
    question = "streamed first, then whole"
    with setup.claude().messages.stream(
            model="an", max_tokens=64, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": question}]) as stream:
        streamed = "".join(stream.text_stream)
        assert stream.response.headers[CACHE] == "miss"
    time.sleep(0.1)
    raw = setup.claude().messages.with_raw_response.create(
        model="an", max_tokens=64, extra_body={"temperature": 0},
        messages=[{"role": "user", "content": question}])
    assert raw.headers[CACHE] == "hit-exact"
    reply = raw.parse()
    assert reply.content[0].type == "text" and reply.content[0].text == streamed
    whole = setup.oai().chat.completions.with_raw_response.create(
        model="an", temperature=0, max_tokens=64,
        messages=[{"role": "user", "content": question}])
    assert whole.headers[CACHE] == "hit-exact"
    assert whole.parse().choices[0].message.content == streamed
    assert setup.upstream_calls() == 1


def test_opt_out_and_opt_in_headers(setup: Setup) -> None:
    setup.chat("headers question")
    time.sleep(0.1)
    assert setup.chat("headers question",
                      headers={"cache-control": "no-cache"}).headers[CACHE] == "bypass"
    assert setup.chat("headers question",
                      headers={"cache-control": "no-store"}).headers[CACHE] == "bypass"
    assert setup.upstream_calls() == 3
    assert setup.chat("headers question").headers[CACHE] == "hit-exact"
    assert setup.chat("warm question", temperature=0.9).headers[CACHE] == "bypass"
    time.sleep(0.1)
    assert setup.chat("warm question", temperature=0.9).headers[CACHE] == "bypass"
    force = {CACHE: "force"}
    assert setup.chat("warm question", headers=force, temperature=0.9).headers[CACHE] == "miss"
    time.sleep(0.1)
    assert setup.chat("warm question", headers=force, temperature=0.9).headers[CACHE] == "hit-exact"
    assert setup.upstream_calls() == 6


def test_hits_count_against_rate_limits(setup: Setup) -> None:
    statuses = [setup.chat("rate limited question", tenant="limited").status_code]
    time.sleep(0.1)
    statuses += [setup.chat("rate limited question", tenant="limited").status_code
                 for _ in range(3)]
    assert statuses == [200, 200, 200, 429]
    assert setup.upstream_calls() == 1


def test_entries_expire(setup: Setup) -> None:
    assert setup.chat("short lived", model="short").headers[CACHE] == "miss"
    time.sleep(0.1)
    assert setup.chat("short lived", model="short").headers[CACHE] == "hit-exact"
    time.sleep(1.1)
    assert setup.chat("short lived", model="short").headers[CACHE] == "miss"


def test_stats_and_purge_by_model_and_tenant_with_the_cli(setup: Setup) -> None:
    for tenant in ("acme", "zeta"):
        setup.chat("purge me", tenant=tenant, model="oa-alias")
    time.sleep(0.1)
    stats = setup.cli("stats", "--model", "oa", "--tenant", "zeta", "--json")
    assert stats.returncode == 0, stats.stderr
    (row,) = orjson.loads(stats.stdout)["models"]
    assert row["model"] == "oa" and row["backend"] == "memory" and row["entries"] >= 1
    purged = setup.cli("purge", "--model", "oa", "--tenant", "zeta")
    assert purged.returncode == 0 and purged.stdout.startswith("purged "), purged.stderr
    assert int(purged.stdout.split()[1]) >= 1
    assert setup.chat("purge me", tenant="zeta", model="oa-alias").headers[CACHE] == "miss"
    assert setup.chat("purge me", tenant="acme", model="oa-alias").headers[CACHE] == "hit-exact"
    assert setup.cli("purge").returncode == 0
    assert setup.chat("purge me", tenant="acme", model="oa-alias").headers[CACHE] == "miss"
    refused = httpx.delete(setup.gateway.url + "/admin/v1/cache", timeout=10,
                           headers={"authorization": f"Bearer {setup.keys['acme']}"})
    assert refused.status_code == 403


# -- Redis: shared by several gateway processes ----------------------------------------------


def test_two_gateway_processes_share_the_redis_cache(tmp_path: Path) -> None:
    with ExitStack() as stack:
        up = stack.enter_context(UpstreamProcess("up", api_key=UPSTREAM_KEY))
        redis_url = stack.enter_context(running_redis(tmp_path / "redis"))
        gateways = []
        for name in ("g1", "g2"):
            root = tmp_path / name
            root.mkdir()
            text = (ledger_yaml(root) + f"redis: {{url: '{redis_url}'}}\n"
                    "models:\n  - {name: oa, cache: {backend: redis, ttl_s: 600}}\n"
                    "deployments:\n" + deployment("oa-1", "oa", up))
            gateways.append(stack.enter_context(
                running_gateway(root, text, env={"UPSTREAM_KEY": UPSTREAM_KEY})))
        body = {"model": "oa", "temperature": 0, "max_tokens": 32,
                "messages": [{"role": "user", "content": "shared across processes"}]}

        def ask(gw: GatewayProc) -> httpx.Response:
            return httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=30)

        first = ask(gateways[0])
        time.sleep(0.2)
        second = ask(gateways[1])
        assert (first.headers[CACHE], second.headers[CACHE]) == ("miss", "hit-exact")
        assert second.json()["choices"][0]["message"]["content"] == (
            first.json()["choices"][0]["message"]["content"])
        assert len(up.requests()) == 1
        stats = httpx.get(gateways[1].url + "/admin/v1/cache", timeout=10).json()["models"]
        assert stats[0]["backend"] == "redis" and stats[0]["entries"] == 1
        purged = httpx.delete(gateways[1].url + "/admin/v1/cache", params={"model": "oa"},
                              timeout=10).json()
        assert purged == {"purged": 1}
        assert ask(gateways[0]).headers[CACHE] == "miss"
