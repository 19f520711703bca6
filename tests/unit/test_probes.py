"""The liveness probes answer without a gateway behind them."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from inferplane.api import probes


@pytest.mark.parametrize("path", ["/healthz", "/health"])
def test_health_answers_like_healthz(path: str) -> None:
    client = TestClient(Starlette(routes=probes.routes))
    response = client.get(path)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response.headers["content-type"] == "application/json"
