"""The semantic cache with real processes: a gateway (the shipped all-MiniLM-L6-v2 encoder) in
front of a fake upstream, two tenants' keys, the official openai and anthropic SDKs; then two
gateway processes sharing one Redis semantic cache.

The upstream answers every question with one text (its ``reply`` setting), so verification
finds a kept answer right for any paraphrase until the test changes that text. The models
allow a generous error rate (0.5) so that a few verified paraphrases are enough to learn a
threshold; the quality of the learned threshold at realistic rates is the benchmark's
(``benchmarks/bench_cache.py``).
"""

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
import pytest

from tests.services import running_redis
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

UPSTREAM_KEY = "sk-upstream-semantic"
PRICE = "price: {input_per_mtok: 1000, output_per_mtok: 1000}"
CACHE = "x-inferplane-cache"
PARIS = "Paris is the capital of France."
SEMANTIC = ("cache: {ttl_s: 600, semantic: {enabled: true, max_false_hit_rate: 0.5, "
            "verify_rate: 0, compare: exact}}")
ANCHOR = "What is the capital of France?"
WARM = ["Which city is the capital of France?", "What city is France's capital?",
        "Tell me the capital of France.", "What is the capital city of France?",
        "Name the capital of France.", "Capital of France?"]
VERIFY = {CACHE: "verify"}


def deployment(name: str, model: str, up: UpstreamProcess) -> str:
    return (f"  - {{name: {name}, model: {model}, provider: openai, base_url: '{up.url}/v1', "
            f"api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1, {PRICE}}}\n")


@dataclass
class Setup:
    gateway: GatewayProc
    up: UpstreamProcess
    referee: UpstreamProcess  # the judge model's upstream
    keys: dict[str, str]

    def chat(self, content: str | list[dict[str, Any]], *, tenant: str = "acme",
             model: str = "sem", headers: dict[str, str] | None = None,
             **extra: Any) -> httpx.Response:
        messages = ([{"role": "user", "content": content}] if isinstance(content, str)
                    else content)
        body = {"model": model, "temperature": 0, "max_tokens": 64, "messages": messages,
                **extra}
        response = httpx.post(self.gateway.url + "/v1/chat/completions", json=body, timeout=60,
                              headers={"authorization": f"Bearer {self.keys[tenant]}",
                                       **(headers or {})})
        assert response.status_code == 200, response.text
        time.sleep(0.3)  # verification and stores happen off the request's path
        return response

    def oai(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.gateway.url + "/v1", api_key=self.keys["acme"],
                             max_retries=0)

    def claude(self) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.gateway.url, api_key=self.keys["acme"],
                                   max_retries=0)


def text(response: httpx.Response) -> str:
    return str(response.json()["choices"][0]["message"]["content"])


def make_keys(gateway: GatewayProc) -> dict[str, str]:
    def create(tenant: str, *extra: str) -> str:
        return subprocess.run(
            [str(BIN / "inferplane"), "keys", "create", "--tenant", tenant, *extra,
             "--config", str(gateway.config)], capture_output=True, text=True, timeout=60,
            check=True).stdout.strip()

    keys = {"acme": create("acme"), "zeta": create("zeta"),
            "ops": create("ops", "--scopes", "admin,inference")}
    time.sleep(0.5)  # every process sees the keys within tenancy.poll_interval_ms
    return keys


def warm(setup: Setup, model: str = "sem") -> None:
    """The anchor question kept, and six verified paraphrases: a threshold to decide with."""
    assert setup.chat(ANCHOR, model=model).headers[CACHE] == "miss"
    for question in WARM:
        assert setup.chat(question, model=model, headers=VERIFY).headers[CACHE] == "miss"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = Path(tmp_path_factory.mktemp("semantic"))
    with UpstreamProcess("up", api_key=UPSTREAM_KEY) as up, \
            UpstreamProcess("referee", api_key=UPSTREAM_KEY) as referee:
        config = (
            ledger_yaml(root) + "tenancy: {poll_interval_ms: 100}\n"
            "models:\n"
            f"  - {{name: sem, {SEMANTIC}}}\n"
            f"  - {{name: learn, {SEMANTIC}}}\n"
            "  - {name: exact-only, cache: {ttl_s: 600}}\n"
            "  - {name: by-deployment, cache: {exact: false, semantic: {enabled: true, "
            "max_false_hit_rate: 0.5, verify_rate: 0, compare: exact, embeddings: vectors}}}\n"
            "  - {name: vectors}\n"
            "  - {name: judged, cache: {ttl_s: 600, semantic: {enabled: true, "
            "max_false_hit_rate: 0.5, verify_rate: 0, compare: judge, judge: referee}}}\n"
            "  - {name: referee}\n"
            "deployments:\n" + deployment("sem-1", "sem", up) + deployment("learn-1", "learn", up)
            + deployment("exact-1", "exact-only", up)
            + deployment("by-deployment-1", "by-deployment", up)
            + deployment("vectors-1", "vectors", up) + deployment("judged-1", "judged", up)
            + deployment("referee-1", "referee", referee))
        with running_gateway(root, config, env={"UPSTREAM_KEY": UPSTREAM_KEY}) as gateway:
            up.configure(reply=PARIS)
            s = Setup(gateway, up, referee, make_keys(gateway))
            warm(s)
            yield s


def test_a_paraphrase_is_answered_from_the_cache_and_accounted(setup: Setup) -> None:
    first = setup.chat(ANCHOR)  # identical: the exact cache answers
    assert first.headers[CACHE] == "hit-exact"
    calls = len(setup.up.requests())
    hit = setup.chat("What is the French capital?")
    assert hit.headers[CACHE] == "hit-semantic"
    assert text(hit) == PARIS and "x-inferplane-deployment" not in hit.headers
    assert len(setup.up.requests()) == calls
    row = setup.gateway.ledger_row(hit.headers["x-request-id"])
    assert row["cache"] == "hit-semantic" and row["cost_usd"] == 0
    assert row["prompt_tokens"] == row["completion_tokens"] == 0
    rows = setup.gateway.ledger_rows()
    anchor = next(r for r in rows if r["cache"] == "miss" and r["model"] == "sem")
    assert row["cache_saved_usd"] == pytest.approx(anchor["cost_usd"]) and anchor["cost_usd"] > 0


def test_an_unrelated_question_is_a_miss(setup: Setup) -> None:
    assert setup.chat("How long should I knead bread dough?").headers[CACHE] == "miss"


def test_another_tenant_never_gets_the_answer(setup: Setup) -> None:
    assert setup.chat("Could you tell me the capital of France?",
                      tenant="zeta").headers[CACHE] == "miss"


TOOL = {"type": "function", "function": {"name": "lookup", "description": "Look it up",
                                         "parameters": {"type": "object", "properties": {}}}}


@pytest.mark.parametrize("variant", [
    {"system": "Answer in French."},
    {"tools": [TOOL], "tool_choice": "none"},
    {"response_format": {"type": "json_object"}},
    {"max_tokens": 12},
], ids=["system", "tools", "response_format", "max_tokens"])
def test_different_system_prompts_tools_or_formats_never_share_an_answer(
        setup: Setup, variant: dict[str, Any]) -> None:
    question = "Which city serves as the capital of France?"
    extra = dict(variant)
    content: str | list[dict[str, Any]] = question
    if "system" in extra:
        content = [{"role": "system", "content": extra.pop("system")},
                   {"role": "user", "content": question}]
    assert setup.chat(content, **extra).headers[CACHE] == "miss"


def test_conversations_match_only_with_identical_earlier_turns(setup: Setup) -> None:
    def turns(first: str, last: str) -> list[dict[str, Any]]:
        return [{"role": "user", "content": first},
                {"role": "assistant", "content": "Hello! How can I help?"},
                {"role": "user", "content": last}]

    assert setup.chat(turns("Hi there", "What is the tallest mountain on Earth?"),
                      ).headers[CACHE] == "miss"
    paraphrase = setup.chat(turns("Hi there", "Which mountain is the tallest on Earth?"))
    assert paraphrase.headers[CACHE] == "hit-semantic"
    other = setup.chat(turns("Good morning", "Which is the highest mountain on Earth?"))
    assert other.headers[CACHE] == "miss"


def test_streamed_semantic_hits_replay_as_valid_streams_for_both_sdks(setup: Setup) -> None:
    raw = setup.oai().chat.completions.with_raw_response.create(
        model="sem", temperature=0, max_tokens=64, stream=True,
        stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "What's the capital city of France?"}])
    assert raw.headers[CACHE] == "hit-semantic"
    chunks = list(raw.parse())
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and
              c.choices[0].finish_reason]
    assert streamed == PARIS and finish == ["stop"] and chunks[-1].usage is not None
    with setup.claude().messages.stream(
            model="sem", max_tokens=64, extra_body={"temperature": 0},
            messages=[{"role": "user", "content": "France's capital is which city?"}]) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
        assert stream.response.headers[CACHE] == "hit-semantic"
    assert "".join(pieces) == PARIS and final.stop_reason == "end_turn"


def test_a_kept_answer_found_wrong_stops_answering_that_paraphrase(setup: Setup) -> None:
    warm(setup, "learn")
    assert text(setup.chat("What is the capital of France, please?", model="learn")) == PARIS
    setup.up.configure(reply="Lyon.")  # the upstream's answer changes: the kept one is wrong
    try:
        checked = setup.chat("What is the capital of France, please?!", model="learn",
                             headers=VERIFY)
        assert checked.headers[CACHE] == "miss" and text(checked) == "Lyon."
        again = setup.chat("What is the capital of France, please?!", model="learn")
        assert text(again) == "Lyon."
        farther = setup.chat("Could you tell me the capital of France?", model="learn")
        assert text(farther) == "Lyon."
    finally:
        setup.up.configure(reply=PARIS)


def test_a_model_without_semantic_cache_does_no_semantic_work(setup: Setup) -> None:
    assert setup.chat(ANCHOR, model="exact-only").headers[CACHE] == "miss"
    assert setup.chat("Which city is the capital of France?",
                      model="exact-only").headers[CACHE] == "miss"
    stats = httpx.get(setup.gateway.url + "/admin/v1/cache", timeout=10, headers={
        "authorization": f"Bearer {setup.keys['ops']}"}).json()["models"]
    by_model = {row["model"]: row for row in stats}
    assert "semantic" not in by_model["exact-only"]
    assert by_model["sem"]["semantic"]["entries"] >= 1


def test_embeddings_from_a_model_the_configuration_names(setup: Setup) -> None:
    """``embeddings: vectors``: the upstream's embeddings (one vector per distinct text, so only
    the same question is near), and the exact cache off: the semantic cache alone answers."""
    question = "Where is the Eiffel Tower?"
    setup.up.clear_requests()
    assert setup.chat(question, model="by-deployment").headers[CACHE] == "miss"
    for _ in range(6):
        assert setup.chat(question, model="by-deployment",
                          headers=VERIFY).headers[CACHE] == "miss"
    hit = setup.chat(question, model="by-deployment")
    assert hit.headers[CACHE] == "hit-semantic" and text(hit) == PARIS
    paths = [r.get("path") for r in setup.up.requests()]
    assert paths.count("/v1/embeddings") >= 8 and paths.count("/v1/chat/completions") == 7
    assert setup.chat("Where is the Louvre?", model="by-deployment").headers[CACHE] == "miss"
    # each embedding is a request of the gateway's own, routed and recorded for the client's
    clients = {row["id"]: row for row in setup.gateway.ledger_rows()
               if row["model"] == "by-deployment"}
    own = [row for row in setup.gateway.ledger_rows() if row["purpose"] == "cache-embedding"]
    assert len(own) >= 8 and {row["on_behalf_of"] for row in own} <= set(clients)
    assert all(row["model"] == "vectors" and row["deployment"] == "vectors-1"
               and row["tenant"] == "acme" and row["status"] == 200 and row["cost_usd"] > 0
               and row["endpoint"] == "embeddings" for row in own)
    assert all(row["purpose"] is None for row in clients.values())


def test_a_judge_model_decides_whether_a_kept_answer_was_right(setup: Setup) -> None:
    """``compare: judge``: the upstream answers paraphrases in other words than the kept answer
    (no exact match), and the judge model (its own upstream, scripted) rules on each."""
    anchor = "How tall is the Eiffel Tower?"
    setup.referee.configure(reply="SAME")
    setup.up.configure(reply="About 330 metres.")
    try:
        assert setup.chat(anchor, model="judged").headers[CACHE] == "miss"
        setup.up.configure(reply="It is roughly 330 m tall.")
        for question in ("What is the height of the Eiffel Tower?",
                         "How high is the Eiffel Tower?", "Eiffel Tower height?",
                         "How many metres tall is the Eiffel Tower?",
                         "Tell me the Eiffel Tower's height.", "How tall's the Eiffel Tower?"):
            assert setup.chat(question, model="judged", headers=VERIFY).headers[CACHE] == "miss"
        hit = setup.chat("What's the height of the Eiffel Tower?", model="judged")
        assert hit.headers[CACHE] == "hit-semantic" and text(hit) == "About 330 metres."
        verdicts = [r for r in setup.referee.requests() if r.get("path") == "/v1/chat/completions"]
        assert len(verdicts) == 6
        asked = str(verdicts[0].get("body"))
        assert "Eiffel" in asked and "About 330 metres." in asked and "330 m tall" in asked
        judged = [row for row in setup.gateway.ledger_rows() if row["purpose"] == "cache-judge"]
        assert len(judged) == 6 and all(row["model"] == "referee" and row["tenant"] == "acme"
                                        and row["status"] == 200 for row in judged)
        # a "no" is recorded like the others (its effect on the threshold: the unit tests)
        setup.referee.configure(reply="DIFFERENT")
        question = "Eiffel Tower: how tall is it?"
        assert setup.chat(question, model="judged", headers=VERIFY).headers[CACHE] == "miss"
        assert len([r for r in setup.gateway.ledger_rows() if r["purpose"] == "cache-judge"]) == 7
    finally:
        setup.up.configure(reply=PARIS)


# -- Redis: shared by several gateway processes ----------------------------------------------


def test_two_gateway_processes_share_the_semantic_cache(tmp_path: Path) -> None:
    with ExitStack() as stack:
        up = stack.enter_context(UpstreamProcess("up", api_key=UPSTREAM_KEY))
        up.configure(reply=PARIS)
        redis_url = stack.enter_context(running_redis(tmp_path / "redis"))
        gateways = []
        for name in ("g1", "g2"):
            root = tmp_path / name
            root.mkdir()
            config = (ledger_yaml(root) + f"redis: {{url: '{redis_url}'}}\n"
                      "models:\n  - {name: sem, cache: {backend: redis, ttl_s: 600, semantic: "
                      "{enabled: true, max_false_hit_rate: 0.5, verify_rate: 0, "
                      "compare: exact}}}\n"
                      "deployments:\n" + deployment("sem-1", "sem", up))
            gateways.append(stack.enter_context(
                running_gateway(root, config, env={"UPSTREAM_KEY": UPSTREAM_KEY})))

        def ask(gw: GatewayProc, question: str, headers: dict[str, str] | None = None
                ) -> httpx.Response:
            body = {"model": "sem", "temperature": 0, "max_tokens": 32,
                    "messages": [{"role": "user", "content": question}]}
            response = httpx.post(gw.url + "/v1/chat/completions", json=body, timeout=60,
                                  headers=headers or {})
            time.sleep(0.3)
            return response

        assert ask(gateways[0], ANCHOR).headers[CACHE] == "miss"
        for question in WARM:  # verified by the first process: the observations are shared
            assert ask(gateways[0], question, VERIFY).headers[CACHE] == "miss"
        hit = ask(gateways[1], "What is the French capital?")
        assert hit.headers[CACHE] == "hit-semantic" and text(hit) == PARIS
        assert len(up.requests()) == 1 + len(WARM)
        stats = httpx.get(gateways[1].url + "/admin/v1/cache", timeout=10).json()["models"]
        assert stats[0]["semantic"]["entries"] == 1
        purged = httpx.delete(gateways[1].url + "/admin/v1/cache", timeout=10).json()
        assert purged["purged"] >= 1
        time.sleep(0.5)  # the other process reads the purge from the shared log
        assert ask(gateways[0], "What is the capital of France, please?").headers[CACHE] == "miss"
