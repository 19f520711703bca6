"""Fixtures for every test: PostgreSQL and Redis servers, started once per session when a test
first asks for one (``postgres_url``, ``redis_url``). A missing binary fails the test, it does
not skip it: ``make services`` installs them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from tests.services import MissingService, fresh_database, running_postgres, running_redis


def _serve(server: AbstractContextManager[str]) -> Iterator[str]:
    missing = ""
    try:
        url = server.__enter__()
    except MissingService as exc:
        missing = str(exc)
    if missing:  # a failure, not a skip: CI must run these tests
        pytest.fail(missing, pytrace=False)
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``postgresql+psycopg://postgres@127.0.0.1:PORT/inferplane``: an empty database on a
    PostgreSQL 15 server shared by the session (see :func:`postgres_db` for one of your own)."""
    yield from _serve(running_postgres(tmp_path_factory.mktemp("postgres")))


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``redis://127.0.0.1:PORT/0`` of a Redis server shared by the session."""
    yield from _serve(running_redis(tmp_path_factory.mktemp("redis")))


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store the ledger supports: an SQLite file, a fresh PostgreSQL 15 database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db/inferplane.db"
    return fresh_database(request.getfixturevalue("postgres_url"), request.node.nodeid)


@pytest.fixture
def postgres_db(postgres_url: str, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh, empty database for this test alone, named after it."""
    return fresh_database(postgres_url, request.node.nodeid)
