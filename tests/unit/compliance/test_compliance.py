"""The pure parts of the EU AI Act duties: Art. 73 deadlines, the six-month retention rule,
Annex IV sections (what data fills and what stays TO BE COMPLETED), the monitoring plan."""

from __future__ import annotations

from typing import Any

import pytest

from inferplane.compliance import annex_iv
from inferplane.compliance.deadlines import DAY, Clock, IncidentKind, next_deadline, report_due
from inferplane.compliance.facts import Facts, Usage
from inferplane.compliance.incidents import Incident
from inferplane.compliance.monitoring import read_plan
from inferplane.compliance.retention import MIN_DAYS, retention_notice, retention_problem
from inferplane.compliance.scope import scope_of
from inferplane.compliance.slo import summarize
from inferplane.config import Config
from inferplane.errors import NotFound


def config(**extra: Any) -> Config:
    system = {"name": "triage", "models": ["m"], "high_risk": True, **extra.pop("system", {})}
    return Config.model_validate({
        "models": [{"name": "m"}, {"name": "other"}],
        "deployments": [{"name": "d", "model": "m", "provider": "openai",
                         "base_url": "http://x/v1", "upstream_model": "x"},
                        {"name": "o", "model": "other", "provider": "openai",
                         "base_url": "http://x/v1", "upstream_model": "x"}],
        "systems": [system], **extra})


@pytest.mark.parametrize(("kind", "days"), [(IncidentKind.DEATH, 10),
                                            (IncidentKind.CRITICAL_INFRASTRUCTURE, 2),
                                            (IncidentKind.WIDESPREAD, 2),
                                            (IncidentKind.OTHER, 15)])
def test_each_kind_of_incident_has_its_deadline_from_awareness(kind: IncidentKind,
                                                               days: int) -> None:
    assert report_due(kind, 1000.0) == 1000.0 + days * DAY


def test_a_clock_runs_until_the_initial_report_then_waits_for_the_final() -> None:
    clock = Clock(due=100.0, initial_at=None, final_at=None)
    assert clock.state(50.0) == "initial report due"
    assert clock.state(150.0) == "initial report overdue"
    filed = Clock(100.0, 90.0, None)
    assert filed.state(150.0) == "final report pending" and filed.pending_deadline() is None
    assert Clock(100.0, 90.0, 120.0).state(150.0) == "closed"
    assert next_deadline([filed, Clock(300.0, None, None), Clock(200.0, None, None)]) == 200.0
    assert next_deadline([filed]) is None


def test_a_high_risk_system_refuses_logs_kept_under_six_months() -> None:
    assert retention_problem(config()) is None  # kept forever
    assert retention_problem(config(ledger={"retention_days": MIN_DAYS},
                                    audit={"retention_days": 400})) is None
    short = retention_problem(config(audit={"retention_days": MIN_DAYS - 1}))
    assert short is not None and "audit.retention_days is 182" in short and "\n" not in short
    assert "ledger" not in short.split("but")[1]
    low = config(system={"high_risk": False}, ledger={"retention_days": 30})
    assert retention_problem(low) is None and retention_notice(low) is None
    notice = retention_notice(config(ledger={"retention_days": 365}))
    assert notice is not None and "triage" in notice and "365 days" in notice


def test_a_system_must_name_declared_models() -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        config(system={"models": ["nope"]})
    with pytest.raises(NotFound, match="triage"):
        scope_of(config(), "elsewhere")


def test_the_scope_covers_the_systems_models_and_tenants() -> None:
    scope = scope_of(config(system={"tenants": ["acme"]}), "triage")
    assert [d.name for d in scope.deployments] == ["d"] and scope.versions == ("d",)
    assert scope.covers({"model": "m", "tenant": "acme"})
    assert not scope.covers({"model": "m", "tenant": "globex"})
    assert not scope.covers({"model": "other", "tenant": "acme"})
    assert scope.covers_entry({"model": "m"}, "governance.approve")
    assert not scope.covers_entry({"model": "other"}, "governance.approve")
    assert scope.covers_entry({"system": "triage"}, "incident.open")


def test_slo_figures_per_model() -> None:
    rows = [{"model": "m", "status": 200, "ttft_ms": float(t)} for t in range(1, 101)]
    rows += [{"model": "m", "status": 503, "ttft_ms": None}] * 10
    slo = summarize(rows)["m"]
    assert slo.requests == 110 and slo.server_errors == 10
    assert (slo.ttft_p50_ms, slo.ttft_p95_ms, slo.ttft_p99_ms) == (50.0, 95.0, 99.0)


def _facts(cfg: Config, plan_text: str | None = None) -> Facts:
    incident = Incident(1, "triage", IncidentKind.OTHER, 0.0, 15 * DAY, "wrong triage", "cli:a",
                        0.0, None, None, None, None)
    return Facts(
        cfg, scope_of(cfg, "triage"), 100.0,
        [{"version": "d", "model": "m", "stage": "approved", "registered_by": "gw",
          "registered_at": 1.0, "card": "---\nlicense: mit\n---\n# Card", "evaluations": [
              {"suite": "qa", "metric": "acc", "score": 0.9, "threshold": 0.8, "passed": True,
               "actor": "cli:e", "ts": 2.0}]}],
        [{"id": 1, "ts": 3.0, "actor": "key:ana", "action": "approve", "target": "d",
          "from_stage": None, "to_stage": None, "reason": "ok"}],
        [], {"d": Usage(3, 30, 1.5, 3600.0, 1.0, 0.1, 0.01)}, summarize(
            [{"model": "m", "status": 200, "ttft_ms": 12.0}]), [incident],
        [{"index": 4, "ts": 3.0, "kind": "governance.approve", "actor": "key:ana",
          "data": {"model": "m", "target": "d"}}], 2, "origin\n5\nroot=\n\n— sig\n", 5,
        None if plan_text is None else read_plan(plan_text))


def test_annex_iv_fills_what_the_data_says_and_marks_what_only_a_person_can_write() -> None:
    sections = annex_iv.sections(_facts(config(system={"intended_purpose": "Sort tickets"})))
    assert [s.number for s in sections] == list(range(1, 10))
    text = {s.number: "\n".join(s.lines) for s in sections}
    assert "Sort tickets" in text[1] and "Provider: **TO BE COMPLETED**" in text[1]
    assert "| d | m | approved |" in text[2] and "license: mit" in text[2]
    assert "key:ana" in text[3] and "approve" in text[3]
    assert "| qa | acc | 0.9 |" in text[4] and "| m | 1 | 0.00% | 12.0 |" in text[4]
    assert "wrong triage" in text[5] and "initial report due" in text[5]
    assert "governance.approve" in text[6] and "5 entries" in text[6]
    for number in (7, 8):  # nothing in the data says these: never invented
        assert sections[number - 1].to_complete
        assert text[number].startswith(annex_iv.TODO)
    assert "no Prometheus rules file" in text[9] and sections[8].to_complete


def test_annex_iv_states_the_purpose_as_to_be_completed_when_the_config_has_none() -> None:
    first = annex_iv.sections(_facts(config()))[0]
    assert "Intended purpose: **TO BE COMPLETED**" in "\n".join(first.lines)


def test_the_monitoring_plan_comes_from_the_rules() -> None:
    rules = ("groups:\n- name: g\n  rules:\n  - record: model:inferplane_x:ratio\n"
             "    expr: sum(rate(inferplane_requests_total[5m]))\n"
             "  - alert: Burn\n    expr: model:inferplane_x:ratio > 0.1\n    for: 5m\n"
             "    labels: {severity: page}\n    annotations: {summary: burning}\n")
    text = "\n".join(annex_iv.sections(_facts(config(), rules))[8].lines)
    assert "`inferplane_requests_total`" in text and "inferplane_x`" not in text
    assert "| Burn | page | 5m | burning |" in text


def test_the_document_ends_with_the_checkpoint_text() -> None:
    lines = annex_iv.document(_facts(config()))
    assert lines[0].startswith("# Technical documentation") and "— sig" in lines
    assert sum(line.startswith("## ") for line in lines) == 10
