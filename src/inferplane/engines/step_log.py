"""The decode step times a gateway observes on the engines it reads, kept as calibration input
for ``inferplane plan calibrate`` (``planner/live_steps.py`` makes the points).

One file per engine, ``<cache dir>/calibration/<deployment>.json``, rewritten every
:data:`WRITE_EVERY_S` while points come in and when the gateway stops; ``inferplane plan
calibrate`` without a file fits every one of them (docs/planner.md).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import deque
from pathlib import Path

from inferplane.engines.engine_metrics import EngineLoad
from inferplane.engines.model_files import cache_dir
from inferplane.planner.live_steps import StepPoint, calibration_input, decode_point

log = logging.getLogger("inferplane.engine")

WRITE_EVERY_S = 30.0
MAX_POINTS = 4096


def step_log_dir() -> Path:
    return cache_dir() / "calibration"


class StepLog:
    """Points from consecutive readings of one engine, written out now and then."""

    def __init__(self, deployment: str, hardware: str, model: str, kv_positions: int,
                 tp: int = 1, path: Path | None = None) -> None:
        self.deployment = deployment
        self.hardware, self.model, self.tp = hardware, model, tp
        self.kv_positions = kv_positions
        self.path = path or step_log_dir() / f"{deployment}.json"
        self.points: deque[StepPoint] = deque(maxlen=MAX_POINTS)
        self._last: EngineLoad | None = None
        self._written = time.monotonic()
        self._dirty = False

    def observe(self, load: EngineLoad) -> None:
        """A new reading; the point between it and the last, if there is one."""
        if self._last is not None:
            point = decode_point(self._last, load, self.kv_positions)
            if point is not None:
                self.points.append(point)
                self._dirty = True
        self._last = load
        if self._dirty and time.monotonic() - self._written >= WRITE_EVERY_S:
            self.write()

    def forget(self) -> None:
        """The engine restarted or could not be read: its counters start again."""
        self._last = None

    def write(self) -> None:
        doc = calibration_input(self.points, self.hardware, self.model,
                                f"inferplane gateway, deployment {self.deployment} (live)",
                                self.tp)
        self._written = time.monotonic()
        self._dirty = False
        if doc is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            partial = self.path.with_suffix(".partial")
            partial.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
            os.replace(partial, self.path)
        except OSError as exc:
            log.warning("writing %s failed: %s", self.path, exc)
