"""Hard constraints: residency, price cap, open circuit; and the refusal when none is left."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from inferplane.routing.candidate import Candidate, max_cost_usd
from inferplane.routing.constraints import (
    Admission,
    Constraint,
    Rejection,
    admissible,
    refusal,
)
from tests.unit.routing.factories import cand, profile

REGIONS = ["eu-west-1", "eu-central-1", "us-east", "us-west-2", "local", "ap-south-1"]
JURISDICTIONS = ["eu", "us", "local", "in"]
PLACES = REGIONS + JURISDICTIONS

candidates_st = st.lists(
    st.builds(
        lambda i, region, jurisdiction, price, open_: cand(
            f"d{i}", region=region, jurisdiction=jurisdiction, input_per_mtok=price,
            output_per_mtok=price, breaker_open=open_),
        st.integers(0, 10**6), st.sampled_from(REGIONS), st.sampled_from(JURISDICTIONS),
        st.floats(0, 50), st.booleans()),
    max_size=12, unique_by=lambda c: c.name)
place_sets = st.none() | st.frozensets(st.sampled_from(PLACES), max_size=4)


def inside(c: Candidate, allowed: frozenset[str] | None) -> bool:
    return allowed is None or c.region in allowed or c.jurisdiction in allowed


@given(candidates_st, place_sets, place_sets, st.none() | st.floats(0, 0.1))
def test_residency_is_never_violated(candidates: list[Candidate],
                                     regions: frozenset[str] | None,
                                     jurisdictions: frozenset[str] | None,
                                     cap: float | None) -> None:
    p = profile(allowed_regions=regions, allowed_jurisdictions=jurisdictions, max_price_usd=cap)
    adm = admissible(candidates, p)
    for c in adm.kept:
        assert inside(c, regions) and inside(c, jurisdictions)
        assert not c.breaker_open
        assert cap is None or max_cost_usd(c, p) <= cap
    # every candidate is either kept (in input order) or rejected, never both
    rejected = {r.deployment for r in adm.rejected}
    assert [c for c in candidates if c.name not in rejected] == list(adm.kept)
    assert len(adm.kept) + len(adm.rejected) == len(candidates)
    outside = {c.name for c in candidates
               if not (inside(c, regions) and inside(c, jurisdictions))}
    assert {r.deployment for r in adm.rejected
            if r.constraint is Constraint.RESIDENCY} == outside


def test_residency_value_matches_region_or_jurisdiction() -> None:
    eu_region = cand("a", region="eu-west-1", jurisdiction="eu")
    us = cand("b", region="us-east", jurisdiction="us")
    by_jurisdiction = admissible([eu_region, us], profile(allowed_regions=frozenset({"eu"})))
    by_region = admissible([eu_region, us], profile(allowed_regions=frozenset({"eu-west-1"})))
    assert [c.name for c in by_jurisdiction.kept] == ["a"]
    assert [c.name for c in by_region.kept] == ["a"]


def test_both_residency_sets_must_match() -> None:
    c = cand("a", region="eu-west-1", jurisdiction="eu")
    p = profile(allowed_regions=frozenset({"eu-west-1"}), allowed_jurisdictions=frozenset({"us"}))
    assert admissible([c], p).kept == ()


def test_empty_residency_set_admits_nothing_and_none_admits_all() -> None:
    cs = [cand("a"), cand("b", region="local", jurisdiction="local")]
    assert admissible(cs, profile(allowed_regions=frozenset())).kept == ()
    assert len(admissible(cs, profile(allowed_regions=None)).kept) == 2


def test_residency_reason_names_region_and_allowed_set() -> None:
    c = cand("a", region="us-east", jurisdiction="us-east")
    adm = admissible([c], profile(allowed_jurisdictions=frozenset({"eu"})))
    assert adm.rejected == (Rejection("a", Constraint.RESIDENCY,
                                      "region us-east is outside the allowed residency {eu}"),)


def test_price_cap_rejects_over_and_keeps_at_the_cap() -> None:
    # 1000 prompt + 200 output tokens
    over = cand("over", input_per_mtok=10.3, output_per_mtok=10.0)  # $0.0123
    at = cand("at", input_per_mtok=6.0, output_per_mtok=20.0)  # $0.0100 exactly
    adm = admissible([over, at], profile(max_price_usd=0.01))
    assert [c.name for c in adm.kept] == ["at"]
    assert adm.rejected == (Rejection(
        "over", Constraint.PRICE, "expected cost $0.0123 exceeds the request's cap $0.01"),)


def test_price_cap_is_not_met_by_counting_on_the_cache() -> None:
    c = cand("a", input_per_mtok=10.0, output_per_mtok=0.0, cached_input_per_mtok=0.0)
    assert admissible([c], profile(max_price_usd=0.005, cached_share=1.0)).kept == ()


def test_open_circuit_is_rejected() -> None:
    adm = admissible([cand("a", breaker_open=True), cand("b")], profile())
    assert [c.name for c in adm.kept] == ["b"]
    assert adm.rejected == (Rejection("a", Constraint.BREAKER, "circuit open"),)


def test_first_failed_constraint_is_the_one_reported() -> None:
    c = cand("a", region="us-east", input_per_mtok=1e6, breaker_open=True)
    adm = admissible([c], profile(allowed_regions=frozenset({"eu"}), max_price_usd=0.01))
    assert [r.constraint for r in adm.rejected] == [Constraint.RESIDENCY]


def reject(*pairs: tuple[str, Constraint]) -> Admission:
    return Admission((), tuple(Rejection(name, kind, "why") for name, kind in pairs))


def test_refusal_for_residency_only_is_a_client_error() -> None:
    r = refusal(reject(("a", Constraint.RESIDENCY), ("b", Constraint.RESIDENCY)), "chat")
    assert r.constraint is Constraint.RESIDENCY and r.client_error
    assert "No deployment of 'chat' is in the allowed residency" in r.message
    assert "a: why" in r.message and "b: why" in r.message


def test_refusal_for_price_when_in_residency_ones_are_over_the_cap() -> None:
    r = refusal(reject(("a", Constraint.RESIDENCY), ("b", Constraint.PRICE)), "chat")
    assert r.constraint is Constraint.PRICE and r.client_error
    assert "price cap" in r.message and "b: why" in r.message


def test_refusal_is_unavailable_when_an_eligible_circuit_is_open() -> None:
    r = refusal(reject(("a", Constraint.PRICE), ("b", Constraint.BREAKER),
                       ("c", Constraint.RESIDENCY)), "chat")
    assert r.constraint is Constraint.BREAKER and not r.client_error
    assert "circuit open" in r.message and "(b)" in r.message


def test_refusal_without_any_candidate_and_for_a_non_empty_admission() -> None:
    r = refusal(Admission((), ()), "chat")
    assert r.constraint is Constraint.NONE_CONFIGURED and not r.client_error
    with pytest.raises(ValueError):
        refusal(Admission((cand("a"),), ()), "chat")


def test_refusal_from_a_real_admission() -> None:
    cs = [cand("us", region="us-east", jurisdiction="us"),
          cand("eu", region="eu-west-1", jurisdiction="eu", breaker_open=True)]
    r = refusal(admissible(cs, profile(allowed_jurisdictions=frozenset({"eu"}))), "chat")
    assert r.constraint is Constraint.BREAKER
