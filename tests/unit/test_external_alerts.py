"""Firing alerts from a Prometheus or an Alertmanager (observe/external_alerts.py), and the
admin API's reading of them when the source is down."""

from __future__ import annotations

import asyncio
import socket

import pytest

from inferplane.api.admin_dashboard import _external
from inferplane.observe.external_alerts import firing_alerts, iso_time


def test_prometheus_firing_alerts_only_with_their_severity_and_start() -> None:
    body = {"status": "success", "data": {"alerts": [
        {"labels": {"alertname": "A", "severity": "ticket", "deployment": "d1"},
         "annotations": {"description": "slow"}, "state": "firing",
         "activeAt": "2024-05-01T12:00:00.5Z"},
        {"labels": {"alertname": "B"}, "annotations": {}, "state": "pending"},
        {"labels": {"alertname": "C", "severity": "odd"}, "state": "firing"}]}}
    found = firing_alerts(body)
    assert [(c.subject, c.severity, c.summary) for c in found] == [
        ("A (d1)", "warning", "slow"), ("C", "warning", "C")]
    assert found[0].since == 1_714_564_800.5 and found[1].since is None


def test_alertmanager_active_alerts_only() -> None:
    body = [{"labels": {"alertname": "Down", "severity": "critical", "instance": "gw:8080"},
             "annotations": {"summary": "gateway down"}, "status": {"state": "active"},
             "startsAt": "2024-05-01T12:00:00Z"},
            {"labels": {"alertname": "Quiet"}, "status": {"state": "suppressed"}}]
    (found,) = firing_alerts(body)
    assert (found.subject, found.severity, found.summary) == ("Down (gw:8080)", "critical",
                                                              "gateway down")


def test_an_answer_of_neither_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a Prometheus or Alertmanager"):
        firing_alerts({"alerts": []})


def test_go_zero_and_unreadable_times_are_none() -> None:
    assert iso_time("0001-01-01T00:00:00Z") is None and iso_time("yesterday") is None


def test_an_unreachable_source_is_one_warning_saying_so() -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}/api/v1/alerts"
    (found,) = asyncio.run(_external(url))
    assert (found.kind, found.severity, found.subject) == ("alert_source", "warning", url)
    assert found.summary.startswith("alerts not read: ")
    assert asyncio.run(_external(None)) == []
