"""The deployment that collects the engine replicas' load reports: one replica, no CPU of its
own. Any engine replica answers ``GET /load`` from it, so the gateway sees every replica's
load through the application's one route."""

from __future__ import annotations

import time
from typing import Any

from ray import serve

from inferplane.ray.load import ReplicaLoad, fresh, summary


@serve.deployment(name="LoadBoard", num_replicas=1, ray_actor_options={"num_cpus": 0},
                  max_ongoing_requests=1000, logging_config={"enable_access_log": False})
class LoadBoard:
    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.reports: dict[str, ReplicaLoad] = {}

    def report(self, data: dict[str, Any]) -> None:
        load = ReplicaLoad.from_dict({**data, "at": time.monotonic()})
        self.reports[load.replica] = load

    def gone(self, replica: str) -> None:
        self.reports.pop(replica, None)

    def snapshot(self) -> dict[str, Any]:
        live = fresh(self.reports.values(), time.monotonic(), self.interval_s)
        self.reports = {r.replica: r for r in live}
        return summary(live)
