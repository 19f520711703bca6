"""Firing alerts read from a Prometheus or an Alertmanager, as dashboard conditions (pure).

``observe.alerts_url`` names the alerts API: Prometheus' ``/api/v1/alerts`` answers
``{"status": "success", "data": {"alerts": [...]}}`` with each alert's ``state`` (``firing``
or ``pending``) and ``activeAt``; Alertmanager's ``/api/v2/alerts`` answers a list with each
alert's ``status.state`` (``active``, ``suppressed``, ``unprocessed``) and ``startsAt``. Both
give ``labels`` and ``annotations``. Only firing (Prometheus) and active (Alertmanager) alerts
become conditions; the ``severity`` label sets theirs.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from inferplane.observe.conditions import Condition

# the ``severity`` label's value -> the condition's severity (any other: warning)
SEVERITIES = {"critical": "critical", "page": "critical", "error": "critical",
              "warning": "warning", "ticket": "warning", "info": "info", "none": "info"}
_FRACTION = re.compile(r"(\.\d{6})\d+")  # nanoseconds: Python reads microseconds


def iso_time(text: str | None) -> float | None:
    """Unix seconds of an RFC 3339 time (nanoseconds allowed), None when absent or unreadable.

    >>> iso_time("2024-05-01T12:00:00.123456789Z")
    1714564800.123456
    >>> iso_time("0001-01-01T00:00:00Z") is None, iso_time(None) is None
    (True, True)
    """
    if not text:
        return None
    try:
        ts = datetime.fromisoformat(_FRACTION.sub(r"\1", text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
    return ts if ts > 0 else None  # Go's zero time: not set


def _condition(alert: Mapping[str, Any], since: str | None) -> Condition:
    labels = alert.get("labels") or {}
    notes = alert.get("annotations") or {}
    name = str(labels.get("alertname", "alert"))
    about = [str(labels[k]) for k in ("model", "deployment", "tenant", "instance") if k in labels]
    return Condition(
        "prometheus", SEVERITIES.get(str(labels.get("severity", "")).lower(), "warning"),
        name + (f" ({', '.join(about)})" if about else ""),
        str(notes.get("summary") or notes.get("description") or name), iso_time(since))


def _prometheus(body: Any) -> list[Condition] | None:
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return None
    return [_condition(a, a.get("activeAt")) for a in body["data"].get("alerts") or []
            if a.get("state") == "firing"]


def _alertmanager(body: Any) -> list[Condition] | None:
    if not isinstance(body, list):
        return None
    return [_condition(a, a.get("startsAt")) for a in body
            if (a.get("status") or {}).get("state", "active") == "active"]


# Each reader takes an answer it recognizes, else returns None; the first that takes it wins.
READERS: tuple[Callable[[Any], list[Condition] | None], ...] = (_prometheus, _alertmanager)


def firing_alerts(body: Any) -> list[Condition]:
    """The firing alerts in an alerts API's answer ``body`` (parsed JSON).

    >>> [c.to_dict() for c in firing_alerts({"status": "success", "data": {"alerts": [
    ...     {"labels": {"alertname": "Burn", "severity": "page", "model": "chat"},
    ...      "annotations": {"summary": "budget burning"}, "state": "firing",
    ...      "activeAt": "2024-05-01T12:00:00Z"},
    ...     {"labels": {"alertname": "Soon"}, "state": "pending"}]}})]
    ... # doctest: +NORMALIZE_WHITESPACE
    [{'kind': 'prometheus', 'severity': 'critical', 'subject': 'Burn (chat)',
      'summary': 'budget burning', 'since': 1714564800.0}]
    >>> [c.subject for c in firing_alerts([{"labels": {"alertname": "A"},
    ...                                     "status": {"state": "suppressed"}},
    ...                                    {"labels": {"alertname": "B"},
    ...                                     "status": {"state": "active"}}])]
    ['B']
    """
    for read in READERS:
        found = read(body)
        if found is not None:
            return found
    raise ValueError("not a Prometheus or Alertmanager alerts answer")


def unreachable(url: str, why: str) -> Condition:
    """What the dashboard says when the alerts API could not be read."""
    return Condition("alert_source", "warning", url, f"alerts not read: {why}", None)
