"""deploy/prometheus/: the alerting rules load, fire on the series they should and on no others
(promtool test rules), and read only metrics the gateway exports."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from inferplane.ledger.record import UsageRecord
from inferplane.observe.governance import GovernanceView
from inferplane.observe.metrics import Metrics
from inferplane.request_accounting import Timings
from inferplane.routing.health import DeploymentStats
from inferplane.tenancy.budget import BudgetStanding

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def promtool(*args: str) -> str:
    path = shutil.which("promtool")
    assert path is not None, "promtool is not installed: run `make services`"
    done = subprocess.run([path, *args], cwd=RULES, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_the_rules_are_valid() -> None:
    assert "SUCCESS" in promtool("check", "rules", "inferplane-rules.yml")


def test_the_rules_fire_on_what_they_should_and_nothing_else() -> None:
    assert "SUCCESS" in promtool("test", "rules", "inferplane-rules.test.yml")


class Engine:
    async def status(self) -> dict[str, Any]:
        return {"running": 1, "waiting": 0, "kv_cache_usage": 0.1,
                "prefix_cache_queries": 1, "prefix_cache_hits": 0}


def test_every_metric_the_rules_read_is_exported() -> None:
    metrics = Metrics(["m"], {"local": Engine()}, {"local": DeploymentStats()})
    metrics.observe(UsageRecord(
        id="r", ts=0.0, endpoint="chat.completions", model="m", deployment="local",
        provider="llamacpp", prompt_tokens=1, completion_tokens=2, ttft_ms=1.0, latency_ms=2.0,
        status=200, error_type=None, finish_reason="stop", stream=True, engine_seconds=0.0,
        cost_usd=0.0), Timings(0.0, 0.001, [{"deployment": "local", "outcome": "ok"}]))
    metrics.governance = lambda: GovernanceView(("m",), (("model", "m"),), {"m": 2})
    metrics.budgets = [BudgetStanding("tenant:t", 100.0, 12.5, 1.8e9)]
    asyncio.run(metrics.refresh())
    exposition = metrics.exposition().decode()
    exported = {name for family in text_string_to_metric_families(exposition)
                for name in (family.name, *(s.name for s in family.samples))}
    groups = yaml.safe_load((RULES / "inferplane-rules.yml").read_text())["groups"]
    text = "\n".join(rule["expr"] + "\n" + str(rule.get("annotations", ""))
                     for group in groups for rule in group["rules"])
    read = set(re.findall(r"(?<![:\w])(inferplane_\w+)", text))  # not a recording rule's
    assert read and read <= exported, read - exported
    le = re.findall(r'le="([^"]+)"', text)
    assert le and all(f'le="{b}"' in exposition for b in le)
