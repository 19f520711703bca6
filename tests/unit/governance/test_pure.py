"""The pure parts of governance: the stage machine, the four-eyes rule, model cards, kills,
the gate, rollout moves, history replay, and the router's governance constraint."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from inferplane.config import DeploymentConfig, GovernanceConfig
from inferplane.errors import Conflict, GovernanceRefused, SelfApproval
from inferplane.governance import cards
from inferplane.governance.approvals import Proposal, Verdict, judge
from inferplane.governance.history import state_at
from inferplane.governance.holdback import Snapshot, held_back
from inferplane.governance.kills import Kill, KillKind, stopping
from inferplane.governance.rollout import plan_rollback, plan_rollout
from inferplane.governance.stages import Stage, allowed, serves, why_not
from inferplane.routing.constraints import Constraint, admissible, refusal
from tests.unit.routing.factories import cand, profile

COMPLETE = """---
license: apache-2.0
base_model: meta-llama/Llama-3.1-8B
datasets: [wikitext]
---
# Chat v2
## Intended Uses
Customer support answers.
## Out-of-Scope Use
Medical advice.
## Limitations
Small context.
## Bias, Risks and Limitations
Hallucinates.
## Training Data
Public web text.
"""


# -- stages ----------------------------------------------------------------------------------

def test_retired_is_final_and_approval_is_not_a_stage_move() -> None:
    for target in Stage:
        assert not allowed(Stage.RETIRED, target, require_approval=False)
    assert why_not(Stage.REGISTERED, Stage.APPROVED, require_approval=True) is None
    assert "approvals" in str(why_not(Stage.PRODUCTION, Stage.APPROVED,
                                      require_approval=True) or "approvals")


@given(st.sampled_from(list(Stage)), st.sampled_from(list(Stage)))
def test_approval_requirement_only_closes_the_registered_shortcut(a: Stage, b: Stage) -> None:
    strict = allowed(a, b, require_approval=True)
    loose = allowed(a, b, require_approval=False)
    assert not strict or loose  # the strict machine allows a subset of the loose one
    if strict != loose:
        assert a is Stage.REGISTERED and b in (Stage.SHADOW, Stage.CANARY, Stage.PRODUCTION)
    assert (why_not(a, b, require_approval=True) is None) == strict


def test_which_stages_serve() -> None:
    assert serves(Stage.REGISTERED, require_approval=False, model_has_production=False) is None
    assert serves(Stage.REGISTERED, require_approval=True,
                  model_has_production=False) == "not approved"
    assert serves(Stage.RETIRED, require_approval=False, model_has_production=False) == "retired"
    assert serves(Stage.PRODUCTION, require_approval=True, model_has_production=True) is None
    assert serves(Stage.APPROVED, require_approval=False, model_has_production=True) is not None
    assert serves(Stage.SHADOW, require_approval=False, model_has_production=False) is not None


# -- four eyes -------------------------------------------------------------------------------

def _proposal(**changes: object) -> Proposal:
    base: dict[str, object] = {"version": "v2", "proposers": frozenset({"config:h", "key:al"}),
                               "approvers": frozenset(), "missing_card_fields": [],
                               "evaluation_passed": None}
    return Proposal(**{**base, **changes})  # type: ignore[arg-type]


def test_four_eyes() -> None:
    assert isinstance(judge(_proposal(), "key:al", 1, require_evaluation=False), SelfApproval)
    assert isinstance(judge(_proposal(), "config:h", 1, require_evaluation=False), SelfApproval)
    twice = judge(_proposal(approvers=frozenset({"key:bo"})), "key:bo", 2,
                  require_evaluation=False)
    assert isinstance(twice, Conflict)
    assert judge(_proposal(approvers=frozenset({"key:bo"})), "key:cy", 2,
                 require_evaluation=False) == Verdict(2, 2)
    assert not judge(_proposal(), "key:bo", 2, require_evaluation=False).enough  # type: ignore[union-attr]


def test_missing_card_and_failed_evaluation_refuse_with_the_list() -> None:
    refused = judge(_proposal(missing_card_fields=["license", "risks"]), "key:bo", 1,
                    require_evaluation=False)
    assert isinstance(refused, GovernanceRefused) and refused.code == "card_incomplete"
    assert "license, risks" in refused.message
    for passed in (None, False):
        gate = judge(_proposal(evaluation_passed=passed), "key:bo", 1, require_evaluation=True)
        assert isinstance(gate, GovernanceRefused) and gate.code == "evaluation_required"
    assert isinstance(judge(_proposal(evaluation_passed=True), "key:bo", 1,
                            require_evaluation=True), Verdict)
    assert isinstance(judge(_proposal(retired=True), "key:bo", 1, require_evaluation=False),
                      GovernanceRefused)


# -- cards -----------------------------------------------------------------------------------

def test_a_complete_card_lacks_nothing_of_the_defaults() -> None:
    card = cards.parse(COMPLETE)
    assert cards.missing(card, GovernanceConfig().card_fields) == []
    assert card.sections["risks"] == "Hallucinates."
    assert cards.missing(card, ["evaluation", "model-index"]) == ["evaluation", "model-index"]


def test_missing_fields_in_order_and_placeholders_count_as_missing() -> None:
    text = COMPLETE.replace("license: apache-2.0\n", "").replace(
        "Small context.", "[More Information Needed]")
    assert cards.missing(cards.parse(text), GovernanceConfig().card_fields) == [
        "license", "limitations"]
    assert cards.missing(None, ["license", "risks"]) == ["license", "risks"]
    assert cards.missing(cards.parse("no front matter at all"), ["license"]) == ["license"]


def test_unreadable_cards_are_refused() -> None:
    with pytest.raises(Exception, match="YAML metadata"):
        cards.parse("---\nlicense: [unclosed\n---\n")
    with pytest.raises(Exception, match="mapping"):
        cards.parse("---\n- a list\n---\n")


def test_render_fills_environmental_impact_and_model_index() -> None:
    text = cards.render(cards.parse(COMPLETE), "chat-v2",
                        cards.Footprint(4, 1000, 0.5, 0.25, 120.0),
                        [cards.EvalResult("smoke", "accuracy", 0.9, True)])
    again = cards.parse(text)
    assert again.metadata["license"] == "apache-2.0"
    assert again.metadata["model-index"][0]["results"][0]["metrics"][0]["value"] == 0.9
    impact = again.sections["environmental_impact"]
    assert "0.5 kWh" in impact and "0.25 kWh measured" in impact and "120 g CO2e" in impact
    assert re.search(r"500 kWh per 1M tokens", impact)


# -- kills, gate -----------------------------------------------------------------------------

def _d(name: str, model: str = "chat", provider: str = "openai",
       version: str | None = None) -> DeploymentConfig:
    return DeploymentConfig(name=name, model=model, provider=provider, version=version)


def test_a_deployment_kill_wins_over_its_models_and_providers() -> None:
    by = {k: Kill(k, n, f"why {k}", "cli:x", 0) for k, n in (
        (KillKind.PROVIDER, "openai"), (KillKind.MODEL, "chat"), (KillKind.DEPLOYMENT, "a"))}
    assert stopping(by.values(), "a", "chat", "openai") is by[KillKind.DEPLOYMENT]
    assert stopping(by.values(), "b", "chat", "openai") is by[KillKind.MODEL]
    assert stopping(by.values(), "c", "embed", "openai") is by[KillKind.PROVIDER]
    assert stopping(by.values(), "c", "embed", "anthropic") is None


def test_gate_holds_back_unapproved_killed_and_non_production_versions() -> None:
    ds = [_d("a", version="v1"), _d("b", version="v2"), _d("c", model="embed", provider="x")]
    stages = {"v1": Stage.APPROVED, "v2": Stage.REGISTERED, "c": Stage.APPROVED}
    held = held_back(ds, Snapshot(stages), require_approval=True)
    assert held == {"b": "version v2 is not approved"}
    assert held_back(ds, Snapshot(stages), require_approval=False) == {}
    kill = Kill(KillKind.PROVIDER, "x", "outage", "key:k", 0)
    assert held_back(ds, Snapshot(stages, (kill,)), require_approval=False) == {
        "c": "killed (provider x: outage)"}
    production = {**stages, "v2": Stage.PRODUCTION}
    assert set(held_back(ds, Snapshot(production), require_approval=False)) == {"a"}


def test_the_governance_constraint_rejects_first_and_names_why() -> None:
    ok, held = cand("ok"), cand("held", held_back="version v9 is not approved",
                                breaker_open=True)
    admission = admissible([held, ok], profile())
    assert [c.name for c in admission.kept] == ["ok"]
    assert admission.rejected[0].constraint is Constraint.GOVERNANCE
    none_left = admissible([held], profile())
    why = refusal(none_left, "chat")
    assert why.constraint is Constraint.GOVERNANCE and not why.client_error
    assert "held: version v9 is not approved" in why.message


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=8))
def test_no_held_back_candidate_is_ever_kept(flags: list[tuple[bool, bool]]) -> None:
    candidates = [cand(f"d{i}", held_back="killed" if h else None, breaker_open=b)
                  for i, (h, b) in enumerate(flags)]
    kept = admissible(candidates, profile()).kept
    assert all(c.held_back is None for c in kept)


# -- rollout, history ------------------------------------------------------------------------

def test_rollout_and_rollback_moves() -> None:
    stages = {"v1": Stage.PRODUCTION, "v2": Stage.REGISTERED}
    with pytest.raises(GovernanceRefused, match="approved"):
        plan_rollout(stages, {}, "v2", Stage.PRODUCTION, require_approval=True)
    moves = plan_rollout(stages, {"v1": True}, "v2", Stage.PRODUCTION, require_approval=False)
    assert [(m.version, m.to_stage) for m in moves] == [
        ("v2", Stage.PRODUCTION), ("v1", Stage.APPROVED)]
    after = {"v1": Stage.APPROVED, "v2": Stage.PRODUCTION}
    back = plan_rollback(after, {"v1": True}, ["v1"])
    assert [(m.version, m.to_stage) for m in back] == [
        ("v1", Stage.PRODUCTION), ("v2", Stage.REGISTERED)]
    with pytest.raises(GovernanceRefused, match="no earlier production"):
        plan_rollback({"v1": Stage.RETIRED, "v2": Stage.PRODUCTION}, {}, ["v1"])


def test_history_replays_to_the_moment() -> None:
    def ev(ts: float, action: str, target: str, to: str | None = None, kind: str = "version",
           reason: str | None = None) -> dict[str, object]:
        return {"ts": ts, "action": action, "kind": kind, "target": target, "to_stage": to,
                "reason": reason}

    events = [ev(1, "register", "v1"), ev(1, "register", "v2"),
              ev(2, "rollout", "v1", "production"), ev(5, "rollout", "v2", "production"),
              ev(5, "stage", "v1", "approved"), ev(6, "kill", "chat", kind="model", reason="r"),
              ev(7, "unkill", "chat", kind="model")]
    assert state_at(events, 0.5).stages == {}
    assert state_at(events, 3).production == ["v1"]
    assert state_at(events, 5).production == ["v2"]
    assert state_at(events, 6.5).kills == {"model chat": "r"}
    assert state_at(events, 7).kills == {}


def test_governance_keys_are_documented() -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "configuration.md").read_text()
    assert [n for n in GovernanceConfig.model_fields if f"`{n}`" not in text] == []
    assert "`version`" in text
