"""The post-market monitoring plan (Art. 72) as the Prometheus rules define it: what is
measured (the metrics the rules read), the thresholds and the alerts. Pure: parses the rules'
YAML text.

>>> plan = read_plan("groups: [{name: g, rules: [{alert: A, expr: 'inferplane_x_total > 1', "
...                  "labels: {severity: page}, annotations: {summary: s}}]}]")
>>> plan.metrics, plan.alerts[0].name
(('inferplane_x_total',), 'A')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

_METRIC = re.compile(r"(?<![:\w])inferplane_[a-z0-9_]+(?![:\w])")


@dataclass(frozen=True, slots=True)
class Alert:
    name: str
    severity: str
    expr: str
    for_: str | None
    summary: str


@dataclass(frozen=True, slots=True)
class Plan:
    metrics: tuple[str, ...]  # raw metric names the rules read (recording rules' outputs left out)
    alerts: tuple[Alert, ...]


def read_plan(text: str) -> Plan:
    doc: dict[str, Any] = yaml.safe_load(text) or {}
    rules = [r for g in doc.get("groups", []) for r in g.get("rules", [])]
    recorded = {r["record"] for r in rules if "record" in r}
    names = {m for r in rules for m in _METRIC.findall(str(r.get("expr", "")))}
    metrics = tuple(sorted(names - recorded))
    alerts = tuple(
        Alert(r["alert"], str(r.get("labels", {}).get("severity", "")),
              " ".join(str(r["expr"]).split()), r.get("for"),
              str(r.get("annotations", {}).get("summary", "")))
        for r in rules if "alert" in r)
    return Plan(metrics, alerts)
