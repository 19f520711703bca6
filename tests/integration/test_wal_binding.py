"""A gateway's write-ahead log belongs to its store: real gateway processes, each configured with
its own store and no ``ledger:`` section, never take one another's records; a WAL directory
named for two stores is refused at start with its one-line reason; and what an older version
left at the old default place is taken by its own store only."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from inferplane.ledger.service import Ledger
from inferplane.ledger.wal import encode, segment_numbers
from inferplane.ledger.waldir import DEFAULT_WAL_ROOT, default_wal_dir
from tests.integration.gateway_proc import BIN, GatewayProc, free_port, running_gateway
from tests.unit.test_ledger import record, stored_count
from tests.upstream.process import UpstreamProcess

KEY = "sk-upstream-wal-1234"


@pytest.fixture(scope="module")
def upstream() -> Iterator[UpstreamProcess]:
    with UpstreamProcess("wal", api_key=KEY) as up:
        yield up


def config(store: Path, up: UpstreamProcess, ledger_dir: Path | None = None) -> str:
    ledger = "" if ledger_dir is None else f"ledger: {{dir: '{ledger_dir}'}}\n"
    return (f"store: {{url: 'sqlite:///{store}'}}\n{ledger}"
            "models: [{name: chat}]\n"
            f"deployments:\n  - {{name: up, model: chat, provider: openai, "
            f"base_url: '{up.url}/v1', api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1}}\n")


def send(gateway: GatewayProc, n: int) -> list[str]:
    ids = []
    for i in range(n):
        r = httpx.post(gateway.url + "/v1/chat/completions", timeout=30, json={
            "model": "chat", "messages": [{"role": "user", "content": f"hello {i}"}]})
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
    return ids


def stored_ids(store: Path) -> set[str]:
    engine = sa.create_engine(f"sqlite:///{store}")
    try:
        with engine.connect() as conn:
            return set(conn.execute(sa.text("SELECT id FROM usage_records")).scalars())
    finally:
        engine.dispose()


def env(home: Path) -> dict[str, str]:
    return {"HOME": str(home), "UPSTREAM_KEY": KEY}


def process_env(home: Path) -> dict[str, str]:
    return {**os.environ, **env(home)}


def test_two_stores_with_the_default_wal_keep_their_own_records(
        tmp_path: Path, upstream: UpstreamProcess) -> None:
    home, a, b = tmp_path / "home", tmp_path / "a.db", tmp_path / "b.db"
    with running_gateway(tmp_path / "ga", config(a, upstream), env=env(home)) as gateway:
        first = send(gateway, 3)
    with running_gateway(tmp_path / "gb", config(b, upstream), env=env(home)) as gateway:
        second = send(gateway, 4)
    assert stored_ids(a) == set(first)
    assert stored_ids(b) == set(second)
    wal_a, wal_b = (default_wal_dir(f"sqlite:///{db}", home / ".inferplane/ledger")
                    for db in (a, b))
    assert wal_a != wal_b and wal_a.is_dir() and wal_b.is_dir()
    assert wal_b.name in (tmp_path / "gb/gateway.log").read_text()  # where `up` says it is


def test_a_wal_directory_of_another_store_is_refused_at_start(
        tmp_path: Path, upstream: UpstreamProcess) -> None:
    home, a, b, shared = tmp_path / "home", tmp_path / "a.db", tmp_path / "b.db", tmp_path / "wal"
    with running_gateway(tmp_path / "ga", config(a, upstream, shared), env=env(home)) as gateway:
        first = send(gateway, 2)
    path = tmp_path / "b.yaml"
    path.write_text(config(b, upstream, shared))
    up = subprocess.run([str(BIN / "inferplane"), "up", "--config", str(path), "--port",
                         str(free_port())], capture_output=True, text=True, timeout=120,
                        env=process_env(home))
    assert up.returncode != 0
    output = up.stdout + up.stderr
    assert f"cannot start: the WAL directory {shared} belongs to another store" in output
    assert "Traceback" not in output
    assert stored_count(f"sqlite:///{b}") == 0  # nothing of a's was replayed into b
    tail = subprocess.run([str(BIN / "inferplane"), "ledger", "tail", "--config", str(path),
                           "--json"], capture_output=True, text=True, timeout=60,
                          env=process_env(home))
    assert tail.returncode == 0 and "belongs to another store" in tail.stderr
    assert stored_ids(a) == set(first)


def test_what_an_older_version_left_at_the_default_place_goes_to_its_own_store(
        tmp_path: Path, upstream: UpstreamProcess) -> None:
    home, a, b = tmp_path / "home", tmp_path / "a.db", tmp_path / "b.db"
    legacy = Path(str(DEFAULT_WAL_ROOT).replace("~", str(home)))
    with Ledger.open(f"sqlite:///{a}", legacy) as ledger:  # a's WAL, as an older version wrote it
        ledger.append(record(1))
    (legacy / "STORE_ID").unlink()
    last = legacy / f"ledger-{segment_numbers(legacy)[-1]:06d}.wal"
    with last.open("ab") as f:  # written, then the process died before the commit
        f.write(encode(record(2)))
    with running_gateway(tmp_path / "gb", config(b, upstream), env=env(home)) as gateway:
        send(gateway, 1)
    assert "req-000002" not in stored_ids(b)  # not b's: left alone
    with running_gateway(tmp_path / "ga", config(a, upstream), env=env(home)) as gateway:
        send(gateway, 1)
    assert {"req-000001", "req-000002"} <= stored_ids(a)
