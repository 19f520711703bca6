"""The EU AI Act exports through a real gateway and the CLI: requests served, a version carded
and approved, an incident opened and reported; then the Annex IV documentation (nine sections
filled from that data, a PDF with pages), the Art. 12 event log and the incident draft. A
high-risk system with short retention is refused at start."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from inferplane.config import GovernanceConfig
from inferplane.governance.registry import Registry
from tests.upstream.process import UpstreamProcess

from .gateway_proc import GatewayProc, free_port, running_gateway

KEY = "sk-upstream-compliance"
BIN = Path(sys.executable).parent / "inferplane"
RULES = Path(__file__).parents[2] / "deploy" / "prometheus" / "inferplane-rules.yml"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("compliance", api_key=KEY) as up:
        yield up


def _config(root: Path, upstream: UpstreamProcess, retention: int | None = None) -> str:
    kept = "" if retention is None else f", retention_days: {retention}"
    return (f"store: {{url: 'sqlite:///{root}/ledger.db'}}\n"
            f"ledger: {{dir: '{root}/wal', commit_interval_ms: 20{kept}}}\n"
            "audit: {checkpoint_interval_s: 0.3}\n"
            "models:\n  - name: chat\n    routing: {residency: [local]}\n  - name: spare\n"
            "deployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n"
            f"  - {{name: up2, model: spare, provider: openai, base_url: '{upstream.url}/v1', "
            "api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}\n"
            "systems:\n  - name: triage\n    models: [chat]\n    high_risk: true\n"
            "    intended_purpose: Sorting support tickets by urgency\n"
            "    provider: Example GmbH\n")


def _cli(config: Path, *args: str) -> str:
    done = subprocess.run([str(BIN), *args, "--config", str(config)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_annex_iv_logs_and_incidents_from_live_data(tmp_path: Path,
                                                    upstream: UpstreamProcess) -> None:
    root = tmp_path / "gw"
    with running_gateway(root, _config(root, upstream), env={"UPSTREAM_KEY": KEY}) as gateway:
        assert "high-risk system(s) triage" in gateway.log.read_text()
        ids = []
        for model in ("chat", "chat", "chat", "spare"):
            r = httpx.post(f"{gateway.url}/v1/chat/completions", timeout=30, json={
                "model": model, "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 200, r.text
            ids.append(r.headers["x-request-id"])
        gateway.ledger_row(ids[-1])
        registry = Registry.open(f"sqlite:///{root}/ledger.db")
        try:
            registry.store_card("up", "---\nlicense: apache-2.0\n---\n# Echo\n\n## Intended use"
                                "\nTests.\n", "key:author")
            registry.approve("up", "key:approver", GovernanceConfig(card_fields=["license"]),
                             comment="looks fine")
        finally:
            registry.close()
        config = gateway.config
        opened = _cli(config, "incidents", "open", "--system", "triage", "--kind",
                      "widespread", "--detected", "2026-01-01T00:00Z", "--summary",
                      "Urgent tickets ranked low")
        assert "incident 1 opened; initial report due 2026-01-03 00:00:00 UTC" in opened
        listed = _cli(config, "incidents", "list")
        assert "initial report overdue" in listed and "widespread" in listed
        metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        deadline = time.monotonic() + 10
        while 'inferplane_incident_report_deadline_seconds{system="triage"}' not in metrics:
            assert time.monotonic() < deadline, "no incident gauge"
            time.sleep(0.2)
            metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
        report = tmp_path / "initial.txt"
        report.write_text("Initial report: ranking model rolled back.")
        assert "final report pending" in _cli(config, "incidents", "report", "--id", "1",
                                              "--initial", str(report))
    out = tmp_path / "doc"
    _cli(config, "compliance", "annex-iv", "--system", "triage", "--out", str(out),
         "--rules", str(RULES))
    md = (out / "annex-iv-triage.md").read_text()
    sections = re.split(r"\n## (?:\d\. |Signed checkpoint)", md)[1:]
    assert re.findall(r"\n## (\d)\. ", md) == [str(n) for n in range(1, 10)]
    body = dict(zip(range(1, 11), sections, strict=True))
    assert "Sorting support tickets" in body[1] and "Example GmbH" in body[1]
    assert "Deployer: **TO BE COMPLETED**" in body[1]
    assert "| up | chat | approved |" in body[2] and "license: apache-2.0" in body[2]
    assert "| up | 3 |" in body[2] and "up2" not in body[2]  # spare is not the system's
    assert "key:approver" in body[3] and "looks fine" in body[3] and "local" in body[3]
    assert "| chat | 3 | 0.00% |" in body[4]
    assert "Urgent tickets ranked low" in body[5]
    assert "governance.approve" in body[6] and "incident.open" in body[6]
    assert "**TO BE COMPLETED**" in body[7] and "**TO BE COMPLETED**" in body[8]
    assert "InferplaneIncidentReportDue" in body[9]
    assert "inferplane_requests_total" in body[9]
    checkpoint = body[10].split("```")[1].strip().splitlines()
    assert checkpoint[0].startswith("inferplane.local/audit/") and checkpoint[-1][0] == "—"
    pdf = (out / "annex-iv-triage.pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and pdf.count(b"/Type /Page\n") + pdf.count(
        b"/Type /Page ") + pdf.count(b"/Type /Page>") >= 3

    logs = tmp_path / "art12.jsonl"
    _cli(config, "compliance", "logs", "--system", "triage", "--from", "2020-01-01",
         "--out", str(logs))
    lines = [orjson.loads(line) for line in logs.read_text().splitlines()]
    assert lines[0]["type"] == "header" and lines[0]["checkpoint"].startswith("inferplane")
    usage = [x for x in lines if x["type"] == "usage"]
    assert sorted(x["id"] for x in usage) == sorted(ids[:3])  # not the spare model's
    kinds = [x["kind"] for x in lines if x["type"] == "audit"]
    assert {"config.load", "governance.approve", "incident.open", "incident.report",
            "ledger.batch"} <= set(kinds)
    stamps = [x["ts"] for x in lines[1:]]
    assert stamps == sorted(stamps)
    empty = tmp_path / "none.jsonl"
    _cli(config, "compliance", "logs", "--system", "triage", "--from", "2020-01-01",
         "--to", "2020-01-02", "--out", str(empty))
    assert len(empty.read_text().splitlines()) == 1

    drafted = _cli(config, "incidents", "export", "--id", "1", "--out", str(tmp_path / "inc"),
                   "--from", "2020-01-01")
    draft = Path(drafted.strip()).read_text()
    assert "widespread (report within 2 days" in draft and "| chat | 3 | 0 |" in draft
    assert "Causal link between the AI system and the incident: **TO BE COMPLETED**" in draft


def test_a_high_risk_system_with_short_retention_is_refused_at_start(
        tmp_path: Path, upstream: UpstreamProcess) -> None:
    root = tmp_path / "gw"
    root.mkdir()
    path = root / "inferplane.yaml"
    path.write_text(_config(root, upstream, retention=90))
    gateway = GatewayProc(root, free_port(), path, env={"UPSTREAM_KEY": KEY})
    with pytest.raises(RuntimeError, match="gateway exited"):
        gateway.start(timeout=60)
    assert "ledger.retention_days is 90" in gateway.log.read_text()
