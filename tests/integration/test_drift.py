"""Drift detection in a real gateway in front of a real (echo) upstream, with the shipped text
encoder: a stable workload of English questions raises nothing; a shift to code prompts is
drift in ``GET /admin/v1/drift``, ``/metrics`` and ``inferplane drift report``; a tenant's key
sees only its own rows; ``inferplane drift reset`` makes the new traffic the reference."""

from __future__ import annotations

import random
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, ledger_yaml, running_gateway
from .terminal import run_on_terminal

KEY = "sk-upstream-drift"
WINDOW = 40
QUESTIONS = ["How do I {} my {} before winter?", "What is the best way to {} a {}?",
             "Why does my {} need to {} every week?", "Can you explain how to {} an old {}?",
             "Is it safe to {} a {} at home?", "When should I {} the {} in spring?"]
VERBS = ["clean", "paint", "repair", "store", "water", "check", "move", "wash"]
NOUNS = ["garden", "bicycle", "kitchen", "roof", "car", "fence", "lawn", "window"]
CODE = ["def {0}_{1}(items):\n    return [x for x in items if x.{0}()]",
        "function {0}{1}(a, b) {{ return a.{0}(b); }}\nconst r = {0}{1}(1, 2);",
        "SELECT {0}, {1} FROM inventory WHERE {0} > 3;\nSELECT count(*) FROM {1};",
        "for (int i = 0; i < n; i++) {{ {0}(items[i]); {1}++; }}"]


def english(rng: random.Random) -> str:
    return rng.choice(QUESTIONS).format(rng.choice(VERBS), rng.choice(NOUNS))


def code(rng: random.Random) -> str:
    return rng.choice(CODE).format(rng.choice(VERBS), rng.choice(NOUNS))


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("echo", api_key=KEY) as up:
        yield up


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, upstream: UpstreamProcess
            ) -> Iterator[GatewayProc]:
    root = Path(tmp_path_factory.mktemp("drift"))
    text = (ledger_yaml(root)
            + f"drift: {{enabled: true, reference_size: {WINDOW}, window_size: {WINDOW}, "
            "min_samples: 30, evaluate_every: 10, alpha: 0.001}\n"
            "models:\n  - name: chat\n    aliases: [chat-latest]\n"
            "deployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n")
    with running_gateway(root, text, env={"UPSTREAM_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(scope="module")
def keys(gateway: GatewayProc) -> dict[str, str]:
    """acme's inference and ledger keys, an operator's viewer key and an admin key (made in
    the store with `inferplane keys create`, as an operator would)."""
    def create(tenant: str, scopes: str) -> str:
        done = subprocess.run(
            [str(BIN / "inferplane"), "keys", "create", "--tenant", tenant, "--scopes", scopes,
             "--config", str(gateway.config)], capture_output=True, text=True, timeout=60,
            check=True)
        return done.stdout.strip()

    out = {"admin": create("ops", "admin"), "viewer": create("ops", "viewer"),
           "inference": create("acme", "inference"), "ledger": create("acme", "read:ledger")}
    time.sleep(0.5)  # the gateway sees the keys within tenancy.poll_interval_ms
    return out


def _auth(key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"} if key else {}


def send(gateway: GatewayProc, key: str, prompts: list[str], model: str = "chat") -> None:
    client = openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)
    for i, prompt in enumerate(prompts):
        kw: dict[str, Any] = {"stream": True} if i % 2 else {}
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": prompt}], **kw)
        if kw:
            for _ in answer:
                pass


def drift(gateway: GatewayProc, key: str, **params: str) -> dict[str, Any]:
    got = httpx.get(f"{gateway.url}/admin/v1/drift", params=params, headers=_auth(key),
                    timeout=30)
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


def wait_for(gateway: GatewayProc, key: str, done: Callable[[list[dict[str, Any]]], bool],
             timeout: float = 120.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        rows: list[dict[str, Any]] = drift(gateway, key)["reports"]
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def model_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["feature"]: r for r in rows if r["tenant"] is None}


def cli(gateway: GatewayProc, *args: str) -> str:
    done = subprocess.run([str(BIN / "inferplane"), "drift", *args, "--url", gateway.url,
                           "--config", str(gateway.config)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def on_terminal(gateway: GatewayProc, *args: str) -> str:
    """The command's output on an 80-column terminal."""
    status, out = run_on_terminal([str(BIN / "inferplane"), "drift", *args, "--url",
                                   gateway.url, "--config", str(gateway.config)],
                                  env={"COLUMNS": "80"})
    assert status == 0, out
    return out


def test_stable_then_shifted_traffic(gateway: GatewayProc, keys: dict[str, str]) -> None:
    rng = random.Random(11)
    viewer = keys["viewer"]
    send(gateway, keys["inference"], [english(rng) for _ in range(2 * WINDOW)])
    rows = wait_for(gateway, viewer,
                    lambda r: model_rows(r).get("topic", {}).get("current_n", 0) >= WINDOW)
    stable = model_rows(rows)
    assert set(stable) == {"prompt_tokens", "completion_tokens", "finish_reason", "outcome",
                           "refusal", "script", "topic"}
    assert all(r["p_value"] is not None and r["current_n"] == WINDOW for r in stable.values())
    assert not [r for r in rows if r["drifted"]], rows
    assert stable["topic"]["test"] == "mmd" and stable["script"]["test"] == "chi2"
    assert stable["topic"]["threshold"] == pytest.approx(0.001 / 7)
    report = cli(gateway, "report", "--key", viewer)
    assert "stable" in report and "DRIFT" not in report
    report = on_terminal(gateway, "report", "--key", viewer)
    assert "prompt_tokens" in report and "stable" in report and "…" not in report
    assert max(len(line) for line in report.splitlines()) <= 80, report

    # the same number of code prompts (half of them through the alias)
    send(gateway, keys["inference"], [code(rng) for _ in range(WINDOW)], model="chat-latest")
    rows = wait_for(gateway, viewer, lambda r: model_rows(r)["topic"]["drifted"]
                    and model_rows(r)["script"]["drifted"])
    shifted = model_rows(rows)
    assert shifted["topic"]["drifted"] and shifted["script"]["drifted"], shifted
    assert shifted["topic"]["p_value"] < shifted["topic"]["threshold"]
    assert not shifted["outcome"]["drifted"] and not shifted["refusal"]["drifted"]
    acme = {r["feature"]: r for r in rows if r["tenant"] == "acme"}
    assert acme["script"]["drifted"]

    body = drift(gateway, viewer, model="chat")
    assert set(body) == {"generated_at", "reports"}
    assert set(body["reports"][0]) == {"model", "tenant", "feature", "test", "statistic",
                                       "p_value", "threshold", "drifted", "reference_n",
                                       "current_n"}
    metrics = httpx.get(f"{gateway.url}/metrics", headers=_auth(viewer), timeout=30).text
    assert 'inferplane_drift_detected{feature="script",model="chat",tenant=""} 1.0' in metrics
    assert 'inferplane_drift_detected{feature="script",model="chat",tenant="acme"} 1.0' in metrics
    assert "inferplane_drift_samples_dropped_total 0.0" in metrics
    # the dashboard finds the endpoint in the admin API's document (and draws the rows)
    document = httpx.get(f"{gateway.url}/admin/openapi.json", timeout=30).json()
    assert "/v1/drift" in document["paths"]
    report = cli(gateway, "report", "--model", "chat", "--key", viewer)
    assert "DRIFT" in report and "inferplane drift reset" in report

    # acme's ledger key sees acme's rows only; the model's whole traffic is not its to see
    own = drift(gateway, keys["ledger"])["reports"]
    assert own and {r["tenant"] for r in own} == {"acme"}

    assert "reset 2 drift windows" in cli(gateway, "reset", "--model", "chat",
                                          "--key", keys["admin"])
    after = model_rows(drift(gateway, viewer)["reports"])
    assert all(r["p_value"] is None and not r["drifted"] for r in after.values())
    assert after["script"]["reference_n"] == WINDOW and after["script"]["current_n"] == 0


def test_refusals_and_errors_of_the_api(gateway: GatewayProc, keys: dict[str, str]) -> None:
    unknown = httpx.get(f"{gateway.url}/admin/v1/drift", params={"model": "nope"},
                        headers=_auth(keys["viewer"]), timeout=30)
    assert unknown.status_code == 404 and "nope" in unknown.json()["error"]["message"]
    reset = httpx.post(f"{gateway.url}/admin/v1/drift/reset", headers=_auth(keys["viewer"]),
                       timeout=30)
    assert reset.status_code == 403
    anonymous = httpx.get(f"{gateway.url}/admin/v1/drift", timeout=30)
    assert anonymous.status_code == 401


def test_a_gateway_without_drift_says_so(tmp_path: Path, upstream: UpstreamProcess) -> None:
    text = (ledger_yaml(tmp_path) + "models:\n  - name: chat\ndeployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n")
    with running_gateway(tmp_path, text, env={"UPSTREAM_KEY": KEY}) as gateway:
        document = httpx.get(f"{gateway.url}/admin/openapi.json", timeout=30).json()
        assert "/v1/drift" not in document["paths"]  # the dashboard shows no drift panel
        done = subprocess.run([str(BIN / "inferplane"), "drift", "report", "--url", gateway.url,
                               "--config", str(gateway.config)], capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 1
        assert "Drift detection is off" in done.stderr and "drift: {enabled: true}" in done.stderr
