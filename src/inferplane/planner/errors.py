"""The planner's error: a bad name, option or input file, in one line the CLI prints as is."""

from __future__ import annotations

from inferplane.errors import InvalidRequest


class PlannerError(InvalidRequest):
    """An unknown model or hardware name, a bad SLO string, an invalid calibration file."""

    code = "planner_error"
