"""The gateway's long-lived parts, started and stopped together: ledger, tenancy, providers,
router, the model registry's live snapshot with its rollout watcher, shadow traffic, and the
drift monitor where ``drift.enabled``."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import Engine

from inferplane.audit.entries import CONFIG_LOAD
from inferplane.audit.log import AuditLog
from inferplane.batch.runner import BatchRunner
from inferplane.cache.service import ResponseCache
from inferplane.compliance.incidents import Incidents
from inferplane.compliance.retention import retention_notice, retention_problem
from inferplane.config import Config
from inferplane.drift.monitor import DriftMonitor
from inferplane.engines.engine_metrics import EngineReading
from inferplane.engines.scraper import engine_scrapers
from inferplane.errors import ConfigError
from inferplane.governance.canary import Split
from inferplane.governance.live import LiveRegistry
from inferplane.governance.registry import Registry
from inferplane.ledger.record import UsageRecord
from inferplane.ledger.service import Ledger, drain
from inferplane.ledger.store import make_engine
from inferplane.ledger.wal import LedgerLocked
from inferplane.ledger.waldir import legacy_wal_dirs, wal_root
from inferplane.metering.intensity import intensity_source
from inferplane.metering.meter import build_meters
from inferplane.observe.metrics import Metrics
from inferplane.observe.tracing import build_tracer
from inferplane.own_requests import OwnRequests
from inferplane.polling import poll_forever
from inferplane.providers.base import Provider, create
from inferplane.providers.managed import ManagedEngineProvider
from inferplane.request_accounting import Timings
from inferplane.responses.store import ResponseStore
from inferplane.routing.router import Router
from inferplane.shadow import Shadow
from inferplane.tenancy.access import Access
from inferplane.tenancy.admission import Reservation
from inferplane.tenancy.store import TenancyStore
from inferplane.text import plural

log = logging.getLogger("inferplane")


WORKER_SLOTS = 64
AUDIT_KEY_NAME = "audit-signer.key"  # inferplane up --workers: at most this many processes


class Gateway:
    def __init__(self, config: Config, *, worker: bool = False) -> None:
        """``worker``: one of several processes sharing the configuration; each then takes
        the first free ``worker-N`` WAL directory under ``ledger.dir`` (its WAL lock says which
        is free), so a restarted worker recovers what an earlier one left."""
        problem = retention_problem(config)
        if problem is not None:  # Arts. 12, 19, 26(6): refused before anything starts
            raise ConfigError(problem)
        self.config = config
        self.worker = worker
        self.providers: dict[str, Provider] = {d.name: create(d) for d in config.deployments}
        intensity = intensity_source(config.accounting.intensity_source)
        self.router = Router(config, self.providers, meters=build_meters(config, intensity))
        # what the engine servers report of their load, read every interval (docs/engines.md)
        self.engine_readings: dict[str, EngineReading] = {}
        self.router.engine_readings = self.engine_readings
        self.scrapers = engine_scrapers(config.deployments, self.providers, self.engine_readings)
        for name, provider in self.providers.items():
            if isinstance(provider, ManagedEngineProvider):  # a fresh process: a closed breaker
                provider.engine.on_restart.append(self.router.stats[name].restarted)
        self.metrics = Metrics(self.router.model_names(), self.providers, self.router.stats)
        self.metrics.engines.readings = self.engine_readings
        # the semantic cache's embeddings and judge calls: recorded like the client's requests
        self.own = OwnRequests(self.router, lambda record, timings: self.record(
            record, None, timings))
        self.cache = ResponseCache.build(config, self.own)
        self.tracer = build_tracer(config.observe)  # None: tracing is off
        self.drift: DriftMonitor | None = None  # None: drift detection is off
        if config.drift.enabled:
            self.drift = DriftMonitor(config.drift, _canonical_model(config))
            self.metrics.drift.source = self.drift
        self._ledger: Ledger | None = None
        self._access: Access | None = None
        self._governance: LiveRegistry | None = None
        self._audit: AuditLog | None = None
        self._checkpoints: asyncio.Task[None] | None = None
        self._budgets: asyncio.Task[None] | None = None
        self._responses: ResponseStore | None = None
        self._db: Engine | None = None
        self._sweep: asyncio.Task[None] | None = None
        self._settling: set[asyncio.Task[None]] = set()
        # a shadow copy's record goes to the ledger (its gates read it), not into the live
        # traffic's metrics
        self.batches = BatchRunner(self)  # the Batch API's lines, at low priority
        self.shadow = Shadow(self.router, lambda record: self.ledger.append(record),
                             self._shadows, config.governance.rollout.shadow_concurrency)

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            raise RuntimeError("the gateway is not started")
        return self._ledger

    @property
    def audit(self) -> AuditLog:
        if self._audit is None:
            raise RuntimeError("the gateway is not started")
        return self._audit

    @property
    def access(self) -> Access:
        if self._access is None:
            raise RuntimeError("the gateway is not started")
        return self._access

    @property
    def db(self) -> Engine:
        """The store's connection pool the gateway's stores share."""
        if self._db is None:
            raise RuntimeError("the gateway is not started")
        return self._db

    @property
    def responses(self) -> ResponseStore:
        """The Responses API's stored responses."""
        if self._responses is None:
            raise RuntimeError("the gateway is not started")
        return self._responses

    @property
    def governance(self) -> LiveRegistry:
        if self._governance is None:
            raise RuntimeError("the gateway is not started")
        return self._governance

    def _shadows(self) -> dict[str, Split]:
        return {} if self._governance is None else self._governance.shadows

    def record(self, record: UsageRecord, reservation: Reservation | None,
               timings: Timings) -> None:
        """A request ended: its record goes to the ledger (durable) and, with its timings,
        into the metrics, and what admission reserved for it is settled to what it really
        cost."""
        self.ledger.append(record)
        self.metrics.observe(record, timings)
        if reservation is not None:
            task = asyncio.create_task(self.access.settle(
                reservation, record.prompt_tokens + record.completion_tokens, record.cost_usd))
            self._settling.add(task)
            task.add_done_callback(self._settling.discard)

    async def start(self) -> None:
        self._ledger = await asyncio.to_thread(self._open_ledger)
        # one connection pool for the stores of tenants, responses, the registry, incidents
        # and batches (the ledger migrated the database)
        self._db = make_engine(self.config.store.url)
        self._access = Access.build(self.config, TenancyStore(self._db))
        self._responses = ResponseStore(self._db)
        self._sweep = asyncio.create_task(poll_forever(
            self.config.responses.sweep_interval_s, self._sweep_responses,
            "expired responses", log), name="inferplane-responses-sweep")
        await self._access.start()
        await self._read_budgets()
        self._budgets = asyncio.create_task(poll_forever(
            self.config.tenancy.budget_metrics_interval_s, self._read_budgets,
            "the budgets' standing", log), name="inferplane-budget-gauges")
        self._audit = await asyncio.to_thread(self._open_audit)
        self._checkpoints = asyncio.create_task(self._issue_checkpoints())
        notice = retention_notice(self.config)
        if notice is not None:
            log.info("%s", notice)
        self._governance = LiveRegistry(self.config, Registry(self.db), self.router,
                                        self.cache.follow)
        await self._governance.start()  # before any provider: nothing serves unchecked
        self.cache.start()  # shared semantic caches start following their index
        self.metrics.governance = self._governance.view
        if self.drift is not None:
            self.drift.start()
        for provider in self.providers.values():
            await provider.start()
        for scraper in self.scrapers:
            scraper.start()
        if self.config.batch.enabled:
            self.batches.start()

    def _open_ledger(self) -> Ledger:
        config = self.config
        root = wal_root(config.ledger.dir, config.store.url)
        if config.ledger.dir is None:  # what an older version left at the old default place
            for legacy in legacy_wal_dirs():
                drain(config.store.url, legacy)
        dirs = [root / f"worker-{i}" for i in range(WORKER_SLOTS)] if self.worker else [root]
        for wal_dir in dirs:
            try:
                return open_ledger(config, wal_dir)
            except LedgerLocked:
                if not self.worker:
                    raise
        raise LedgerLocked(f"every worker WAL directory under {root} is in use")

    def _open_audit(self) -> AuditLog:
        """The audit log, its signing key loaded (made on first start), and this start's
        configuration appended to it with its hash."""
        audit = AuditLog.open(self.config.store.url, key_file=audit_key_file(self.config),
                              origin=self.config.audit.origin)
        text = self.config.model_dump_json()
        audit.append(CONFIG_LOAD, {
            "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "models": [m.name for m in self.config.models],
            "deployments": [d.name for d in self.config.deployments],
            "worker": self.worker,
        }, actor=f"gateway:{socket.gethostname()}:{os.getpid()}")
        return audit

    async def _read_budgets(self) -> None:
        """The budget gauges' figures, from the shared store."""
        self.metrics.budgets = await asyncio.to_thread(self.access.store.budget_standings,
                                                       time.time())

    async def _sweep_responses(self) -> None:
        """Remove the stored responses past their retention (expired ones are never served,
        swept or not)."""
        removed = await asyncio.to_thread(self.responses.sweep, time.time())
        if removed:
            log.info("removed %s past responses.retention_days", plural(removed, "stored response"))

    async def _issue_checkpoints(self) -> None:
        """A signed checkpoint every ``audit.checkpoint_interval_s`` when the tree grew."""
        incidents = Incidents(self.db)
        while True:
            try:  # the incident deadlines the metrics show, refreshed as often
                self.metrics.incidents = await asyncio.to_thread(incidents.pending)
            except Exception:
                log.exception("reading the open incidents failed")
            await asyncio.sleep(self.config.audit.checkpoint_interval_s)
            try:
                await asyncio.to_thread(self.audit.checkpoint_if_grown)
            except Exception:
                log.exception("issuing an audit checkpoint failed; the next try is in %.0fs",
                              self.config.audit.checkpoint_interval_s)

    async def stop(self) -> None:
        await self.batches.stop()  # before the providers: its lines give their claims back
        await self.shadow.stop()
        for scraper in self.scrapers:
            await scraper.stop()
        for task in (self._checkpoints, self._budgets, self._sweep):
            if task is not None:
                task.cancel()
        for provider in self.providers.values():
            try:
                await provider.stop()
            except Exception:
                log.exception("stopping %s failed", provider.deployment.name)
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self.cache.close()
        if self.drift is not None:
            await asyncio.to_thread(self.drift.stop)
        if self.tracer is not None:
            await asyncio.to_thread(self.tracer.shutdown)  # what is left is exported
        if self._access is not None:
            await self._access.stop()
        if self._governance is not None:
            await self._governance.stop()
        if self._ledger is not None:
            await asyncio.to_thread(self._ledger.close)
        if self._audit is not None:  # a last checkpoint covering what this process did
            try:
                await asyncio.to_thread(self._audit.checkpoint_if_grown)
            except Exception:
                log.exception("the last audit checkpoint failed")
            self._audit.close()
        if self._db is not None:
            self._db.dispose()

    def stopped(self) -> str:
        """What to say once :meth:`stop` returned: the records this run wrote to the ledger,
        and whether the store took every one of them."""
        ledger = self._ledger
        if ledger is None:
            return "stopped before its ledger opened"
        records = plural(ledger.appended, "record")
        if ledger.all_in_store:
            return f"stopped; ledger flushed: {records} this run, all in {ledger.store_url}"
        return (f"stopped; ledger: {records} this run, some still in the WAL {ledger.wal_path} "
                "(the store did not take them; the next start replays them)")

    @property
    def ready(self) -> bool:
        """Every model has at least one ready deployment."""
        return all(
            any(t.provider.ready for t in self.router.targets(name))
            for name in self.router.model_names()
        )


def _canonical_model(config: Config) -> Callable[[str], str | None]:
    """The model name a request's model or alias stands for (None: not one of ours)."""
    names = {name: m.name for m in config.models for name in (m.name, *m.aliases)}
    return names.get


def audit_key_file(config: Config) -> Path:
    """Where the audit signing key is: ``audit.key_file``, else beside the ledger's WAL."""
    if config.audit.key_file is not None:
        return Path(config.audit.key_file).expanduser()
    return wal_root(config.ledger.dir, config.store.url) / AUDIT_KEY_NAME


def open_ledger(config: Config, wal_dir: Path) -> Ledger:
    """The configuration's ledger, writing to ``wal_dir``."""
    settings = config.ledger
    return Ledger.open(config.store.url, wal_dir, commit_interval_ms=settings.commit_interval_ms,
                       commit_batch=settings.commit_batch, fsync=settings.fsync,
                       fsync_interval_ms=settings.fsync_interval_ms)
