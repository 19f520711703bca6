"""The model registry in the store (SQLite or PostgreSQL, the ledger's database): versions,
their stage and card, approvals, evaluation results, kills and every lifecycle event.

Each change is one transaction that records its event (actor, time, reason) and bumps the
revision every gateway process polls (``live.py``), so a kill or a stage change reaches every
process within ``governance.poll_interval_ms`` plus one read. The decisions are the pure
modules' (``stages``, ``approvals``, ``rollout``, ``cards``); this is their I/O shell.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from inferplane.audit import store as audit
from inferplane.config import GovernanceConfig
from inferplane.errors import GovernanceRefused, InferplaneError, InvalidRequest, NotFound
from inferplane.governance import approvals, cards, rollout_rows
from inferplane.governance.holdback import Snapshot
from inferplane.governance.kills import Kill, KillKind
from inferplane.governance.rollout import (
    Move,
    candidate_of,
    plan_candidate_rollback,
    plan_rollback,
    plan_rollout,
    rollout_percent,
)
from inferplane.governance.stages import APPROVED_OR_LATER, CANDIDATE, Stage, why_not
from inferplane.governance.tables import (
    governance_events,
    governance_kills,
    governance_revision,
    model_versions,
    version_approvals,
    version_evaluations,
)
from inferplane.ledger.store import make_engine, migrate


@dataclass(frozen=True, slots=True)
class Version:
    version: str
    model: str
    stage: Stage
    registered_by: str
    registered_at: float
    updated_at: float
    card: str | None
    card_by: tuple[str, ...]
    approvals: tuple[dict[str, Any], ...] = ()
    evaluations: tuple[dict[str, Any], ...] = ()
    rollout: Mapping[str, Any] | None = None  # its staged rollout: percent, gate (latest)

    @property
    def proposers(self) -> frozenset[str]:
        return frozenset({self.registered_by, *self.card_by})

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "model": self.model, "stage": str(self.stage),
                "registered_by": self.registered_by, "registered_at": self.registered_at,
                "updated_at": self.updated_at, "has_card": self.card is not None,
                "card_by": list(self.card_by), "approvals": list(self.approvals),
                "evaluations": list(self.evaluations),
                "rollout": None if self.rollout is None else dict(self.rollout)}


def _version_of(row: Mapping[Any, Any]) -> Version:
    return Version(row["version"], row["model"], Stage(row["stage"]), row["registered_by"],
                   row["registered_at"], row["updated_at"], row["card"],
                   tuple(p for p in (row["card_by"] or "").split(",") if p))


def _kill_of(row: Mapping[Any, Any]) -> Kill:
    return Kill(KillKind(row["kind"]), row["name"], row["reason"], row["actor"], row["ts"])


def _event(row: Mapping[Any, Any]) -> dict[str, Any]:
    return {**row, "details": orjson.loads(row["details"]) if row["details"] else None}


class Registry:
    """Thread-safe (a connection pool); the gateway calls it from worker threads."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @classmethod
    def open(cls, url: str) -> Registry:
        engine = make_engine(url)
        migrate(engine)
        return cls(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # -- reading -------------------------------------------------------------------------

    def revision(self) -> int:
        with self._engine.connect() as c:
            return int(c.execute(select(governance_revision.c.revision)).scalar_one())

    def snapshot(self) -> Snapshot:
        """Every version's stage and every kill, as of one revision."""
        with self._engine.begin() as c:
            revision = int(c.execute(select(governance_revision.c.revision)).scalar_one())
            stages = {r.version: Stage(r.stage) for r in
                      c.execute(select(model_versions.c.version, model_versions.c.stage))}
            kills = tuple(_kill_of(r) for r in c.execute(
                select(governance_kills).order_by(governance_kills.c.ts)).mappings())
            percents = {v: p for v, p in rollout_rows.percents(c).items()
                        if stages.get(v) in CANDIDATE}
            rollbacks = {str(r.model): int(r.n) for r in c.execute(
                select(governance_events.c.model, func.count().label("n"))
                .where(governance_events.c.action == "rollback")
                .group_by(governance_events.c.model))}
        return Snapshot(stages, kills, revision, percents, rollbacks)

    def versions(self, model: str | None = None) -> list[Version]:
        query = select(model_versions).order_by(model_versions.c.model,
                                                model_versions.c.registered_at)
        if model is not None:
            query = query.where(model_versions.c.model == model)
        with self._engine.connect() as c:
            found = [_version_of(r) for r in c.execute(query).mappings()]
            rollouts = rollout_rows.read(c, [v.version for v in found])
        return [replace(v, rollout=rollouts.get(v.version)) for v in found]

    def version(self, version: str) -> Version:
        """The version with its approvals and evaluations; NotFound when unknown."""
        with self._engine.connect() as c:
            found = self._row(c, version)
            approved = c.execute(select(version_approvals).where(
                version_approvals.c.version == version).order_by(version_approvals.c.ts))
            evaluated = c.execute(select(version_evaluations).where(
                version_evaluations.c.version == version).order_by(version_evaluations.c.ts))
            return replace(found, approvals=tuple(dict(r) for r in approved.mappings()),
                           evaluations=tuple(_event(r) for r in evaluated.mappings()),
                           rollout=rollout_rows.read(c, [version]).get(version))

    def kills(self) -> list[Kill]:
        with self._engine.connect() as c:
            rows = c.execute(select(governance_kills).order_by(governance_kills.c.ts))
            return [_kill_of(r) for r in rows.mappings()]

    def events(self, *, model: str | None = None, target: str | None = None,
               actions: Sequence[str] | None = None, until: float | None = None,
               limit: int | None = 100) -> list[dict[str, Any]]:
        """Lifecycle events, oldest first (the newest ``limit`` of them)."""
        e = governance_events
        query = select(e).order_by(e.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where((e.c.model == model) | (e.c.target == model))
        if target is not None:
            query = query.where(e.c.target == target)
        if actions is not None:
            query = query.where(e.c.action.in_(actions))
        if until is not None:
            query = query.where(e.c.ts <= until)
        with self._engine.connect() as c:
            return [_event(r) for r in reversed(c.execute(query).mappings().all())]

    # -- changing ------------------------------------------------------------------------

    def _row(self, c: Connection, version: str, lock: bool = False) -> Version:
        query = select(model_versions).where(model_versions.c.version == version)
        row = c.execute(query.with_for_update() if lock else query).mappings().first()
        if row is None:
            raise NotFound(f"No model version '{version}'.")
        return _version_of(row)

    def _record(self, c: Connection, actor: str, action: str, kind: str, target: str, *,
                model: str | None = None, moved: tuple[Stage, Stage] | None = None,
                reason: str | None = None, details: Mapping[str, Any] | None = None) -> None:
        now = time.time()
        event = c.execute(insert(governance_events).values(
            ts=now, actor=actor, action=action, kind=kind, target=target, model=model,
            from_stage=None if moved is None else str(moved[0]),
            to_stage=None if moved is None else str(moved[1]), reason=reason,
            details=None if details is None else orjson.dumps(details).decode()))
        event_id = event.inserted_primary_key[0] if event.inserted_primary_key else None
        # the tamper-evident log takes it in the same transaction: both or neither commit
        audit.append(c, f"governance.{action}", {
            "event": event_id, "kind": kind, "target": target, "model": model,
            "from": None if moved is None else str(moved[0]),
            "to": None if moved is None else str(moved[1]), "reason": reason,
            "details": details}, actor, ts=now)
        c.execute(update(governance_revision).where(governance_revision.c.id == 1)
                  .values(revision=governance_revision.c.revision + 1))

    def _stage(self, c: Connection, version: Version, to: Stage, actor: str, action: str,
               reason: str | None, details: Mapping[str, Any] | None = None) -> None:
        c.execute(update(model_versions).where(model_versions.c.version == version.version)
                  .values(stage=str(to), updated_at=time.time()))
        self._record(c, actor, action, "version", version.version, model=version.model,
                     moved=(version.stage, to), reason=reason, details=details)

    def register(self, versions: Mapping[str, str], actor: str) -> list[str]:
        """Register each ``version -> model`` not registered yet; return those this call
        registered. Idempotent, and safe with several processes at once (an insert that finds
        the version there already does nothing, and records nothing)."""
        made: list[str] = []
        now = time.time()
        with self._engine.begin() as c:
            known = {r.version: r.model for r in c.execute(
                select(model_versions.c.version, model_versions.c.model))}
            for version, model in versions.items():
                if known.get(version, model) != model:
                    raise GovernanceRefused(
                        f"The version '{version}' is registered for the model "
                        f"'{known[version]}', not '{model}': name the new one differently.")
                if version in known:
                    continue
                dialect = postgresql if c.dialect.name == "postgresql" else sqlite
                inserted = c.execute(dialect.insert(model_versions).values(
                    version=version, model=model, stage=str(Stage.REGISTERED),
                    registered_by=actor, registered_at=now, updated_at=now,
                ).on_conflict_do_nothing(index_elements=["version"]))
                if inserted.rowcount == 1:
                    self._record(c, actor, "register", "version", version, model=model)
                    made.append(version)
        return made

    def store_card(self, version: str, text: str, actor: str) -> cards.Card:
        """Store ``text`` as the version's card (checked that it parses); its writer joins
        the version's proposers, who may not approve it."""
        card = cards.parse(text)
        with self._engine.begin() as c:
            found = self._row(c, version, lock=True)
            if found.stage is Stage.RETIRED:
                raise GovernanceRefused(f"The version '{version}' is retired.")
            writers = ",".join(dict.fromkeys((*found.card_by, actor)))
            c.execute(update(model_versions).where(model_versions.c.version == version).values(
                card=text, card_by=writers, card_at=time.time()))
            self._record(c, actor, "card", "version", version, model=found.model)
        return card

    def approve(self, version: str, actor: str, settings: GovernanceConfig,
                comment: str | None = None) -> tuple[Version, approvals.Verdict]:
        """Record ``actor``'s approval (raises when the four-eyes rule refuses it); once
        enough, the version moves to approved."""
        with self._engine.begin() as c:
            found = self._row(c, version, lock=True)
            approvers = frozenset(c.scalars(select(version_approvals.c.approver).where(
                version_approvals.c.version == version)))
            card = None if found.card is None else cards.parse(found.card)
            proposal = approvals.Proposal(
                version, found.proposers, approvers,
                cards.missing(card, settings.card_fields), self._evaluation_passed(c, version),
                retired=found.stage is Stage.RETIRED)
            verdict = approvals.judge(proposal, actor, settings.approvals,
                                      require_evaluation=settings.require_evaluation)
            if isinstance(verdict, InferplaneError):
                raise verdict
            c.execute(insert(version_approvals).values(
                version=version, approver=actor, ts=time.time(), comment=comment))
            self._record(c, actor, "approve", "version", version, model=found.model,
                         reason=comment, details={"count": verdict.count,
                                                  "required": verdict.required})
            if verdict.enough and found.stage is Stage.REGISTERED:
                self._stage(c, found, Stage.APPROVED, actor, "stage",
                            f"{verdict.count} of {verdict.required} approvals")
        return self.version(version), verdict

    def _evaluation_passed(self, c: Connection, version: str) -> bool | None:
        e = version_evaluations
        row = c.execute(select(e.c.passed).where(e.c.version == version)
                        .order_by(e.c.ts.desc(), e.c.id.desc()).limit(1)).first()
        return None if row is None else bool(row[0])

    def record_evaluation(self, version: str, suite: str, metric: str, score: float,
                          passed: bool, actor: str, threshold: float | None = None,
                          details: Mapping[str, Any] | None = None) -> None:
        """Store one evaluation result (the evaluation runner calls this); the latest one is
        the gate ``governance.require_evaluation`` checks before approval."""
        with self._engine.begin() as c:
            found = self._row(c, version)
            c.execute(insert(version_evaluations).values(
                version=version, suite=suite, metric=metric, score=score, threshold=threshold,
                passed=passed, actor=actor, ts=time.time(),
                details=None if details is None else orjson.dumps(details).decode()))
            self._record(c, actor, "evaluation", "version", version, model=found.model,
                         details={"suite": suite, "metric": metric, "score": score,
                                  "threshold": threshold, "passed": passed})

    def retire(self, version: str, actor: str, reason: str, settings: GovernanceConfig
               ) -> Version:
        with self._engine.begin() as c:
            found = self._row(c, version, lock=True)
            why = why_not(found.stage, Stage.RETIRED,
                          require_approval=settings.require_approval)
            if why is not None:
                raise GovernanceRefused(f"Cannot retire '{version}': {why}.")
            self._stage(c, found, Stage.RETIRED, actor, "retire", reason)
        return self.version(version)

    def _model_state(self, c: Connection, model: str, settings: GovernanceConfig
                     ) -> tuple[dict[str, Version], dict[str, Stage], dict[str, bool]]:
        rows = c.execute(select(model_versions).where(model_versions.c.model == model)
                         .with_for_update()).mappings()
        found = {r["version"]: _version_of(r) for r in rows}
        counts = self._approval_counts(c, found)
        approved = {v: counts[v] >= settings.approvals or found[v].stage in
                    APPROVED_OR_LATER - {Stage.PRODUCTION} for v in found}
        return found, {v: f.stage for v, f in found.items()}, approved

    def _approval_counts(self, c: Connection, versions: Sequence[str] | Mapping[str, Any]
                         ) -> dict[str, int]:
        a = version_approvals
        counts: dict[str, int] = {str(v): int(n) for v, n in c.execute(
            select(a.c.version, func.count()).where(a.c.version.in_(list(versions)))
            .group_by(a.c.version))}
        return {v: counts.get(v, 0) for v in versions}

    def _apply(self, c: Connection, found: Mapping[str, Version], moves: Sequence[Move],
               actor: str, action: str, reason: str | None,
               extra: Mapping[str, Any] | None = None) -> None:
        details = {"replaced": [m.version for m in moves if m.from_stage is Stage.PRODUCTION
                                and m.to_stage is not Stage.PRODUCTION], **(extra or {})}
        for move in moves:
            self._stage(c, found[move.version], move.to_stage, actor,
                        action if move is moves[0] else "stage", reason,
                        details if move is moves[0] else None)

    def rollout(self, version: str, stage: Stage, actor: str, reason: str | None,
                settings: GovernanceConfig, percent: float | None = None,
                promote_after_s: float | None = None) -> list[Move]:
        """Put ``version`` in ``stage`` (production: the model's production versions step
        down, and a rollback can bring them back; shadow and canary: at ``percent``, a canary
        promoted by the rollout watcher once its gates passed for ``promote_after_s``). A
        canary rolled out again to canary takes its new percent."""
        share = rollout_percent(stage, percent)
        if promote_after_s is not None and stage is not Stage.CANARY:
            raise InvalidRequest("Only a canary is promoted by schedule.", param="promote_after")
        with self._engine.begin() as c:
            model = self._row(c, version).model
            found, stages, approved = self._model_state(c, model, settings)
            moves = plan_rollout(stages, approved, version, stage,
                                 require_approval=settings.require_approval)
            extra = {} if share is None else {"percent": share,
                                              "promote_after_s": promote_after_s}
            self._apply(c, found, moves, actor, "rollout", reason, extra)
            if share is not None:
                rollout_rows.start(c, version, share, promote_after_s, actor, time.time(),
                                   fresh=stages[version] not in CANDIDATE)
        return moves

    def promote(self, version: str, actor: str, reason: str, settings: GovernanceConfig
                ) -> list[Move]:
        """Put the canary ``version`` in production (the rollout watcher's schedule); nothing
        when it is no longer in canary (another process, or a person, moved it first)."""
        with self._engine.begin() as c:
            model = self._row(c, version).model
            found, stages, approved = self._model_state(c, model, settings)
            if stages.get(version) is not Stage.CANARY:
                return []
            moves = plan_rollout(stages, approved, version, Stage.PRODUCTION,
                                 require_approval=settings.require_approval)
            self._apply(c, found, moves, actor, "rollout", reason)
        return moves

    def rollback_candidate(self, version: str, actor: str, reason: str,
                           settings: GovernanceConfig,
                           details: Mapping[str, Any] | None = None) -> list[Move]:
        """Take ``version`` out of shadow or canary at once. Idempotent: with several
        processes rolling it back, the first moves it (the model's rows locked) and the
        others find nothing to do."""
        with self._engine.begin() as c:
            model = self._row(c, version).model
            return self._rollback_candidate(c, model, version, actor, reason, settings,
                                            details)

    def _rollback_candidate(self, c: Connection, model: str, version: str, actor: str,
                            reason: str | None, settings: GovernanceConfig,
                            details: Mapping[str, Any] | None = None) -> list[Move]:
        found, stages, _ = self._model_state(c, model, settings)
        approved = {v: n >= settings.approvals for v, n in self._approval_counts(c, found).items()}
        moves = plan_candidate_rollback(stages, approved, version)
        for move in moves:
            self._stage(c, found[move.version], move.to_stage, actor, "rollback", reason,
                        details)
        return moves

    def judged(self, version: str, outcome: str, reasons: Sequence[str]
               ) -> tuple[float, float | None] | None:
        """Keep the gates' latest verdict on ``version`` (no event, no revision: it changes
        no routing); return since when the outcome has been the same and the promotion
        schedule (``rollout_rows.judged``)."""
        with self._engine.begin() as c:
            return rollout_rows.judged(c, version, outcome, reasons, time.time())

    def rollback(self, model: str, actor: str, reason: str | None,
                 settings: GovernanceConfig) -> list[Move]:
        """Take the model's candidate out of shadow or canary when it has one; otherwise give
        production back to the versions the latest rollout (or rollback) of ``model`` took it
        from."""
        with self._engine.begin() as c:
            found, stages, approved = self._model_state(c, model, settings)
            if not found:
                raise NotFound(f"No versions of the model '{model}' are registered.")
            candidate = candidate_of(stages)
            if candidate is not None:
                return self._rollback_candidate(c, model, candidate, actor, reason, settings)
            e = governance_events
            last = c.execute(select(e.c.details).where(  # the latest move into production
                e.c.model == model, e.c.action.in_(("rollout", "rollback")),
                e.c.to_stage == str(Stage.PRODUCTION))
                .order_by(e.c.id.desc()).limit(1)).scalar_one_or_none()
            replaced = orjson.loads(last).get("replaced", []) if last else []
            moves = plan_rollback(stages, approved, replaced)
            self._apply(c, found, moves, actor, "rollback", reason)
        return moves

    def kill(self, kind: KillKind, name: str, reason: str, actor: str) -> Kill:
        """Stop every request to what ``kind``/``name`` names, on every gateway process."""
        kill = Kill(kind, name, reason, actor, time.time())
        with self._engine.begin() as c:
            c.execute(delete(governance_kills).where(governance_kills.c.kind == str(kind),
                                                     governance_kills.c.name == name))
            c.execute(insert(governance_kills).values(kind=str(kind), name=name, reason=reason,
                                                      actor=actor, ts=kill.ts))
            self._record(c, actor, "kill", str(kind), name,
                         model=name if kind is KillKind.MODEL else None, reason=reason)
        return kill

    def unkill(self, kind: KillKind, name: str, actor: str, reason: str | None = None) -> None:
        with self._engine.begin() as c:
            gone = c.execute(delete(governance_kills).where(
                governance_kills.c.kind == str(kind), governance_kills.c.name == name))
            if gone.rowcount == 0:
                raise NotFound(f"No kill of {kind} '{name}' is in force.")
            self._record(c, actor, "unkill", str(kind), name,
                         model=name if kind is KillKind.MODEL else None, reason=reason)
