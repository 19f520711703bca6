"""The cache key: everything that changes the answer is in it, nothing else is."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from inferplane.cache.key import EntryKey, Scope, entry_key, serving_of
from inferplane.cache.question import question
from inferplane.config import Config, DeploymentConfig, ModelConfig
from inferplane.protocol.types import (
    GenerationRequest,
    Message,
    SamplingParams,
    Tool,
    ToolCall,
    ToolChoice,
)

SCOPE = Scope("acme", "chat", "chat", "serving-1")
BASE = GenerationRequest(
    id="chatcmpl-1", endpoint="chat.completions", model="chat",
    params=SamplingParams(max_tokens=64, temperature=0.0),
    messages=(Message("system", "Be brief."), Message("user", "What is a gateway?")),
)


def key(req: GenerationRequest = BASE, scope: Scope = SCOPE) -> EntryKey:
    return entry_key(scope, req)


def test_the_key_is_stable_and_names_model_and_tenant() -> None:
    k = key()
    assert k == key(replace(BASE))
    assert (k.model, k.tenant, len(k.digest)) == ("chat", "acme", 64)


@pytest.mark.parametrize("change", [
    {"id": "chatcmpl-2"}, {"stream": True}, {"include_usage": True}, {"created": 99},
    {"user": "someone"}, {"wire": "anthropic"}, {"endpoint": "messages"},
])
def test_what_does_not_change_the_answer_is_not_in_the_key(change: dict[str, Any]) -> None:
    assert key(replace(BASE, **change)) == key()


SAMPLING_CHANGES: list[dict[str, Any]] = [
    {"max_tokens": 65}, {"max_tokens": None}, {"temperature": 0.5}, {"top_p": 0.9},
    {"stop": ("\n",)}, {"seed": 1},
]


@pytest.mark.parametrize("change", SAMPLING_CHANGES)
def test_every_sampling_parameter_is_in_the_key(change: dict[str, Any]) -> None:
    assert key(replace(BASE, params=replace(BASE.params, **change))) != key()


def test_an_integer_temperature_is_the_same_request() -> None:
    as_int = replace(BASE, params=replace(BASE.params, temperature=0))
    assert key(as_int) == key()


TOOL = Tool("lookup", "Look a word up", {"type": "object", "properties": {"w": {"type": "string"}}})
REQUEST_CHANGES: list[dict[str, Any]] = [
    {"messages": (Message("system", "Be verbose."), BASE.messages[1])},
    {"messages": (Message("developer", "Be brief."), BASE.messages[1])},
    {"messages": BASE.messages[1:]},
    {"messages": (*BASE.messages, Message("assistant", "", (ToolCall("c1", "f", "{}"),)))},
    {"tools": (TOOL,)},
    {"tools": (TOOL,), "tool_choice": ToolChoice("required")},
    {"response_format": {"type": "json_object"}},
    {"parallel_tool_calls": False},
    {"prompt": "What is a gateway?", "messages": ()},
]


@pytest.mark.parametrize("change", REQUEST_CHANGES)
def test_messages_system_tools_and_formats_are_in_the_key(change: dict[str, Any]) -> None:
    assert key(replace(BASE, **change)) != key()


def test_tool_schemas_and_formats_compare_by_content_not_key_order() -> None:
    a = replace(BASE, tools=(Tool("f", "", {"a": 1, "b": {"c": 2, "d": 3}}),),
                response_format={"type": "json_schema", "json_schema": {"name": "x", "s": 1}})
    b = replace(BASE, tools=(Tool("f", "", {"b": {"d": 3, "c": 2}, "a": 1}),),
                response_format={"json_schema": {"s": 1, "name": "x"}, "type": "json_schema"})
    assert key(a) == key(b)
    c = replace(b, tools=(Tool("f", "", {"b": {"d": 3, "c": 2}, "a": 2}),))
    assert key(c) != key(a)


@pytest.mark.parametrize("scope", [
    Scope("other", "chat", "chat", "serving-1"), Scope(None, "chat", "chat", "serving-1"),
    Scope("acme", "chat", "chat-alias", "serving-1"), Scope("acme", "chat", "chat", "serving-2"),
    Scope("acme", "chat2", "chat", "serving-1"),
])
def test_every_part_of_the_scope_is_in_the_key(scope: Scope) -> None:
    assert key(scope=scope).digest != key().digest


def context_key(scope: Scope, req: GenerationRequest) -> str:
    """Where a semantic cache looks for paraphrases of ``req`` (cache/question.py)."""
    found = question(scope, req, 10_000)
    assert found is not None
    return found.scope


def test_the_context_key_ignores_the_question_but_not_the_system_prompt() -> None:
    other_question = replace(BASE, messages=(BASE.messages[0], Message("user", "Why?")))
    assert context_key(SCOPE, other_question) == context_key(SCOPE, BASE)
    other_system = replace(BASE, messages=(Message("system", "Be long."), BASE.messages[1]))
    assert context_key(SCOPE, other_system) != context_key(SCOPE, BASE)
    assert context_key(Scope("x", "chat", "chat", "s"), BASE) != context_key(SCOPE, BASE)


def _config(**deployment: Any) -> Config:
    fields = {"name": "d1", "model": "chat", "provider": "openai",
              "base_url": "http://a/v1", "upstream_model": "m1", **deployment}
    return Config(models=[ModelConfig(name="chat", aliases=["c"]), ModelConfig(name="big")],
                  deployments=[DeploymentConfig(**fields),
                               DeploymentConfig(name="d2", model="big", provider="openai",
                                                base_url="http://b/v1")])


def test_serving_changes_with_the_deployments_that_would_serve_the_model() -> None:
    base = serving_of(_config(), "chat")
    assert serving_of(_config(), "c") == base  # an alias is served by the same deployments
    assert serving_of(_config(weight=3.0), "chat") == base  # no effect on the answer
    assert serving_of(_config(upstream_model="m2"), "chat") != base
    assert serving_of(_config(base_url="http://other/v1"), "chat") != base
    assert serving_of(_config(name="d3"), "chat") != base
    assert serving_of(_config(), "big") != base
    assert serving_of(_config(version="chat-v2"), "chat") != base  # another model version


def test_serving_follows_what_governance_holds_back() -> None:
    config = Config(models=[ModelConfig(name="chat")], deployments=[
        DeploymentConfig(name=name, model="chat", provider="openai", base_url="http://a/v1",
                         version=version) for name, version in (("a", "v1"), ("b", "v2"))])
    both = serving_of(config, "chat")
    only_v2 = serving_of(config, "chat", held_back={"a"})  # v2 went to production
    assert len({both, only_v2, serving_of(config, "chat", held_back={"b"})}) == 3
    assert serving_of(config, "chat", held_back=["a"]) == only_v2
