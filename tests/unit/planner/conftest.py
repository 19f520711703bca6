"""Shared fixtures of the planner tests: the packaged catalog and replicas built from it."""

from __future__ import annotations

import pytest

from inferplane.planner.catalog import Catalog, load_catalog
from inferplane.planner.layout import Replica
from inferplane.planner.precision import PRECISIONS


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def replica(catalog: Catalog, model: str, hardware: str, quant: str = "bf16", tp: int = 1,
            pp: int = 1, kv: str = "bf16") -> Replica:
    return Replica(catalog.find_model(model), catalog.find_hardware(hardware), PRECISIONS[quant],
                   PRECISIONS[kv], tp=tp, pp=pp)
