"""The compliance exports written to disk: the Annex IV documentation (Markdown and PDF), the
Art. 12 event log of a period, and an incident report draft. Thin: the content is the pure
modules'."""

from __future__ import annotations

import time
from pathlib import Path

from inferplane.audit.log import AuditLog
from inferplane.compliance import annex_iv, event_log, facts, incident_report
from inferplane.compliance.incidents import Incidents
from inferplane.compliance.monitoring import read_plan
from inferplane.compliance.scope import scope_of
from inferplane.compliance.slo import summarize
from inferplane.config import Config
from inferplane.ledger.store import make_engine

DAY = 86_400.0


def annex_iv_files(config: Config, system: str, log: AuditLog, out: Path,
                   rules: Path | None) -> tuple[Path, Path, int]:
    """Write ``annex-iv-<system>.md`` and ``.pdf`` into ``out``; return both and the pages."""
    scope = scope_of(config, system)
    plan = read_plan(rules.read_text()) if rules is not None else None
    lines = annex_iv.document(facts.gather(config, scope, log, plan))
    out.mkdir(parents=True, exist_ok=True)
    md, pdf = out / f"annex-iv-{system}.md", out / f"annex-iv-{system}.pdf"
    md.write_text("\n".join(lines) + "\n")
    from inferplane.compliance.pdf import write_pdf  # matplotlib: only when writing one

    pages = write_pdf(lines, pdf, f"Annex IV technical documentation: {system}")
    return md, pdf, pages


def event_log_file(config: Config, system: str, log: AuditLog, since: float, until: float,
                   out: Path) -> int:
    """Write the Art. 12 log of ``[since, until)`` to ``out``; return its number of lines."""
    scope = scope_of(config, system)
    checkpoint, size = facts.covering_checkpoint(log)
    header = {"system": system, "from": since, "to": until, "checkpoint": checkpoint,
              "tree_size": size, "generated_at": time.time(),
              "models": list(scope.models), "tenants": list(scope.system.tenants)}
    count = 0
    with out.open("wb") as f:
        for line in event_log.lines(header, facts.usage_records(config, scope, since, until),
                                    facts.audit_entries(log, scope, size, since, until)):
            f.write(line)
            count += 1
    return count


def incident_files(config: Config, incident_id: int, log: AuditLog, out: Path,
                   window: tuple[float | None, float | None]) -> Path:
    """Write the report draft of incident ``incident_id`` into ``out``; the window defaults to
    the day before awareness up to now."""
    engine = make_engine(config.store.url)
    try:
        incident = Incidents(engine).get(incident_id)
    finally:
        engine.dispose()
    scope = scope_of(config, incident.system)
    now = time.time()
    since, until = window[0] or incident.detected_at - DAY, window[1] or now
    checkpoint, size = facts.covering_checkpoint(log)
    slo = summarize(facts.usage_records(config, scope, since, until))
    entries = list(facts.audit_entries(log, scope, size, since, until))
    lines = incident_report.draft(incident, scope, (since, until), now, slo, entries,
                                  checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"incident-{incident_id}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
