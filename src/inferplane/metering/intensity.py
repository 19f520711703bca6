"""Live grid intensity sources: the optional hook that replaces a zone's annual average.

``accounting.intensity_source`` names one: ``file:PATH`` for :class:`FileIntensity` (a JSON
object of zone -> gCO2/kWh that another process keeps current, e.g. from a grid operator's
feed), or the name of a plugin registered under the ``inferplane.intensity`` entry-point group:
a class whose instances have ``gco2_per_kwh(zone) -> float | None``
(:class:`~inferplane.metering.carbon.IntensitySource`). A zone the source does not know keeps
its annual average.
"""

from __future__ import annotations

import logging
import os
import time
from importlib.metadata import entry_points
from pathlib import Path

import orjson

from inferplane.errors import ConfigError
from inferplane.metering.carbon import IntensitySource

GROUP = "inferplane.intensity"
RECHECK_S = 5.0  # how often the file's modification time is looked at
log = logging.getLogger("inferplane.metering")


class FileIntensity:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()
        self._values: dict[str, float] = {}
        self._mtime: float | None = None
        self._checked = float("-inf")

    def gco2_per_kwh(self, zone: str) -> float | None:
        now = time.monotonic()
        if now - self._checked >= RECHECK_S:
            self._checked = now
            self._reload()
        return self._values.get(zone)

    def _reload(self) -> None:
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime == self._mtime:
                return
            data = orjson.loads(self.path.read_bytes())
            self._values = {str(k): float(v) for k, v in data.items()
                            if isinstance(v, int | float) and v >= 0}
            self._mtime = mtime
        except (OSError, ValueError, AttributeError) as exc:  # keep the last good values
            log.warning("grid intensity file %s unreadable: %s", self.path, exc)


def intensity_source(spec: str | None) -> IntensitySource | None:
    """The source ``spec`` names (see the module's docstring), or None."""
    if spec is None:
        return None
    if spec.startswith("file:"):
        return FileIntensity(spec.removeprefix("file:"))
    for ep in entry_points(group=GROUP):
        if ep.name == spec:
            source: IntensitySource = ep.load()()
            return source
    raise ConfigError(f"unknown intensity source {spec!r}: write `file:PATH` or the name of an "
                      f"installed `{GROUP}` plugin")
