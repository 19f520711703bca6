"""Whether a request reads and writes the cache, and which answers may be kept."""

from __future__ import annotations

import pytest

from inferplane.cache.policy import NEITHER, Decision, Directives, decide, directives, storable
from inferplane.config import CacheConfig
from inferplane.protocol.types import SamplingParams

ON = CacheConfig()
GREEDY = SamplingParams(temperature=0.0)
SEEDED = SamplingParams(temperature=0.8, seed=3)
RANDOM = SamplingParams(temperature=0.8)
BOTH = Decision(read=True, store=True)


@pytest.mark.parametrize(("params", "asked", "expected"), [
    (GREEDY, Directives(), BOTH),
    (SEEDED, Directives(), BOTH),
    (RANDOM, Directives(), NEITHER),
    (RANDOM, Directives(force=True), BOTH),
    (GREEDY, Directives(no_cache=True), Decision(read=False, store=True)),
    (GREEDY, Directives(no_store=True), NEITHER),
    (GREEDY, Directives(no_cache=True, no_store=True), NEITHER),
    (RANDOM, Directives(force=True, no_store=True), NEITHER),
])
def test_decide(params: SamplingParams, asked: Directives, expected: Decision) -> None:
    assert decide(ON, params, asked) == expected


def test_a_model_may_cache_every_request_or_none() -> None:
    assert decide(CacheConfig(deterministic_only=False), RANDOM, Directives()) == BOTH
    assert decide(CacheConfig(exact=False), GREEDY, Directives(force=True)) == NEITHER


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, Directives()),
    ({"cache-control": "no-cache"}, Directives(no_cache=True)),
    ({"cache-control": "max-age=0, NO-STORE"}, Directives(no_store=True)),
    ({"cache-control": "no-cache-please"}, Directives()),
    ({"x-inferplane-cache": "force"}, Directives(force=True)),
    ({"x-inferplane-cache": "forced"}, Directives()),
])
def test_directives(headers: dict[str, str], expected: Directives) -> None:
    assert directives(headers) == expected


@pytest.mark.parametrize(("status", "finish", "tools", "expected"), [
    (200, "stop", False, True),
    (200, "length", False, True),
    (200, "tool_calls", False, False),
    (200, "stop", True, False),  # a tool call that ended as "stop" is still a tool call
    (200, "content_filter", False, False),
    (200, "cancelled", False, False),
    (200, None, False, False),  # never finished: the stream was cut
    (499, "stop", False, False),  # the client left
    (502, "stop", False, False),
    (429, None, False, False),
])
def test_storable(status: int, finish: str | None, tools: bool, expected: bool) -> None:
    assert storable(status, finish, tools) is expected
