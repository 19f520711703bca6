"""Routing policies: order the admissible candidates of one request, best first.

Each policy is a pure function ``(candidates, profile, ctx) -> Decision``: no I/O, no clock, the
only randomness ``ctx.rng``. The router tries ``Decision.ordered`` in order, so every policy
returns every candidate it is given. ``Decision.scores`` holds, per deployment, the quantity
the policy ranked by (lower is better; ``None`` where it is unknown) and ``Decision.reason``
one line on the winner for the ledger. Where the ranked quantity ties, lower load, then
higher weight, then name decide, so a decision is reproducible.

Choices worth knowing:

* ``cost`` ranks the candidates that meet the latency SLO (or have no stats yet, assumed to
  meet it) by expected cost, then those that miss it, also by expected cost: the alias asked
  for cost first, and ranking misses by latency instead would reorder the fallbacks every time
  an EWMA crossed the line. The reason says when the winner misses the SLO.
* ``latency`` sends an unmeasured deployment first while it has fewer than
  ``ctx.explore_in_flight`` requests in flight (one probe at a time, so a burst does not pile
  onto an unknown), and after the measured ones while its probe runs.
* ``prefix-affinity`` keeps a prefix on its rendezvous replica unless that replica is full
  (``in_flight >= capacity``) or has more than ``max(ctx.affinity_slack,
  ctx.affinity_slack_share * capacity)`` requests in flight above the least-loaded candidate;
  then it orders least-busy and says why.
* ``carbon`` puts candidates with no grid intensity or no energy figure last, by cost.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from types import MappingProxyType

from inferplane.routing.candidate import (
    Candidate,
    RequestProfile,
    expected_cost_usd,
    seconds,
    usd,
)


@dataclass(frozen=True, slots=True)
class PolicyContext:
    """What a policy may use besides the candidates and the request: randomness and knobs."""

    rng: random.Random
    turn: int = 0  # this request's number, for round-robin
    explore_in_flight: int = 1
    affinity_slack: int = 2
    affinity_slack_share: float = 0.5

    def __post_init__(self) -> None:
        if self.explore_in_flight < 0 or self.affinity_slack < 0:
            raise ValueError("explore_in_flight and affinity_slack must be >= 0")
        if self.affinity_slack_share < 0:
            raise ValueError("affinity_slack_share must be >= 0")


@dataclass(frozen=True, slots=True)
class Decision:
    """Every candidate, best first, with the ranking quantity per deployment and why."""

    policy: str
    ordered: tuple[Candidate, ...]
    scores: Mapping[str, float | None]
    reason: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.ordered)


Policy = Callable[[Sequence[Candidate], RequestProfile, PolicyContext], Decision]


def _tiebreak(c: Candidate) -> tuple[bool, float, float, str]:
    return (c.saturated is not None, c.load, -c.weight, c.name)


def _empty(policy: str) -> Decision:
    return Decision(policy, (), {}, f"{policy}: no candidates")


def _load_text(c: Candidate) -> str:
    if c.engine_waiting is not None:  # the engine's own count
        text = (f"engine reports {c.in_flight - c.engine_waiting} running, "
                f"{c.engine_waiting} waiting")
        if c.capacity is not None:
            text += f" for {c.capacity} slots"
        if c.kv_cache_usage is not None:
            text += f", KV cache {c.kv_cache_usage:.0%}"
        return text
    if c.capacity is not None:
        return f"{c.in_flight}/{c.capacity} slots in use"
    return f"{c.in_flight} in flight"


# cost


def _slo_parts(c: Candidate, profile: RequestProfile) -> tuple[bool, list[str]]:
    """Whether ``c`` meets the request's SLOs (unmeasured counts as meeting), and in words."""
    meets = True
    parts: list[str] = []
    for label, slo, ewma in (("ttft", profile.slo_ttft_s, c.ttft_s),
                             ("tpot", profile.slo_tpot_s, c.itl_s)):
        if slo is None:
            continue
        if ewma is None:
            parts.append(f"no {label} data yet, assumed to meet {label} SLO {seconds(slo)}")
        elif ewma <= slo:
            parts.append(f"meets {label} SLO {seconds(slo)} (ewma {seconds(ewma)})")
        else:
            meets = False
            parts.append(f"misses {label} SLO {seconds(slo)} (ewma {seconds(ewma)})")
    return meets, parts or ["no latency SLO"]


def cost(candidates: Sequence[Candidate], profile: RequestProfile,
         ctx: PolicyContext) -> Decision:
    """Cheapest expected cost among those meeting the SLO, then the rest by cost.

    >>> a = Candidate("a", "m", "p", "us", "us", input_per_mtok=1, output_per_mtok=2,
    ...               ttft_s=0.31)
    >>> b = Candidate("b", "m", "p", "us", "us", input_per_mtok=0.1, output_per_mtok=0.2,
    ...               ttft_s=3.0)
    >>> d = cost([a, b], RequestProfile(220, 100, slo_ttft_s=1.0), PolicyContext(random.Random()))
    >>> d.names
    ('a', 'b')
    >>> for part in d.reason.split("; "): print(part)
    cost: $0.00042 expected, meets ttft SLO 1.0s (ewma 0.31s)
    1 cheaper deployment misses the SLO
    """
    if not candidates:
        return _empty("cost")
    costs = {c.name: expected_cost_usd(c, profile) for c in candidates}
    slo = {c.name: _slo_parts(c, profile) for c in candidates}
    ordered = sorted(candidates,
                     key=lambda c: (not slo[c.name][0], costs[c.name], *_tiebreak(c)))
    best = ordered[0]
    meets, parts = slo[best.name]
    reason = f"cost: {usd(costs[best.name])} expected, {', '.join(parts)}"
    if not meets:
        reason += "; none meets the SLO, cheapest first"
    else:
        cheaper = sum(1 for c in candidates if costs[c.name] < costs[best.name])
        if cheaper == 1:
            reason += "; 1 cheaper deployment misses the SLO"
        elif cheaper:
            reason += f"; {cheaper} cheaper deployments miss the SLO"
    return Decision("cost", tuple(ordered), costs, reason)


# latency


def expected_latency_s(c: Candidate, profile: RequestProfile) -> float | None:
    """TTFT EWMA + expected output tokens x inter-token EWMA; ``None`` until both are measured.

    >>> c = Candidate("a", "m", "p", "us", "us", ttft_s=0.25, itl_s=0.01)
    >>> expected_latency_s(c, RequestProfile(prompt_tokens=10, output_tokens=100))
    1.25
    """
    if c.ttft_s is None or c.itl_s is None:
        return None
    return c.ttft_s + profile.output_tokens * c.itl_s


def latency(candidates: Sequence[Candidate], profile: RequestProfile,
            ctx: PolicyContext) -> Decision:
    """Lowest expected latency; an unmeasured deployment goes first while it has fewer than
    ``ctx.explore_in_flight`` requests in flight, and after the measured ones otherwise."""
    if not candidates:
        return _empty("latency")
    expected = {c.name: expected_latency_s(c, profile) for c in candidates}

    def key(c: Candidate) -> tuple[int, float, bool, float, float, str]:
        value = expected[c.name]
        if value is not None:
            return (1, value, *_tiebreak(c))
        group = 0 if c.in_flight < ctx.explore_in_flight else 2
        return (group, 0.0, *_tiebreak(c))

    ordered = sorted(candidates, key=key)
    best = ordered[0]
    value = expected[best.name]
    if value is None or best.ttft_s is None or best.itl_s is None:
        reason = "latency: exploring a deployment with no latency data yet"
    else:
        reason = (f"latency: {seconds(value)} expected (ttft {seconds(best.ttft_s)} + "
                  f"{profile.output_tokens} x {seconds(best.itl_s)})")
    return Decision("latency", tuple(ordered), expected, reason)


# least-busy


def least_busy(candidates: Sequence[Candidate], profile: RequestProfile,
               ctx: PolicyContext) -> Decision:
    """Lowest in-flight share of capacity (the in-flight count where capacity is unknown);
    ties go to the higher weight. A saturated engine (``Candidate.saturated``) comes after
    every one that is not.

    >>> a = Candidate("a", "m", "p", "local", "local", in_flight=3, capacity=4)
    >>> b = Candidate("b", "m", "p", "local", "local", in_flight=1, capacity=4)
    >>> least_busy([a, b], RequestProfile(1, 1), PolicyContext(random.Random())).reason
    'least-busy: 1/4 slots in use'
    """
    return _least_busy("least-busy", candidates, "")


def _least_busy(policy: str, candidates: Sequence[Candidate], why: str) -> Decision:
    if not candidates:
        return _empty(policy)
    ordered = sorted(candidates, key=_tiebreak)
    reason = f"{policy}: {why}{_load_text(ordered[0])}"
    saturated = [c.name for c in ordered if c.saturated is not None]
    if saturated and ordered[0].saturated is None:
        reason += f"; saturated, ranked last: {', '.join(saturated)}"
    return Decision(policy, tuple(ordered), {c.name: c.load for c in candidates}, reason)


# weighted


def weighted(candidates: Sequence[Candidate], profile: RequestProfile,
             ctx: PolicyContext) -> Decision:
    """A random order drawn without replacement in proportion to weight.

    Each candidate's key is an exponential arrival time ``-ln(U) / weight`` and the order is by
    key (the Efraimidis-Spirakis scheme), so candidate ``i`` comes first with probability
    ``weight_i / sum(weights)``.
    """
    if not candidates:
        return _empty("weighted")
    keys = {c.name: -math.log(1.0 - ctx.rng.random()) / c.weight for c in candidates}
    ordered = sorted(candidates, key=lambda c: (keys[c.name], c.name))
    best = ordered[0]
    total = sum(c.weight for c in candidates)
    reason = (f"weighted: drawn with weight {best.weight:g} of {total:g} "
              f"({best.weight / total:.0%})")
    return Decision("weighted", tuple(ordered), keys, reason)


# round-robin


def round_robin(candidates: Sequence[Candidate], profile: RequestProfile,
                ctx: PolicyContext) -> Decision:
    """Each request starts one further along the (name-sorted) candidates: the baseline the
    load- and cache-aware policies are measured against.

    >>> cs = [Candidate(n, "m", "p", "local", "local") for n in "abc"]
    >>> [round_robin(cs, RequestProfile(1, 1), PolicyContext(random.Random(), turn=t)).names[0]
    ...  for t in range(4)]
    ['a', 'b', 'c', 'a']
    """
    if not candidates:
        return _empty("round-robin")
    ordered = sorted(candidates, key=lambda c: c.name)
    start = ctx.turn % len(ordered)
    ordered = ordered[start:] + ordered[:start]
    scores: dict[str, float | None] = {c.name: float(i) for i, c in enumerate(ordered)}
    return Decision("round-robin", tuple(ordered), scores,
                    f"round-robin: turn {ctx.turn} of {len(ordered)}")


# prefix-affinity


PREFIX_BLOCK_CHARS = 256
PREFIX_BLOCKS = 4
PREFIX_CHARS = PREFIX_BLOCK_CHARS * PREFIX_BLOCKS  # all of a prompt that prefix_key reads


def prefix_key(text: str, block_chars: int = PREFIX_BLOCK_CHARS,
               blocks: int = PREFIX_BLOCKS) -> int | None:
    """A stable 64-bit key for the prompt's leading whole blocks; ``None`` below one block.

    Only whole blocks count, at most ``blocks`` of them, so prompts that share their first
    ``block_chars * blocks`` characters share a key.

    >>> prefix_key("short") is None
    True
    >>> prefix_key("x" * 1024 + "a") == prefix_key("x" * 1024 + "b")
    True
    >>> prefix_key("x" * 256, blocks=1) == prefix_key("x" * 300, blocks=1)
    True
    """
    if block_chars < 1 or blocks < 1:
        raise ValueError("block_chars and blocks must be >= 1")
    whole = min(blocks, len(text) // block_chars)
    if whole == 0:
        return None
    data = text[: whole * block_chars].encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "big")


def rendezvous_score(key: int, c: Candidate) -> float:
    """Weighted highest-random-weight score of ``c`` for ``key``; the lowest score wins.

    A hash of (key, name) mapped to ``u`` in (0, 1) gives ``-ln(u) / weight``: each key goes to
    one replica, a replica's share of keys follows its weight, and removing a replica moves
    only the keys it held.
    """
    digest = blake2b(f"{key}\x00{c.name}".encode(), digest_size=8).digest()
    u = (int.from_bytes(digest, "big") + 1) / (2**64 + 1)
    return -math.log(u) / c.weight


def _affinity_busy(winner: Candidate, candidates: Sequence[Candidate],
                   ctx: PolicyContext) -> str | None:
    """Why the affinity winner is too loaded to keep, or ``None`` when it is fine."""
    if winner.saturated is not None:
        return f"{winner.name} is saturated ({winner.saturated})"
    if winner.capacity is not None and winner.in_flight >= winner.capacity:
        return f"{winner.name} is full ({_load_text(winner)})"
    least = min(c.in_flight for c in candidates)
    share = ctx.affinity_slack_share * winner.capacity if winner.capacity is not None else 0.0
    slack = max(float(ctx.affinity_slack), share)
    if winner.in_flight - least > slack:
        return (f"{winner.name} is busy ({winner.in_flight} in flight vs {least} on the "
                f"least loaded, slack {slack:g})")
    return None


def prefix_affinity(candidates: Sequence[Candidate], profile: RequestProfile,
                    ctx: PolicyContext) -> Decision:
    """Rendezvous hashing of ``profile.prefix_key`` over the candidates' names, with a load
    guard; least-busy when there is no prefix key or the winner is too loaded.
    """
    name = "prefix-affinity"
    if not candidates:
        return _empty(name)
    key = profile.prefix_key
    if key is None:
        return _least_busy(name, candidates, "no prefix key; least-busy, ")
    scores = {c.name: rendezvous_score(key, c) for c in candidates}
    ordered = sorted(candidates, key=lambda c: (scores[c.name], c.name))
    busy = _affinity_busy(ordered[0], candidates, ctx)
    if busy is not None:
        return _least_busy(name, candidates, f"{busy}; least-busy, ")
    reason = f"{name}: prefix {key & 0xFFFFFFFF:08x} on its replica ({_load_text(ordered[0])})"
    return Decision(name, tuple(ordered), scores, reason)


# carbon


def grams_co2_per_token(c: Candidate) -> float | None:
    """Expected gCO2 per output token: J/token x gCO2/kWh / 3.6e6 (x PUE when given).

    >>> c = Candidate("a", "m", "p", "eu", "eu", grid_gco2_per_kwh=360,
    ...               joules_per_output_token=2.0, pue=1.5)
    >>> round(grams_co2_per_token(c), 9)
    0.0003
    """
    if c.grid_gco2_per_kwh is None or c.joules_per_output_token is None:
        return None
    return c.joules_per_output_token * c.grid_gco2_per_kwh / 3.6e6 * (c.pue or 1.0)


def carbon(candidates: Sequence[Candidate], profile: RequestProfile,
           ctx: PolicyContext) -> Decision:
    """Lowest expected gCO2 per output token; unknown ones last. Ties and unknowns by cost."""
    if not candidates:
        return _empty("carbon")
    grams = {c.name: grams_co2_per_token(c) for c in candidates}
    costs = {c.name: expected_cost_usd(c, profile) for c in candidates}

    def key(c: Candidate) -> tuple[bool, float, float, bool, float, float, str]:
        g = grams[c.name]
        return (g is None, g or 0.0, costs[c.name], *_tiebreak(c))

    ordered = sorted(candidates, key=key)
    best = ordered[0]
    g = grams[best.name]
    if g is None:
        reason = (f"carbon: no carbon data for any deployment; cheapest first "
                  f"({usd(costs[best.name])} expected)")
    else:
        reason = (f"carbon: {g:.3g} gCO2/token expected ({best.joules_per_output_token:g} "
                  f"J/token at {best.grid_gco2_per_kwh:g} gCO2/kWh"
                  + (f", PUE {best.pue:g})" if best.pue is not None else ")"))
    return Decision("carbon", tuple(ordered), grams, reason)


POLICIES: Mapping[str, Policy] = MappingProxyType({
    "cost": cost,
    "latency": latency,
    "least-busy": least_busy,
    "weighted": weighted,
    "round-robin": round_robin,
    "prefix-affinity": prefix_affinity,
    "carbon": carbon,
})


def get_policy(name: str) -> Policy:
    """The policy registered as ``name``; a ValueError naming the known ones otherwise."""
    try:
        return POLICIES[name]
    except KeyError:
        raise ValueError(
            f"unknown routing policy {name!r}; known: {', '.join(POLICIES)}") from None
