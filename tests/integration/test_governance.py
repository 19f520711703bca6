"""The model lifecycle with real gateway processes and fake upstreams: an unapproved version
never gets a request whatever the policy, fallbacks, retries and faults; four-eyes approval;
a complete card before approval; point-in-time history; and a kill reaching a second gateway
process on the same PostgreSQL store in under a second."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway

KEY = "sk-upstream-governance-77"
POLICIES = ("cost", "weighted", "latency", "round-robin")
CARD = """---
license: apache-2.0
base_model: example/base-1
---
# {version}
## Intended use
Answering support questions.
## Out-of-scope use
Medical or legal advice.
## Limitations
Short context.
## Risks
May state wrong facts confidently.
## Training data
Public documentation.
"""


def dep(name: str, model: str, up: UpstreamProcess, extra: str = "") -> str:
    return (f"  - {{name: {name}, model: {model}, provider: openai, base_url: '{up.url}/v1', "
            f"api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1{extra}}}\n")


def config(root: Path, ok: UpstreamProcess, new: UpstreamProcess) -> str:
    text = ledger_yaml(root) + (
        "governance: {require_approval: true, approvals: 1}\n"
        "breaker: {window: 50, min_requests: 40, error_threshold: 0.95}\n"
        "models:\n  - name: spare\n  - name: hist\n")
    for policy in POLICIES:
        text += (f"  - name: m-{policy}\n    routing: {{policy: {policy}, fallbacks: [spare], "
                 "retry: {max_attempts: 4, per_deployment: 2, backoff_base_s: 0}}\n")
    text += "deployments:\n" + dep("spare-1", "spare", new, ", version: spare-v9")
    for policy in POLICIES:  # the unapproved one is cheaper and weighs more: every policy
        text += dep(f"ok-{policy}", f"m-{policy}", ok,  # would pick it if it could
                    ", price: {input_per_mtok: 5, output_per_mtok: 5}")
        text += dep(f"new-{policy}", f"m-{policy}", new, f", version: {policy}-v2, weight: 9, "
                    "price: {input_per_mtok: 0.1, output_per_mtok: 0.1}")
    text += dep("h-1", "hist", ok, ", version: hist-v1") + dep("h-2", "hist", ok,
                                                                 ", version: hist-v2")
    return text


@dataclass
class World:
    gateway: GatewayProc
    ok: UpstreamProcess
    new: UpstreamProcess
    keys: dict[str, str]  # author (admin+approve), approver (approve), user (inference)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(BIN / "inferplane"), *args, "--config",
                               str(self.gateway.config)], capture_output=True, text=True,
                              timeout=60, check=False)

    def admin(self, method: str, path: str, who: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.gateway.url}/admin/v1{path}", timeout=30,
                             headers={"authorization": f"Bearer {self.keys[who]}"}, **kw)

    def metrics(self) -> str:
        return httpx.get(f"{self.gateway.url}/metrics", timeout=10,
                         headers={"authorization": f"Bearer {self.keys['author']}"}).text

    def chat(self, model: str) -> httpx.Response:
        return httpx.post(f"{self.gateway.url}/v1/chat/completions", timeout=30,
                          headers={"authorization": f"Bearer {self.keys['user']}"},
                          json={"model": model, "max_tokens": 4,
                                "messages": [{"role": "user", "content": "hi"}]})

    def approve(self, version: str) -> None:
        card = self.admin("PUT", f"/models/{version}/card", "author",
                          json={"card": CARD.format(version=version)})
        assert card.status_code == 200, card.text
        done = self.admin("POST", f"/models/{version}/approve", "approver", json={})
        assert done.status_code == 200 and done.json()["stage"] == "approved", done.text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = Path(tmp_path_factory.mktemp("governance"))
    with ExitStack() as stack:
        ok = stack.enter_context(UpstreamProcess("ok", api_key=KEY, args=["--no-log"]))
        new = stack.enter_context(UpstreamProcess("new", api_key=KEY, args=["--no-log"]))
        gateway = stack.enter_context(running_gateway(root, config(root, ok, new),
                                                      env={"UPSTREAM_KEY": KEY}))
        w = World(gateway, ok, new, {})
        for who, scopes in (("author", "admin,approve"), ("approver", "approve"),
                            ("user", "inference")):
            made = w.cli("keys", "create", "--tenant", "ops", "--scopes", scopes)
            assert made.returncode == 0, made.stderr
            w.keys[who] = made.stdout.strip()
        time.sleep(0.5)  # the gateway sees the keys (tenancy.poll_interval_ms)
        yield w


def test_nothing_serves_before_approval_and_the_ledger_says_why(world: World) -> None:
    answer = world.chat("m-cost")
    assert answer.status_code == 503, answer.text
    error = answer.json()["error"]
    assert error["code"] == "governance_blocked"
    assert "version cost-v2 is not approved" in error["message"]
    assert "spare-v9 is not approved" in error["message"]  # the fallback was held back too
    record = world.gateway.ledger_row(answer.headers["x-request-id"])
    rejected = json.loads(record["routing_reason"])["rejected"]
    assert {(r["deployment"], r["constraint"]) for r in rejected} >= {
        ("ok-cost", "governance"), ("new-cost", "governance"), ("spare-1", "governance")}
    assert world.new.stats()["requests"] == 0 and world.ok.stats()["requests"] == 0


def test_approval_needs_a_complete_card_and_a_second_pair_of_eyes(world: World) -> None:
    version = "ok-cost"
    bare = world.admin("POST", f"/models/{version}/approve", "approver", json={})
    assert bare.status_code == 409 and bare.json()["error"]["code"] == "card_incomplete"
    assert "license, intended_use, out_of_scope_use, limitations, risks, training_data" in (
        bare.json()["error"]["message"])
    partial = CARD.format(version=version).replace("## Risks\n", "## Notes\n")
    assert world.admin("PUT", f"/models/{version}/card", "author",
                       json={"card": partial}).json()["missing"] == ["risks"]
    still = world.admin("POST", f"/models/{version}/approve", "approver", json={})
    assert still.status_code == 409 and "lacks risks" in still.json()["error"]["message"]
    world.admin("PUT", f"/models/{version}/card", "author",
                json={"card": CARD.format(version=version)})
    mine = world.admin("POST", f"/models/{version}/approve", "author", json={})
    assert mine.status_code == 403 and mine.json()["error"]["code"] == "self_approval"
    user = world.admin("POST", f"/models/{version}/approve", "user", json={})
    assert user.status_code == 403  # no approve scope
    assert world.chat("m-cost").status_code == 503  # still unapproved
    done = world.admin("POST", f"/models/{version}/approve", "approver", json={})
    assert done.status_code == 200 and done.json()["stage"] == "approved", done.text
    again = world.admin("POST", f"/models/{version}/approve", "approver", json={})
    assert again.status_code == 409
    answer = world.chat("m-cost")  # the gateway that took the approval applies it at once
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-inferplane-version"] == "ok-cost"
    events = world.admin("GET", f"/models/{version}", "author").json()["events"]
    assert [e["action"] for e in events] == ["register", "card", "card", "approve", "stage"]
    assert events[-1]["to_stage"] == "approved" and events[-2]["actor"].startswith("key:")


async def _flood(world: World, n: int) -> list[httpx.Response]:
    headers = {"authorization": f"Bearer {world.keys['user']}"}
    gate = asyncio.Semaphore(16)
    async with httpx.AsyncClient(timeout=60) as http:
        async def one(i: int) -> httpx.Response:
            async with gate:
                return await http.post(
                    f"{world.gateway.url}/v1/chat/completions", headers=headers,
                    json={"model": f"m-{POLICIES[i % len(POLICIES)]}", "max_tokens": 4,
                          "messages": [{"role": "user", "content": f"request {i}"}]})
        return await asyncio.gather(*(one(i) for i in range(n)))


def test_an_unapproved_version_gets_none_of_1000_requests_under_faults(world: World) -> None:
    for policy in POLICIES[1:]:
        world.approve(f"ok-{policy}")
    world.ok.clear_requests()
    world.ok.add_faults({"kind": "status", "status": 503, "count": 40},
                        {"kind": "reset_mid_stream", "count": 20})
    began = time.monotonic()
    answers = asyncio.run(_flood(world, 800))
    world.ok.add_faults({"kind": "status", "status": 500, "count": -1})  # then: all down
    answers += asyncio.run(_flood(world, 200))
    world.ok.clear_faults()
    print(f"1000 requests in {time.monotonic() - began:.1f}s:",
          Counter(a.status_code for a in answers))
    assert world.new.stats()["requests"] == 0  # the unapproved versions, and the fallback's
    served = [a for a in answers if a.status_code == 200]
    assert len(served) > 500 and all(a.status_code != 200 for a in answers[800:])
    assert {a.headers["x-inferplane-version"] for a in served} == {
        f"ok-{p}" for p in POLICIES}
    refused = [a.json()["error"]["code"] for a in answers if a.status_code != 200]
    assert set(refused) <= {"governance_blocked", "upstream_error", "engine_unavailable"}


def test_history_answers_which_version_served_at_each_moment(world: World) -> None:
    world.approve("hist-v1")
    world.approve("hist-v2")
    marks: dict[str, float] = {}
    rollbacks = 'inferplane_rollback_moves_total{model="hist"}'
    assert f"{rollbacks} 0.0" in world.metrics()
    for step, call in (("v1", ("/models/hist-v1/rollout", {"stage": "production"})),
                       ("v2", ("/models/hist-v2/rollout", {"stage": "production"})),
                       ("back", ("/models/rollback", {"model": "hist", "reason": "slow"}))):
        moved = world.admin("POST", call[0], "author", json=call[1])
        assert moved.status_code == 200, moved.text
        for _ in range(3):
            answer = world.chat("hist")
            assert answer.status_code == 200
        marks[step] = time.time()
        time.sleep(0.3)
    expected = {"v1": "hist-v1", "v2": "hist-v2", "back": "hist-v1"}
    count = re.search(re.escape(rollbacks) + r" (\S+)", world.metrics())
    assert count is not None and float(count.group(1)) >= 1  # hist-v2 down, hist-v1 back
    assert answer.headers["x-inferplane-version"] == "hist-v1"
    time.sleep(0.5)  # the ledger's group commit
    for step, version in expected.items():
        found = world.admin("GET", "/models/history", "author",
                            params={"model": "hist", "at": marks[step], "tenant": "ops"}).json()
        assert found["production"] == [version], (step, found)
        assert found["served"]["last"]["version"] == version, (step, found)
    before = world.admin("GET", "/models/history", "author",
                         params={"model": "hist", "at": marks["v1"] - 60}).json()
    assert before["production"] == [] and before["served"]["last"] is None
    by_cli = world.cli("models", "history", "hist", "--at", str(marks["v2"]))
    assert by_cli.returncode == 0, by_cli.stderr
    assert json.loads(by_cli.stdout)["production"] == ["hist-v2"]
    listed = json.loads(world.cli("models", "list", "--model", "hist", "--json").stdout)
    assert {v["version"]: v["stage"] for v in listed} == {"hist-v1": "production",
                                                          "hist-v2": "approved"}


# -- the kill switch across processes --------------------------------------------------------


def kill_config(root: Path, db_url: str, up: UpstreamProcess) -> str:
    return (f"store: {{url: '{db_url}'}}\nledger: {{dir: '{root}/wal', commit_interval_ms: 20}}\n"
            "models:\n  - name: k\n    routing: {fallbacks: [k-spare]}\n  - name: k-spare\n"
            "  - name: solo\n"
            "deployments:\n" + dep("k-1", "k", up) + dep("k-spare-1", "k-spare", up)
            + dep("solo-1", "solo", up))


def _post(gateway: GatewayProc, model: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/chat/completions", timeout=10,
                      json={"model": model, "max_tokens": 4,
                            "messages": [{"role": "user", "content": "hi"}]})


def test_a_kill_reaches_another_process_within_a_second(tmp_path: Path,
                                                        postgres_url: str) -> None:
    from tests.services import fresh_database

    db_url = fresh_database(postgres_url, "governance_kill")
    with ExitStack() as stack:
        up = stack.enter_context(UpstreamProcess("kill", api_key=KEY, args=["--no-log"]))
        a, b = (stack.enter_context(running_gateway(
            tmp_path / name, kill_config(tmp_path / name, db_url, up),
            env={"UPSTREAM_KEY": KEY})) for name in ("a", "b"))
        assert _post(b, "solo").status_code == 200
        assert _post(b, "k").headers["x-inferplane-deployment"] == "k-1"
        sent = time.monotonic()
        killed = httpx.post(f"{a.url}/admin/v1/kills", timeout=10, json={
            "kind": "deployment", "name": "solo-1", "reason": "leaking prompts"})
        assert killed.status_code == 201, killed.text
        while (answer := _post(b, "solo")).status_code == 200:
            assert time.monotonic() - sent < 5
        elapsed = time.monotonic() - sent
        print(f"kill reached the second gateway process in {elapsed * 1000:.0f} ms")
        assert elapsed < 1.0
        error = answer.json()["error"]
        assert answer.status_code == 503 and error["code"] == "governance_blocked"
        kill_sample = 'inferplane_kill_active{kind="deployment",name="solo-1"} 1.0'
        assert kill_sample in httpx.get(f"{b.url}/metrics", timeout=10).text
        assert "killed (deployment solo-1: leaking prompts)" in error["message"]
        # a model kill: new requests fall back where a fallback exists
        assert httpx.post(f"{a.url}/admin/v1/kills", timeout=10, json={
            "kind": "model", "name": "k", "reason": "bad answers"}).status_code == 201
        time.sleep(0.6)
        assert _post(b, "k").headers["x-inferplane-deployment"] == "k-spare-1"
        unknown = httpx.post(f"{a.url}/admin/v1/kills", timeout=10, json={
            "kind": "provider", "name": "opneai", "reason": "typo"})
        assert unknown.status_code == 404
        lifted = subprocess.run([str(BIN / "inferplane"), "unkill", "deployment", "solo-1",
                                 "--reason", "fixed", "--config", str(b.config)],
                                capture_output=True, text=True, timeout=60, check=False)
        assert lifted.returncode == 0, lifted.stderr
        time.sleep(0.6)
        assert _post(a, "solo").status_code == 200 and _post(b, "solo").status_code == 200
        assert kill_sample not in httpx.get(f"{b.url}/metrics", timeout=10).text
        events = httpx.get(f"{b.url}/admin/v1/models/history", timeout=10,
                           params={"model": "solo"}).json()
        assert events["kills"] == {}
