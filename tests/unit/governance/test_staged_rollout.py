"""The staged rollout's pure additions (the moves, the canary's split of a model's deployments,
the ledger window the gates read, promotion by schedule, history with percents) and the
registry's rollout records on SQLite."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from inferplane.config import DeploymentConfig, GovernanceConfig
from inferplane.errors import GovernanceRefused, InvalidRequest
from inferplane.governance.canary import Split, split, takes
from inferplane.governance.gate_window import Row, Sides, tally
from inferplane.governance.history import state_at
from inferplane.governance.holdback import Snapshot, candidates, held_back
from inferplane.governance.kills import Kill, KillKind
from inferplane.governance.registry import Registry
from inferplane.governance.rollout import (
    plan_candidate_rollback,
    plan_rollout,
    rollout_percent,
)
from inferplane.governance.rollout_gates import Outcome, promotion_due
from inferplane.governance.stages import Stage

P, A, S, C = Stage.PRODUCTION, Stage.APPROVED, Stage.SHADOW, Stage.CANARY


def moves(stages: dict[str, Stage], version: str, target: Stage) -> list[tuple[str, str, str]]:
    return [(m.version, m.from_stage.value, m.to_stage.value) for m in plan_rollout(
        stages, dict.fromkeys(stages, True), version, target, require_approval=True)]


# -- moves -----------------------------------------------------------------------------------

def test_a_candidate_needs_a_production_incumbent_and_is_the_only_one() -> None:
    assert moves({"v1": P, "v2": A}, "v2", S) == [("v2", "approved", "shadow")]
    assert moves({"v1": P, "v2": S}, "v2", C) == [("v2", "shadow", "canary")]
    assert moves({"v1": P, "v2": C}, "v2", C) == [("v2", "canary", "canary")]  # a new percent
    assert moves({"v1": P, "v2": C}, "v2", P) == [("v2", "canary", "production"),
                                                  ("v1", "production", "approved")]
    with pytest.raises(GovernanceRefused, match="no version in production"):
        moves({"v1": A, "v2": A}, "v2", C)
    with pytest.raises(GovernanceRefused, match="'v2' is in canary"):
        moves({"v1": P, "v2": C, "v3": A}, "v3", S)
    with pytest.raises(GovernanceRefused, match="in production already"):
        moves({"v1": P, "v2": P}, "v1", C)
    with pytest.raises(GovernanceRefused, match="no transition from canary to shadow"):
        moves({"v1": P, "v2": C}, "v2", S)


def test_the_percent_of_a_rollout() -> None:
    assert rollout_percent(S, None) == 100 and rollout_percent(C, None) == 5
    assert rollout_percent(C, 100) == 100 and rollout_percent(P, None) is None
    for wrong in (0, -1, 100.5):
        with pytest.raises(InvalidRequest, match="over 0 and at most 100"):
            rollout_percent(C, wrong)
    with pytest.raises(InvalidRequest, match="a percent applies to shadow and canary"):
        rollout_percent(P, 20)


def test_a_candidate_rollback_rests_by_its_approvals_and_happens_once() -> None:
    assert [(m.version, m.to_stage) for m in plan_candidate_rollback(
        {"v1": P, "v2": C}, {"v2": False}, "v2")] == [("v2", Stage.REGISTERED)]
    assert [m.to_stage for m in plan_candidate_rollback({"v2": S}, {"v2": True}, "v2")] == [A]
    assert plan_candidate_rollback({"v1": P, "v2": A}, {"v2": True}, "v2") == []
    assert plan_candidate_rollback({"v1": P}, {}, "gone") == []


# -- the split --------------------------------------------------------------------------------

def test_a_request_in_the_share_tries_the_canary_then_the_incumbent() -> None:
    canary = Split("v2", 30.0, frozenset({"b1", "b2"}))
    names = ["a1", "b1", "a2", "b2"]
    keys = [f"user:{i}" for i in range(400)]
    inside = [k for k in keys if takes(30, "m", k)]
    outside = [k for k in keys if not takes(30, "m", k)]
    assert inside and outside
    for key in inside:
        assert split(canary, "m", key, names).tried == (("b1", "b2"), ("a1", "a2"))
    for key in outside:
        groups = split(canary, "m", key, names)
        assert groups.tried == (("a1", "a2"),) and groups.turned_away == ("b1", "b2")
        assert groups.share is False
    assert split(Split("v2", 100.0, frozenset({"b1"})), "m", "", names).share is False  # no key
    assert split(None, "m", inside[0], names).tried == (tuple(names),)


def dep(name: str, version: str, model: str = "m") -> DeploymentConfig:
    return DeploymentConfig(name=name, model=model, provider="p", version=version)


def test_the_snapshot_gives_the_router_its_canaries_and_the_sender_its_shadows() -> None:
    ds = [dep("a", "v1"), dep("b1", "v2"), dep("b2", "v2"), dep("s", "w2", "n"),
          dep("t", "w1", "n")]
    kill = Kill(KillKind.DEPLOYMENT, "b1", "bad", "cli:x", 0)
    snap = Snapshot({"v1": P, "v2": C, "w1": P, "w2": S}, (kill,), 1, {"v2": 20.0, "w2": 50.0})
    assert candidates(ds, snap, C) == {"m": Split("v2", 20.0, frozenset({"b1", "b2"}))}
    assert candidates(ds, snap, S) == {"n": Split("w2", 50.0, frozenset({"s"}))}
    killed = Snapshot(snap.stages, (Kill(KillKind.DEPLOYMENT, "s", "x", "cli:x", 0),), 1,
                      snap.percents)
    assert candidates(ds, killed, S) == {}  # nothing is mirrored to a killed shadow
    held = held_back(ds, snap, require_approval=True)
    assert set(held) == {"b1", "s"}  # the canary splits per request; the shadow serves none
    assert held["s"].startswith("version w2 is in shadow")


# -- the gates' window ------------------------------------------------------------------------

def attempts(*entries: tuple[str, str, int | None]) -> str:
    return orjson.dumps([{"deployment": d, "outcome": o, "status": s}
                         for d, o, s in entries]).decode()


CANARY = Sides("v2", frozenset({"b"}), False, frozenset({"v1"}))


def test_a_failed_canary_attempt_counts_even_when_the_incumbent_served() -> None:
    rows = [
        Row("v1", 200, 900.0, 1.0, 100, attempts(("b", "error", 502), ("a", "ok", None))),
        Row("v2", 200, 10.0, 0.5, 100, attempts(("b", "ok", None))),
        Row("v2", 502, None, 0.0, 0, attempts(("b", "error_after_start", 502))),
        Row("v2", 400, None, 0.0, 0, attempts(("b", "error", 400))),  # the client's fault
        Row("v1", 200, 20.0, 1.0, 100, attempts(("a", "ok", None))),
        Row("v1", 503, None, 0.0, 0, None),
        Row(None, 502, None, 0.0, 0, attempts(("a", "error", 502))),
        Row("v2", 200, 5.0, 1.0, 100, shadow_of="x"),  # a shadow's: not live traffic
    ]
    candidate, incumbent = tally(rows, CANARY)
    assert (candidate.requests, candidate.errors) == (4, 2)
    assert candidate.ttft_ms == [10.0] and candidate.tokens == 100  # its own answers only
    assert (incumbent.requests, incumbent.errors) == (3, 2)
    assert incumbent.ttft_ms == [20.0]


def test_a_share_request_turned_away_by_the_canarys_open_circuit_is_its_error() -> None:
    def reason(share: bool, constraint: str = "breaker") -> str:
        return orjson.dumps({"decisions": [], "canary": {"version": "v2", "share": share},
                             "rejected": [{"deployment": "b", "constraint": constraint,
                                           "reason": "circuit open"}]}).decode()

    rows = [Row("v1", 200, 5.0, routing_reason=reason(True)),
            Row("v1", 200, 5.0, routing_reason=reason(False)),
            Row("v1", 200, 5.0, routing_reason=reason(True, "governance"))]
    candidate, incumbent = tally(rows, CANARY)
    assert (candidate.requests, candidate.errors) == (1, 1) and candidate.ttft_ms == []
    assert incumbent.requests == 2


def test_a_shadow_is_judged_on_its_shadow_records() -> None:
    sides = Sides("v2", frozenset({"b"}), True, frozenset({"v1"}))
    rows = [Row("v2", 200, 50.0, shadow_of="r1"), Row("v2", 500, None, shadow_of="r2"),
            Row("v1", 200, 5.0), Row("v1", 200, 6.0), Row("v3", 200, 1.0, shadow_of="r3")]
    candidate, incumbent = tally(rows, sides)
    assert (candidate.requests, candidate.errors, candidate.ttft_ms) == (2, 1, [50.0])
    assert (incumbent.requests, incumbent.ttft_ms) == (2, [5.0, 6.0])


def test_promotion_waits_for_an_unbroken_pass() -> None:
    assert promotion_due(Outcome.PASS, 100.0, 60.0, 160.0)
    assert not promotion_due(Outcome.PASS, 100.0, 60.0, 159.9)
    assert not promotion_due(Outcome.PASS, 0.0, None, 1e9)  # by hand only
    assert not promotion_due(Outcome.WAIT, 0.0, 1.0, 100.0)


def test_history_keeps_the_percent_while_a_version_is_a_candidate() -> None:
    def ev(ts: float, target: str, to: str, percent: float | None = None) -> dict[str, object]:
        return {"ts": ts, "action": "rollout", "kind": "version", "target": target,
                "to_stage": to, "reason": None,
                "details": None if percent is None else {"percent": percent}}

    events = [ev(1, "v1", "production"), ev(2, "v2", "canary", 5), ev(3, "v2", "canary", 20),
              ev(4, "v2", "approved")]
    assert state_at(events, 2.5).percents == {"v2": 5}
    assert state_at(events, 3).percents == {"v2": 20}
    assert state_at(events, 4).percents == {} and state_at(events, 4).stages["v2"] == "approved"


# -- the registry -----------------------------------------------------------------------------

def test_the_registry_keeps_the_rollout_and_rolls_a_candidate_back_once(tmp_path: Path) -> None:
    registry = Registry.open(f"sqlite:///{tmp_path}/r.db")
    settings = GovernanceConfig()
    registry.register({"v1": "m", "v2": "m"}, "config:h")
    registry.rollout("v1", P, "cli:ann", None, settings)
    registry.rollout("v2", C, "cli:ann", "try it", settings, 10, 600)
    registry.rollout("v2", C, "cli:ann", "more", settings, 25)
    snapshot = registry.snapshot()
    assert snapshot.stages["v2"] is C and snapshot.percents == {"v2": 25.0}
    first = registry.judged("v2", "pass", [])
    assert first is not None and first[1] is None  # the new percent dropped the schedule
    assert registry.judged("v2", "pass", []) == first  # passing since the first pass
    assert registry.judged("v2", "fail", ["error rate 9%"])[0] >= first[0]  # type: ignore[index]
    moved = registry.rollback_candidate("v2", "rollout-watcher", "gates failed", settings,
                                        {"verdict": ["error rate 9%"]})
    assert [(m.version, m.to_stage) for m in moved] == [("v2", Stage.REGISTERED)]
    revision = registry.revision()
    assert registry.rollback_candidate("v2", "rollout-watcher", "again", settings) == []
    assert registry.revision() == revision  # the second did nothing, recorded nothing
    shown = registry.version("v2").to_dict()["rollout"]
    assert shown["percent"] == 25 and shown["gate"] == {
        "outcome": "fail", "reasons": ["error rate 9%"], "at": shown["gate"]["at"],
        "since": shown["gate"]["since"]}
    assert registry.snapshot().percents == {}
    with pytest.raises(InvalidRequest, match="Only a canary"):
        registry.rollout("v2", S, "cli:ann", None, settings, promote_after_s=5)
    registry.rollout("v2", S, "cli:ann", None, settings)
    assert [m.version for m in registry.rollback("m", "cli:ann", "by hand", settings)] == ["v2"]
    registry.rollout("v2", C, "cli:ann", None, settings)
    assert [m.to_stage for m in registry.promote("v2", "rollout-watcher", "ok", settings)] == [
        P, Stage.REGISTERED]  # v1 steps down (never approved)
    assert registry.promote("v2", "rollout-watcher", "ok", settings) == []
    back = registry.rollback("m", "cli:ann", "slow", settings)  # production, as before
    assert [(m.version, m.to_stage) for m in back] == [("v1", P), ("v2", Stage.REGISTERED)]
    registry.close()


def test_every_registry_change_is_an_audit_log_entry_in_its_own_transaction(
        tmp_path: Path) -> None:
    from inferplane.audit.entries import decode
    from inferplane.audit.store import read_entries, read_head
    from inferplane.governance.kills import KillKind

    registry = Registry.open(f"sqlite:///{tmp_path}/r.db")
    try:
        registry.register({"v1": "m"}, "config:test")
        registry.kill(KillKind.MODEL, "m", "bad answers", "key:ops")
        with registry.engine.connect() as c:
            size = read_head(c).size
            entries = [decode(e.leaf_input) for e in read_entries(c, 0, size)]
    finally:
        registry.close()
    kinds = [(e.kind, e.actor, e.data["target"]) for e in entries]
    assert ("governance.register", "config:test", "v1") in kinds
    assert ("governance.kill", "key:ops", "m") in kinds
    kill = next(e for e in entries if e.kind == "governance.kill")
    assert kill.data["reason"] == "bad answers" and kill.index == size - 1
