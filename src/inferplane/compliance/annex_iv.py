"""The technical documentation of one AI system, one section per area of the EU AI Act's
Annex IV, assembled from the facts the store holds (``facts.gather``). Pure: what the data
cannot say, and only a person can write, is marked :data:`TODO`, never invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from inferplane.compliance.deadlines import REPORT_DAYS
from inferplane.compliance.facts import Facts
from inferplane.compliance.retention import MIN_DAYS

TODO = "**TO BE COMPLETED**"

TITLES = (
    "General description of the AI system and its intended purpose",
    "Elements of the AI system and its development process",
    "Monitoring, functioning and control of the AI system",
    "Appropriateness of the performance metrics",
    "Risk-management system",
    "Changes made to the system through its lifecycle",
    "Harmonised standards and other standards applied",
    "EU declaration of conformity",
    "Post-market monitoring plan (Art. 72)",
)


@dataclass(frozen=True, slots=True)
class Section:
    number: int
    title: str
    lines: tuple[str, ...]  # Markdown

    @property
    def to_complete(self) -> bool:
        return any(TODO in line for line in self.lines)


def when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table; ``|`` in a cell is escaped."""
    def cells(values: Sequence[object]) -> str:
        return "| " + " | ".join(str(v).replace("|", "\\|").replace("\n", " ")
                                 for v in values) + " |"
    body = [cells(r) for r in rows]
    return [cells(header), "|" + "---|" * len(header), *body] if body else ["(none recorded)"]


def _or_todo(value: str | None, what: str) -> str:
    return value if value else f"{TODO} ({what})"


def general(f: Facts) -> list[str]:
    s = f.scope.system
    return [
        f"- System: `{s.name}`",
        f"- Description: {_or_todo(s.description, 'what the system is, by the provider')}",
        f"- Intended purpose: {_or_todo(s.intended_purpose, 'Annex IV 1(a), by the provider')}",
        f"- Provider: {_or_todo(s.provider, 'name and address of the provider')}",
        f"- Deployer: {_or_todo(s.deployer, 'name of the deployer')}",
        f"- High-risk (Annex III): {'yes' if s.high_risk else 'no'}",
        f"- Models: {', '.join(f'`{m}`' for m in s.models)}",
        f"- Tenants: {', '.join(f'`{t}`' for t in s.tenants) or 'all tenants'}",
        f"- Interaction with other hardware or software, forms in which it is placed on the "
        f"market, instructions for use (Annex IV 1(b)-(h)): {TODO} (by the provider)",
    ]


def elements(f: Facts) -> list[str]:
    out = ["Versions in the model registry:", ""]
    out += table(("version", "model", "stage", "registered by", "registered", "card"),
                 ((v["version"], v["model"], v["stage"], v["registered_by"],
                   when(v["registered_at"]), "yes" if v["card"] else "missing")
                  for v in f.versions))
    for v in f.versions:
        if v["card"]:
            out += ["", f"Model card of `{v['version']}`:", "", "```",
                    *v["card"].strip().splitlines()[:40], "```"]
    out += ["", "Deployments (providers, hardware):", ""]
    out += table(("deployment", "model", "version", "provider", "region", "hardware"),
                 ((d.name, d.model, d.version_name, d.provider, d.region,
                   f"{d.hardware.count}x {d.hardware.accelerator}" if d.hardware else "hosted")
                  for d in f.scope.deployments))
    out += ["", f"Compute used, from the ledger (since {when(f.first_record)}):", ""]
    out += table(("deployment", "requests", "tokens", "engine s", "energy kWh", "CO2 g",
                  "water L", "cost USD"),
                 ((name, u.requests, u.tokens, f"{u.engine_seconds:.3f}",
                   f"{u.energy_j / 3.6e6:.6f}", f"{u.co2_g:.3f}", f"{u.water_l:.4f}",
                   f"{u.cost_usd:.6f}") for name, u in sorted(f.usage.items())))
    out += ["", f"Training data, design choices and validation of the models themselves: "
                f"{TODO} (by the model's provider; see each model card)"]
    return out


def control(f: Facts) -> list[str]:
    models = [m for m in f.config.models if m.name in f.scope.models]
    out = ["Routing and residency:", ""]
    out += table(("model", "policy", "fallbacks", "residency"),
                 ((m.name, m.routing.policy, ", ".join(m.routing.fallbacks) or "-",
                   ", ".join(m.routing.residency or []) or "any") for m in models))
    g = f.config.governance
    out += ["", f"Governance: approval required: {'yes' if g.require_approval else 'no'}, "
                f"{g.approvals} approver(s) other than the proposer; evaluation required: "
                f"{'yes' if g.require_evaluation else 'no'}; card fields: "
                f"{', '.join(g.card_fields)}.",
            "", "Kill switch (Art. 14(4)(e)): `inferplane kill` stops a model, version or "
                "deployment on every gateway within "
                f"{g.poll_interval_ms} ms. Active kills:", ""]
    out += table(("kind", "name", "by", "since", "reason"),
                 ((k["kind"], k["name"], k["actor"], when(k["ts"]), k["reason"])
                  for k in f.kills))
    out += ["", "Human oversight: who approved, evaluated, rolled out or killed what:", ""]
    out += table(("time", "actor", "action", "target", "stage", "reason"),
                 ((when(e["ts"]), e["actor"], e["action"], e["target"],
                   f"{e['from_stage'] or ''}->{e['to_stage'] or ''}"
                   if e["to_stage"] else "", e["reason"] or "")
                  for e in f.events if e["action"] != "register"))
    return out


def performance(f: Facts) -> list[str]:
    out = ["Evaluation results:", ""]
    out += table(("version", "suite", "metric", "score", "threshold", "passed", "by", "time"),
                 ((v["version"], e["suite"], e["metric"], e["score"], e["threshold"],
                   e["passed"], e["actor"], when(e["ts"]))
                  for v in f.versions for e in v["evaluations"]))
    out += ["", "Live service levels from the ledger (server errors are status 5xx):", ""]
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"
    out += table(("model", "requests", "error rate", "TTFT p50 ms", "p95 ms", "p99 ms"),
                 ((m, s.requests, f"{s.error_rate:.2%}", ms(s.ttft_p50_ms), ms(s.ttft_p95_ms),
                   ms(s.ttft_p99_ms)) for m, s in f.slo.items()))
    out += ["", f"Why these metrics are appropriate for the intended purpose: {TODO} "
                "(by the provider)"]
    return out


def risk(f: Facts) -> list[str]:
    r = f.config.governance.rollout
    out = [f"Rollout gates (a candidate is rolled back automatically when one fails, over "
           f"{r.window_s:g} s windows of at least {r.min_requests} requests): error rate at "
           f"most {r.max_error_rate:.1%}, at most {r.max_error_rate_increase:.1%} above the "
           f"incumbent's; TTFT p95 at most {r.max_ttft_p95_ratio:g}x; cost at most "
           f"{r.max_cost_ratio:g}x.", "", "Rollbacks and gate verdicts:", ""]
    out += table(("time", "actor", "action", "target", "reason"),
                 ((when(e["ts"]), e["actor"], e["action"], e["target"], e["reason"] or "")
                  for e in f.events if e["action"] in ("rollback", "judged", "kill", "unkill")))
    out += ["", "Serious incidents (Art. 73):", ""]
    out += table(("id", "kind", "detected", "report due", "state", "summary"),
                 ((i.id, str(i.kind), when(i.detected_at), when(i.due_at),
                   i.clock.state(f.generated_at), i.summary) for i in f.incidents))
    out += ["", f"Risks identified and their mitigation (Art. 9): {TODO} (by the provider)"]
    return out


def changes(f: Facts) -> list[str]:
    out = [f"From the tamper-evident audit log ({f.tree_size} entries under the checkpoint "
           f"below; {f.ledger_batches} ledger commit(s) of the period, covering the usage "
           f"records, are not listed one by one):", ""]
    out += table(("#", "time", "kind", "actor", "what"),
                 ((e["index"], when(e["ts"]), e["kind"], e["actor"],
                   ", ".join(f"{k}={v}" for k, v in sorted(e["data"].items())
                             if v not in (None, "", [], {}) and k != "details")[:160])
                  for e in f.audit))
    return out


def standards(_: Facts) -> list[str]:
    return [f"{TODO} (by the provider): the harmonised standards, common specifications or "
            "other standards applied, in full or in part (Art. 40, 41).",
            "", "Inferplane itself follows, for its own records: RFC 9162 (Merkle tree hashing "
            "and proofs of the audit log), C2SP tlog-checkpoint and signed-note (checkpoints), "
            "Ed25519 (RFC 8032) signatures. These are not AI Act harmonised standards."]


def declaration(_: Facts) -> list[str]:
    return [f"{TODO} (by the provider): a copy of the EU declaration of conformity (Art. 47, "
            "Annex V). Inferplane does not draw it up and does not presume conformity."]


def monitoring(f: Facts) -> list[str]:
    out = ["Measured continuously for every request: the usage ledger (one durable record "
           "per request: status, latency, time to first token, tokens, cost, energy, carbon, "
           "water) and the Prometheus metrics of docs/observability.md.",
           f"Logs kept: ledger {f.config.ledger.retention_days or 'forever'} days, audit log "
           f"{f.config.audit.retention_days or 'forever'} days (at least {MIN_DAYS} for a "
           f"high-risk system). Serious incidents are reported within "
           f"{', '.join(f'{d} days ({k})' for k, d in REPORT_DAYS.items())} of awareness.",
           ""]
    if f.plan is None:
        return [*out, f"Alert rules: {TODO} (no Prometheus rules file was given)"]
    out += ["Metrics the alerts read: " + ", ".join(f"`{m}`" for m in f.plan.metrics), "",
            "Thresholds and alerts:", ""]
    out += table(("alert", "severity", "for", "summary", "condition"),
                 ((a.name, a.severity, a.for_ or "-", a.summary, f"`{a.expr[:200]}`")
                  for a in f.plan.alerts))
    out += ["", f"Who acts on each alert, and how findings feed back into the risk "
                f"management system: {TODO} (by the provider)"]
    return out


BUILDERS = (general, elements, control, performance, risk, changes, standards, declaration,
            monitoring)


def sections(facts: Facts) -> list[Section]:
    """The nine sections of Annex IV, in order."""
    return [Section(i + 1, title, tuple(build(facts)))
            for i, (title, build) in enumerate(zip(TITLES, BUILDERS, strict=True))]


def document(facts: Facts) -> list[str]:
    """The whole documentation as Markdown lines: a header, the sections, the checkpoint."""
    s = facts.scope.system
    out = [f"# Technical documentation (EU AI Act Annex IV): {s.name}", "",
           f"Generated by Inferplane at {when(facts.generated_at)} from the live registry, "
           f"ledger and audit log. Lines marked {TODO} can only be written by a person.", ""]
    for section in sections(facts):
        out += [f"## {section.number}. {section.title}", "", *section.lines, ""]
    out += ["## Signed checkpoint covering this document", ""]
    if facts.checkpoint is None:
        out += ["No signed checkpoint is available (no signing key here and none kept)."]
    else:
        out += [f"The audit entries above are the first {facts.tree_size} of the log; verify "
                "with `inferplane audit verify --since-checkpoint FILE` (docs/audit.md).", "",
                "```", *facts.checkpoint.rstrip("\n").splitlines(), "```"]
    return out
