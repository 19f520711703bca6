"""Several gateways, one truth: three `inferplane up` processes behind a round-robin front on
loopback (as a Kubernetes Service is in front of replicas), one PostgreSQL, one Redis, one
signing key, a fake upstream that takes a little time per answer. Clients of three tenants (one
with a total budget, one with a requests-per-minute limit) load the front while tenants are
created through it; one gateway, whose committer never runs on its own, is killed with SIGKILL
mid-load and started again. Then: every answered request has exactly one ledger record (the
killed one's came back from its write-ahead file), the budget was never overspent, the rate
limit admitted no more than it allows, and the audit log verifies and holds exactly one entry
per tenant that exists."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.upstream.process import UpstreamProcess

from .gateway_proc import BIN, GatewayProc, running_gateway
from .round_robin import RoundRobin

UPSTREAM_KEY = "sk-upstream-gateway-cluster"
PRICE = "price: {input_per_mtok: 1000, output_per_mtok: 1000}"  # a request: about 2 cents
PROMPT = "one two three four five six seven eight"
BUDGET = 1.0
RPM = 60
LOAD_S = 12.0
KILL_AT_S, RESTART_AT_S = 3.0, 5.0
PER_KEY = 3  # concurrent clients per key


def _config(root: Path, db_url: str, redis_url: str, upstream: UpstreamProcess, name: str,
            commit_interval_ms: int) -> str:
    return (f"store: {{url: '{db_url}'}}\n"
            f"redis: {{url: '{redis_url}'}}\n"
            f"ledger: {{dir: '{root}/wal-{name}', commit_interval_ms: {commit_interval_ms}}}\n"
            f"audit: {{key_file: '{root}/audit.key', checkpoint_interval_s: 0.5}}\n"
            "tenancy: {poll_interval_ms: 250}\n"
            "models:\n  - name: chat\n"
            "deployments:\n"
            f"  - {{name: up, model: chat, provider: openai, base_url: '{upstream.url}/v1', "
            f"api_key: 'env:UPSTREAM_KEY', upstream_model: echo-1, {PRICE}}}\n")


@dataclass
class Outcome:
    key: str
    status: int | None  # None: the connection broke (the gateway died mid-request)
    request_id: str | None = None
    code: str | None = None


@dataclass
class Load:
    outcomes: list[Outcome] = field(default_factory=list)
    tenants_created: list[str] = field(default_factory=list)
    tenant_attempts: int = 0


async def _client(front: str, name: str, key: str, until: float, load: Load) -> None:
    body = {"model": "chat", "max_tokens": 8, "messages": [{"role": "user", "content": PROMPT}]}
    # no keep-alive: every request is a new connection, so the front spreads them
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
            max_keepalive_connections=0)) as http:
        while time.monotonic() < until:
            try:
                r = await http.post(front + "/v1/chat/completions", json=body,
                                    headers={"authorization": f"Bearer {key}"})
            except httpx.HTTPError:
                load.outcomes.append(Outcome(name, None))
                continue
            error = r.json().get("error") if r.status_code != 200 else None
            load.outcomes.append(Outcome(name, r.status_code, r.headers.get("x-request-id"),
                                         None if error is None else error.get("code")))
            if r.status_code == 429:
                await asyncio.sleep(0.05)


async def _admin(front: str, admin: str, until: float, load: Load) -> None:
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(
            max_keepalive_connections=0)) as http:
        i = 0
        while time.monotonic() < until:
            name = f"rr-{i}"
            i += 1
            load.tenant_attempts += 1
            try:
                r = await http.post(front + "/admin/v1/tenants", json={"name": name},
                                    headers={"authorization": f"Bearer {admin}"})
            except httpx.HTTPError:
                continue  # lost with its gateway: applied or not, the audit must agree
            assert r.status_code == 201, r.text
            load.tenants_created.append(name)
            await asyncio.sleep(0.2)


def _rows(db_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(db_url)
    try:
        with engine.connect() as c:
            return [dict(r) for r in c.execute(sa.text(sql), params).mappings()]
    finally:
        engine.dispose()


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, redis_url: str
            ) -> Iterator[tuple[str, list[GatewayProc], UpstreamProcess]]:
    from tests.services import fresh_database

    db_url = fresh_database(postgres_url, "gateway_cluster")
    with ExitStack() as stack:
        upstream = stack.enter_context(UpstreamProcess(
            "cluster", api_key=UPSTREAM_KEY, args=["--no-log"]))
        upstream.configure(think_ms=20, token_delay_ms=5)
        gateways = [stack.enter_context(running_gateway(
            tmp_path / name, _config(tmp_path, db_url, redis_url, upstream, name,
                                     600_000 if name == "b" else 20),
            env={"UPSTREAM_KEY": UPSTREAM_KEY})) for name in ("a", "b", "c")]
        yield db_url, gateways, upstream


def test_three_gateways_one_killed_and_restarted_under_load_keep_one_truth(
        cluster: tuple[str, list[GatewayProc], UpstreamProcess]) -> None:
    db_url, gateways, _ = cluster
    a, b, _c = gateways

    def cli(*args: str) -> str:
        return subprocess.run([str(BIN / "inferplane"), *args, "--config", str(a.config)],
                              capture_output=True, text=True, timeout=60, check=True,
                              cwd=a.root).stdout.strip()

    admin = cli("keys", "create", "--tenant", "ops", "--scopes", "admin")
    cli("tenants", "create", "budgeted", "--budget", f"{BUDGET}usd/total")
    keys = {"budgeted": cli("keys", "create", "--tenant", "budgeted"),
            "limited": cli("keys", "create", "--tenant", "limited", "--rpm", str(RPM)),
            "plain": cli("keys", "create", "--tenant", "plain")}
    time.sleep(0.6)  # every gateway sees the keys (tenancy.poll_interval_ms)
    load = Load()

    with RoundRobin([g.port for g in gateways]) as front:
        async def run() -> float:
            began = time.monotonic()
            until = began + LOAD_S
            tasks = [asyncio.create_task(_client(front.url, name, key, until, load))
                     for name, key in keys.items() for _ in range(PER_KEY)]
            tasks.append(asyncio.create_task(_admin(front.url, admin, until, load)))
            await asyncio.sleep(KILL_AT_S)
            b.stop(signal.SIGKILL)
            await asyncio.sleep(RESTART_AT_S - KILL_AT_S)
            await asyncio.to_thread(b.start)  # recovery replays its write-ahead file
            await asyncio.gather(*tasks)
            return time.monotonic() - began

        elapsed = asyncio.run(run())
        served = list(front.served)
    assert min(served) > 10, served  # every gateway took its share
    b.stop()  # a graceful stop commits what the restarted gateway still holds

    outcomes = load.outcomes
    statuses = Counter((o.key, o.status) for o in outcomes)
    answered = {o.request_id for o in outcomes if o.status == 200}
    assert None not in answered and len(answered) >= 100, statuses
    assert {o.status for o in outcomes} <= {200, 429, None}, statuses

    # the ledger: every answered request once, nothing twice, nothing lost with the kill
    rows = _rows(db_url, "SELECT id, tenant, cost_usd, status FROM usage_records "
                         "WHERE tenant IN ('budgeted', 'limited', 'plain')")
    ids = Counter(r["id"] for r in rows)
    assert not [i for i, n in ids.items() if n > 1]
    assert answered <= set(ids), f"{len(answered - set(ids))} answered without a record"
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[i]["status"] == 200 for i in answered)

    # the budget: never overspent, and used up to within the holds a kill may strand
    spent = sum(r["cost_usd"] for r in rows if r["tenant"] == "budgeted")
    reservation = ((len(PROMPT) + 16) + 8) * 1000 / 1e6
    assert BUDGET - (PER_KEY + 1) * reservation <= spent <= BUDGET + 1e-9, spent
    refused = [o for o in outcomes if o.key == "budgeted" and o.status == 429]
    assert refused and {o.code for o in refused} == {"budget_exceeded"}

    # the rate limit: RPM at once, then what refills while the load ran, across the three
    limited_ok = statuses[("limited", 200)]
    assert RPM <= limited_ok <= RPM + int(elapsed * RPM / 60) + 1, (limited_ok, elapsed)

    # the audit log: verifies, and holds one entry per tenant that exists
    verified = subprocess.run([str(BIN / "inferplane"), "audit", "verify", "--config",
                               str(a.config)], capture_output=True, text=True, timeout=120)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    tenants = {r["name"] for r in _rows(db_url, "SELECT name FROM tenants")}
    assert set(load.tenants_created) <= tenants
    assert len(load.tenants_created) >= 20
    creations = _rows(db_url, "SELECT count(*) AS n FROM audit_entries "
                              "WHERE kind = 'tenant.create'")[0]["n"]
    assert creations == len(tenants)
