"""The ``batch`` section: the Batch API's files, limits and its runner (docs/api.md#batches)."""

from __future__ import annotations

from pydantic import Field

from inferplane.config.problems import Section

MIB = 1024 * 1024


class BatchConfig(Section):
    """Batch input files and how each gateway process runs their lines."""

    enabled: bool = True  # False: the runner does not start (the endpoints still answer)
    max_file_bytes: int = Field(100 * MIB, gt=0)  # an uploaded file's size limit
    max_lines: int = Field(50_000, gt=0)  # requests in one input file
    max_in_flight: int = Field(64, ge=1)  # lines one process runs at once, all batches
    lease_s: float = Field(60.0, gt=0)  # a claimed line's lease, renewed every third of it
    poll_interval_s: float = Field(0.5, gt=0)  # how often the runner looks for work
