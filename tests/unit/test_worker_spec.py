"""The embedded engine worker's command line and environment (engines/supervisor.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from inferplane.config import EngineConfig
from inferplane.engines.supervisor import WorkerSpec


def spec(spin: int | None) -> WorkerSpec:
    return WorkerSpec(model="builtin:gemma-3-270m", parallel=2, context=512, batch=64,
                      threads=2, spin=spin)


def test_no_spin_inherits_the_environment() -> None:
    assert spec(None).env({"PATH": "/bin"}) is None


def test_spin_sets_libgomps_spin_count_and_keeps_the_rest() -> None:
    env = spec(20000).env({"PATH": "/bin", "GOMP_SPINCOUNT": "7"})
    assert env == {"PATH": "/bin", "GOMP_SPINCOUNT": "20000"}


def test_spin_is_not_negative() -> None:
    with pytest.raises(ValidationError):
        EngineConfig(spin=-1)
    assert EngineConfig(spin=0).spin == 0
