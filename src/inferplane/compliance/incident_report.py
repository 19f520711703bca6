"""A serious-incident report draft (Art. 73): the incident, its deadline, and the facts of the
affected window from the ledger and the audit log; what needs a person's judgement (the causal
link, the corrective action) is marked TO BE COMPLETED. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferplane.compliance.annex_iv import TODO, table, when
from inferplane.compliance.deadlines import REPORT_DAYS
from inferplane.compliance.incidents import Incident
from inferplane.compliance.scope import Scope
from inferplane.compliance.slo import Slo


def draft(incident: Incident, scope: Scope, window: tuple[float, float], now: float,
          slo: dict[str, Slo], entries: Sequence[dict[str, Any]],
          checkpoint: str | None) -> list[str]:
    s = scope.system
    out = [f"# Serious incident report (EU AI Act Art. 73): incident {incident.id}", "",
           f"- System: `{s.name}` (high-risk: {'yes' if s.high_risk else 'no'})",
           f"- Provider: {s.provider or TODO}; deployer: {s.deployer or TODO}",
           f"- Kind: {incident.kind} (report within {REPORT_DAYS[incident.kind]} days of "
           "awareness)",
           f"- Aware since: {when(incident.detected_at)}; report due: {when(incident.due_at)}; "
           f"state: {incident.clock.state(now)}",
           f"- Opened by {incident.opened_by} at {when(incident.opened_at)}",
           f"- Summary: {incident.summary}", "",
           f"## Service in the affected window ({when(window[0])} to {when(window[1])})", ""]
    out += table(("model", "requests", "server errors", "error rate", "TTFT p95 ms"),
                 ((m, v.requests, v.server_errors, f"{v.error_rate:.2%}",
                   "-" if v.ttft_p95_ms is None else f"{v.ttft_p95_ms:.1f}")
                  for m, v in slo.items()))
    out += ["", "## Changes and events in the window (audit log)", ""]
    out += table(("#", "time", "kind", "actor"),
                 ((e["index"], when(e["ts"]), e["kind"], e["actor"]) for e in entries
                  if e["kind"] != "ledger.batch"))
    out += ["", "## To be written by the provider", "",
            f"- Causal link between the AI system and the incident: {TODO}",
            f"- Persons or property affected: {TODO}",
            f"- Corrective action taken or planned: {TODO}", "",
            "## Signed checkpoint covering the entries above", "", "```",
            *(checkpoint or "(none available)").rstrip("\n").splitlines(), "```"]
    return out
