"""Staged rollout with real gateway processes, fake upstreams and the official openai SDK: a
canary's share (binomial bound, sticky per user), automatic rollback on injected errors with
no request after it reaching the canary, shadow traffic recorded on both sides, and promotion
by schedule."""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from inferplane.governance.canary import takes
from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

KEY = "sk-upstream-rollout-31"
WINDOW_S = 10.0
CHECK_S = 0.5
UPSTREAMS = ("inc", "can", "bad", "shade")
MODELS = {"split": "can", "bad": "bad", "shad": "shade", "promo": "can"}  # model -> candidate's


def config(root: Path, ups: dict[str, UpstreamProcess]) -> str:
    text = ledger_yaml(root) + (
        f"governance: {{poll_interval_ms: 100, rollout: {{check_interval_s: {CHECK_S}, "
        f"window_s: {WINDOW_S}, min_requests: 10, max_ttft_p95_ratio: 50}}}}\n"
        # no circuit opens: the canary's errors keep coming until its gates roll it back
        "breaker: {window: 5000, min_requests: 5000}\n"
        "models:\n")
    for model in MODELS:
        text += (f"  - name: {model}\n    routing: {{retry: {{max_attempts: 3, "
                 "per_deployment: 1, backoff_base_s: 0}}\n")
    text += "deployments:\n"
    for model, candidate in MODELS.items():
        for n, up in ((1, ups["inc"]), (2, ups[candidate])):
            text += (f"  - {{name: {model}-{n}, model: {model}, version: {model}-v{n}, "
                     f"provider: openai, base_url: '{up.url}/v1', api_key: 'env:UPSTREAM_KEY', "
                     "upstream_model: echo-1}\n")
    return text


@dataclass
class World:
    gateway: GatewayProc
    ups: dict[str, UpstreamProcess]
    client: openai.OpenAI

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "inferplane"), *args, "--config",
                               str(self.gateway.config)], capture_output=True, text=True,
                              timeout=60, check=False)

    def admin(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateway.url}/admin/v1{path}", timeout=30, **kw)

    def rollout(self, version: str, stage: str, **extra: Any) -> dict[str, Any]:
        moved = self.admin("POST", f"/models/{version}/rollout", json={"stage": stage, **extra})
        assert moved.status_code == 200, moved.text
        return dict(moved.json())

    def chat(self, model: str, text: str, user: str | None = None,
             headers: dict[str, str] | None = None) -> tuple[str, str, str]:
        """The version that answered, the answer, and the request id."""
        raw = self.client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": text}], max_tokens=8,
            extra_headers=headers, user=user or openai.omit)
        reply = raw.parse()
        return (raw.headers["x-inferplane-version"], reply.choices[0].message.content or "",
                raw.headers["x-request-id"])

    def events(self, version: str) -> list[dict[str, Any]]:
        return list(self.admin("GET", f"/models/{version}").json()["events"])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = Path(tmp_path_factory.mktemp("rollout"))
    with ExitStack() as stack:
        ups = {name: stack.enter_context(UpstreamProcess(name, api_key=KEY))
               for name in UPSTREAMS}
        gateway = stack.enter_context(running_gateway(root, config(root, ups),
                                                      env={"UPSTREAM_KEY": KEY}))
        client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="none", max_retries=0,
                               timeout=30)
        yield World(gateway, ups, client)
        client.close()


def _until(check: Callable[[], Any], timeout: float, step: Callable[[], None]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        step()
    raise AssertionError("timed out")


def test_a_canary_at_20_percent_takes_its_share_sticky_per_user(world: World) -> None:
    world.rollout("split-v1", "production")
    made = world.cli("models", "rollout", "split", "--to", "split-v2", "--stage", "canary",
                     "--percent", "20")
    assert made.returncode == 0, made.stderr
    assert "split-v2 takes 20% of 'split''s requests" in made.stderr
    time.sleep(0.5)  # the gateway polls the registry every 100 ms
    n = 1000
    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(lambda i: world.chat("split", f"hello {i}", f"user-{i}")[0],
                               range(n)))
    on_canary = sum(v == "split-v2" for v in served)
    bound = 3.29 * math.sqrt(n * 0.2 * 0.8)  # two-sided 99.9%
    print(f"canary at 20%: {on_canary} of {n} requests (bound +-{bound:.0f})")
    assert abs(on_canary - n * 0.2) <= bound
    assert Counter(served).keys() == {"split-v1", "split-v2"}
    expected = ["split-v2" if takes(20, "split", f"user:user-{i}") else "split-v1"
                for i in range(n)]
    assert served == expected  # each user where its sticky key falls
    assert world.ups["can"].stats()["requests"] == on_canary  # and nothing else reached it
    again = [world.chat("split", "again", f"user-{i}")[0] for i in range(40)]
    assert again == expected[:40]  # the same user, the same version
    session = {"x-inferplane-session": "conversation-7"}
    by_session = {world.chat("split", "s", f"other-{i}", session)[0] for i in range(10)}
    assert len(by_session) == 1  # the session wins over the user
    world.rollout("split-v2", "canary", percent=40)  # raised: the 20% stay on the canary
    time.sleep(0.3)
    raised = [world.chat("split", "raised", f"user-{i}")[0] for i in range(200)]
    assert all(r == "split-v2" for r, e in zip(raised, expected, strict=False)
               if e == "split-v2")
    assert sum(r == "split-v2" for r in raised) > sum(e == "split-v2" for e in expected[:200])
    listed = json.loads(world.cli("models", "list", "--model", "split", "--json").stdout)
    rollout = {v["version"]: v["rollout"] for v in listed}["split-v2"]
    assert rollout["percent"] == 40 and rollout["gate"]["outcome"] in ("pass", "wait")


def test_injected_errors_roll_the_canary_back_and_nothing_reaches_it_after(
        world: World) -> None:
    world.rollout("bad-v1", "production")
    world.rollout("bad-v2", "canary", percent=50)
    bad = world.ups["bad"]
    bad.clear_requests()
    bad.add_faults({"kind": "status", "status": 500, "count": -1})
    time.sleep(0.3)
    sent: dict[str, float] = {}  # the text of each request -> when the client sent it
    began = time.time()

    def rolled_back() -> dict[str, Any] | None:
        return next((e for e in world.events("bad-v2") if e["action"] == "rollback"), None)

    def one() -> None:
        text = f"request {len(sent)}"
        sent[text] = time.time()
        version, _answer, _ = world.chat("bad", text, f"user-{len(sent)}")
        assert version == "bad-v1"  # the client never saw the canary's errors

    event = _until(lambda: len(sent) % 5 == 0 and rolled_back(), 60, one)
    after = [world.chat("bad", f"later {i}", f"user-{i}")[0] for i in range(200)]
    assert set(after) == {"bad-v1"}
    took = event["ts"] - began
    print(f"rolled back {took:.2f} s after the first fault ({len(sent)} requests): "
          f"{event['reason']}")
    assert event["actor"] == "rollout-watcher" and "error rate" in event["reason"]
    assert event["from_stage"] == "canary" and event["to_stage"] in ("approved", "registered")
    assert took < WINDOW_S + 2 * CHECK_S
    log = bad.requests()
    assert log, "the canary was never tried"
    reached = [sent[entry["body"]["messages"][0]["content"]] for entry in log]
    late = [entry["time"] - event["ts"] for entry in log if entry["time"] > event["ts"]]
    print(f"canary upstream: {len(log)} requests, the last sent {event['ts'] - max(reached):.3f}"
          f" s before the rollback; {len(late)} arrived after it")
    assert max(reached) < event["ts"]  # no request sent after the rollback reached the canary
    shown = json.loads(world.cli("models", "show", "bad-v2").stdout)
    assert shown["rollout"]["gate"]["outcome"] == "fail"
    assert any("error rate" in r for r in shown["rollout"]["gate"]["reasons"])
    bad.clear_faults()


def test_a_shadow_gets_mirrored_requests_and_clients_only_the_incumbents(
        world: World) -> None:
    world.rollout("shad-v1", "production")
    world.rollout("shad-v2", "shadow")
    mark = time.time()
    shade = world.ups["shade"]
    shade.add_faults({"kind": "slow_first_token", "delay_ms": 1500, "count": 5})
    time.sleep(0.3)
    ids = []
    for i in range(20):
        began = time.monotonic()
        version, answer, request_id = world.chat("shad", f"mirror {i}", "ann")
        assert time.monotonic() - began < 1.0  # the slow shadow delays no one
        assert version == "shad-v1" and answer.startswith("[inc] echo: mirror")
        ids.append(request_id)
    _until(lambda: shade.stats()["requests"] >= 20, 10, lambda: time.sleep(0.2))
    time.sleep(2.0)  # the slow ones finish, the ledger commits
    rows = world.gateway.ledger_rows()
    shadows = [r for r in rows if r["shadow_of"] in ids]
    assert sorted(r["shadow_of"] for r in shadows) == sorted(ids)
    assert {r["version"] for r in shadows} == {"shad-v2"}
    assert {r["status"] for r in shadows} == {200}
    assert all(r["ttft_ms"] is not None for r in shadows)
    assert sum(r["ttft_ms"] > 1400 for r in shadows) == 5
    primaries = [r for r in rows if r["id"] in ids]
    assert {r["version"] for r in primaries} == {"shad-v1"}
    assert all(r["shadow_of"] is None for r in primaries)
    history = world.admin("GET", "/models/history", params={"model": "shad"}).json()
    assert history["served"]["last"]["version"] == "shad-v1"  # a shadow served no one
    then = world.admin("GET", "/models/history", params={"model": "shad", "at": mark}).json()
    assert then["stages"]["shad-v2"] == "shadow" and then["rollouts"] == {"shad-v2": 100}
    gate = world.admin("GET", "/models/shad-v2").json()["rollout"]["gate"]
    print(f"shadow gate (5 of 20 answers 1.5 s late): {gate['outcome']} {gate['reasons']}")


def test_a_passing_canary_is_promoted_by_schedule(world: World) -> None:
    world.rollout("promo-v1", "production")
    started = world.rollout("promo-v2", "canary", percent=50, promote_after_s=2)
    assert started["rollout"]["promote_after_s"] == 2

    def promoted() -> dict[str, Any] | None:
        return next((e for e in world.events("promo-v2")
                     if e["to_stage"] == "production"), None)

    counter = iter(range(10_000))

    def five() -> None:
        for _ in range(5):
            world.chat("promo", "p", f"user-{next(counter)}")

    event = _until(promoted, 30, five)
    assert event["actor"] == "rollout-watcher" and "passed" in event["reason"]
    began = next(e["ts"] for e in world.events("promo-v2") if e["to_stage"] == "canary")
    print(f"promoted {event['ts'] - began:.1f} s after the canary began")
    assert event["ts"] - began >= 2
    time.sleep(0.3)
    assert {world.chat("promo", "after", f"user-{i}")[0] for i in range(30)} == {"promo-v2"}
    assert world.admin("GET", "/models/promo-v1").json()["stage"] != "production"
