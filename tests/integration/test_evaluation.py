"""The evaluation gate with a real gateway and fake upstreams: ``inferplane eval`` runs a suite
through the gateway pinned to a version that is not approved yet (only that version's upstream
sees the requests), stores the result in the registry, exits 1 below the threshold, and with
``require_evaluation`` a version cannot be approved until its latest evaluation passed. Pinning
a version needs the approve or admin scope."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from inferplane.cli.eval_cmd import API_KEY_ENV
from tests.integration.gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway
from tests.integration.test_governance import CARD
from tests.upstream.process import UpstreamProcess

KEY = "sk-upstream-eval-42"
SUITE = "\n".join([
    '{"suite": "echo", "version": "3", "threshold": 0.75}',
    '{"id": "hello", "messages": [{"role": "user", "content": "hello"}], '
    '"checks": [{"contains": "echo: hello"}]}',
    '{"id": "pattern", "messages": [{"role": "user", "content": "abc 42"}], '
    '"checks": [{"regex": "abc \\\\d+"}, {"number": 42}]}',
    '{"id": "json", "messages": [{"role": "user", "content": "{}"}], '
    '"checks": [{"regex": "echo: \\\\{\\\\}$"}]}',
    '{"id": "wrong", "messages": [{"role": "user", "content": "x"}], '
    '"checks": [{"exact": "y"}]}',
])


@dataclass
class World:
    gateway: GatewayProc
    v1: UpstreamProcess
    v2: UpstreamProcess
    root: Path
    keys: dict[str, str] = field(default_factory=dict)  # author: admin; approver; user

    def cli(self, *args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, **({API_KEY_ENV: self.keys[key]} if key else {})}
        return subprocess.run([str(BIN / "inferplane"), *args, "--config",
                               str(self.gateway.config)], capture_output=True, text=True,
                              timeout=120, check=False, env=env)

    def admin(self, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateway.url}/admin/v1{path}", timeout=30,
                             headers={"authorization": f"Bearer {self.keys[who]}"}, **kw)

    def eval(self, version: str, suite: Path) -> subprocess.CompletedProcess[str]:
        return self.cli("eval", version, "--suite", str(suite), "--url", self.gateway.url,
                        "--json", key="author")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = Path(tmp_path_factory.mktemp("evaluation"))
    with ExitStack() as stack:
        v1 = stack.enter_context(UpstreamProcess("old", api_key=KEY, args=["--no-log"]))
        v2 = stack.enter_context(UpstreamProcess("new", api_key=KEY, args=["--no-log"]))
        text = ledger_yaml(root) + (
            "governance: {require_approval: true, approvals: 1, require_evaluation: true}\n"
            "models: [{name: chat}]\ndeployments:\n")
        for name, up in (("v1", v1), ("v2", v2)):
            text += (f"  - {{name: d-{name}, model: chat, version: chat-{name}, provider: "
                     f"openai, base_url: '{up.url}/v1', api_key: 'env:UPSTREAM_KEY', "
                     "upstream_model: echo-1}\n")
        gateway = stack.enter_context(running_gateway(root, text, env={"UPSTREAM_KEY": KEY}))
        (root / "suite.jsonl").write_text(SUITE)
        world = World(gateway, v1, v2, root)
        for who, scopes in (("author", "admin,inference"), ("approver", "approve"),
                            ("user", "inference")):
            made = world.cli("keys", "create", "--tenant", "ops", "--scopes", scopes)
            assert made.returncode == 0, made.stderr
            world.keys[who] = made.stdout.strip()
        time.sleep(0.6)  # the gateway sees the keys (tenancy.poll_interval_ms)
        yield world


def test_a_suite_runs_through_the_gateway_pinned_to_an_unapproved_version(world: World) -> None:
    before = world.v1.stats()["requests"]
    done = world.eval("chat-v2", world.root / "suite.jsonl")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    assert (result["passed"], result["total"], result["gate_passed"]) == (3, 4, True)
    assert result["failed"] == ["wrong"]
    assert world.v2.stats()["requests"] == 4 and world.v1.stats()["requests"] == before
    # not pinned, the same unapproved version is refused as before
    plain = httpx.post(world.gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {world.keys['user']}"})
    assert plain.status_code == 503 and "not approved" in plain.text
    shown = json.loads(world.cli("models", "show", "chat-v2").stdout)
    latest = shown["evaluations"][-1]
    assert latest["suite"] == "echo@3" and latest["passed"] and latest["score"] == 0.75


def test_below_the_threshold_the_command_fails_and_approval_waits(world: World) -> None:
    strict = world.root / "strict.jsonl"
    strict.write_text(SUITE.replace('"threshold": 0.75', '"threshold": 0.9'))
    failed = world.eval("chat-v1", strict)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert json.loads(failed.stdout)["gate_passed"] is False
    card = world.admin("PUT", "/models/chat-v1/card", "author",
                       json={"card": CARD.format(version="chat-v1")})
    assert card.status_code == 200, card.text
    refused = world.admin("POST", "/models/chat-v1/approve", "approver", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "evaluation_required"
    assert "failed its latest evaluation" in refused.json()["error"]["message"]
    assert world.eval("chat-v1", world.root / "suite.jsonl").returncode == 0
    approved = world.admin("POST", "/models/chat-v1/approve", "approver", json={})
    assert approved.status_code == 200 and approved.json()["stage"] == "approved"
    time.sleep(0.6)  # every process applies the approval within governance.poll_interval_ms
    served = httpx.post(world.gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {world.keys['user']}"})
    assert served.status_code == 200 and served.headers["x-inferplane-version"] == "chat-v1"


def test_pinning_needs_the_approve_or_admin_scope(world: World) -> None:
    pinned = httpx.post(world.gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {world.keys['user']}",
                 "x-inferplane-version": "chat-v2"})
    assert pinned.status_code == 403, pinned.text
    assert pinned.json()["error"]["param"] == "x-inferplane-version"
    unknown = httpx.post(world.gateway.url + "/v1/chat/completions", timeout=30, json={
        "model": "chat", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {world.keys['author']}",
                 "x-inferplane-version": "chat-v7"})
    assert unknown.status_code == 400 and "has no version 'chat-v7'" in unknown.text


def test_judge_checks_ask_the_judge_model_through_the_gateway(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """The fake upstreams echo their name first: a judge upstream called PASS always passes,
    one called FAIL always fails; governance.judge_model is the default judge."""
    root = Path(tmp_path_factory.mktemp("judge"))
    with ExitStack() as stack:
        ups = {name: stack.enter_context(UpstreamProcess(name, api_key=KEY, args=["--no-log"]))
               for name in ("answers", "PASS", "FAIL")}
        text = ledger_yaml(root) + ("governance: {judge_model: judge-yes}\n"
                                    "models: [{name: chat}, {name: judge-yes}, {name: judge-no}]\n"
                                    "deployments:\n")
        for model, up in (("chat", ups["answers"]), ("judge-yes", ups["PASS"]),
                          ("judge-no", ups["FAIL"])):
            text += (f"  - {{name: d-{model}, model: {model}, provider: openai, base_url: "
                     f"'{up.url}/v1', api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}}\n")
        gateway = stack.enter_context(running_gateway(root, text, env={"UPSTREAM_KEY": KEY}))
        suite = root / "judged.jsonl"
        suite.write_text('{"suite": "judged", "threshold": 1}\n'
                         '{"id": "polite", "messages": [{"role": "user", "content": "hi"}], '
                         '"checks": [{"contains": "echo: hi"}, {"judge": "is polite"}]}\n')

        def run(*judge: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [str(BIN / "inferplane"), "eval", "d-chat", "--suite", str(suite), "--url",
                 gateway.url, "--config", str(gateway.config), "--json", *judge],
                capture_output=True, text=True, timeout=120, check=False)

        passed = run()  # governance.judge_model
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert json.loads(passed.stdout)["items"][0]["checks"][1]["passed"] is True
        failed = run("--judge", "judge-no")
        assert failed.returncode == 1, failed.stdout + failed.stderr
        assert ups["FAIL"].stats()["requests"] == 1 and ups["PASS"].stats()["requests"] == 1
