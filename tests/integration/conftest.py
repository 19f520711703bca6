from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .gateway_proc import GatewayProc, running_gateway


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProc]:
    with running_gateway(Path(tmp_path_factory.mktemp("gateway"))) as gw:
        yield gw
