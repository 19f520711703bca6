"""The plan: for each accelerator, the cheapest layout that carries the traffic within the SLO.

For every hardware and every candidate layout (``layout.layouts``: chips per replica, TP x PP):

1. memory: the weights must fit, and at least one sequence of ``isl + osl`` tokens of KV;
2. batch limit: the largest power of two (or the memory maximum) whose full-batch decode step
   still meets the TPOT target;
3. replicas: the fewest whose per-replica share of the rate meets the TTFT and TPOT targets at
   the SLO's percentile (``serving.steady_state``), starting from the count throughput alone
   needs;
4. cost: replicas x chips x the hardware's median listed hourly price (or ``provider``'s),
   over the output tokens the traffic asks for.

The best layout per hardware is kept; options rank by $ per million output tokens. Each says
what binds it: memory capacity, bandwidth, compute, interconnect, step overhead, or the SLO.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from inferplane.planner.catalog import Hardware, Model, Price
from inferplane.planner.layout import Replica, layouts, min_chips_for_weights, min_layout_chips
from inferplane.planner.power import DEFAULT_GRID_G_PER_KWH, DEFAULT_PUE, carbon_g_per_mtok
from inferplane.planner.precision import Precision, compute_rate_key
from inferplane.planner.roofline import prefill
from inferplane.planner.serving import (
    Engine,
    ReplicaLoad,
    Workload,
    decode_cost,
    steady_state,
)
from inferplane.planner.slo import Slo, format_seconds
from inferplane.planner.speculative import Speculation, describe
from inferplane.text import plural

BATCH_LIMITS = tuple(2**i for i in range(11))  # 1 .. 1024
MAX_REPLICA_FACTOR = 64


@dataclass(frozen=True)
class PlanRequest:
    """What to plan for: a model, traffic, an SLO, and the hardware to consider."""

    model: Model
    hardware: tuple[Hardware, ...]
    workload: Workload
    slo: Slo
    quant: Precision
    kv_quant: Precision
    speculation: Speculation | None = None
    chunk_tokens: int = 2048
    grid_g_per_kwh: float = DEFAULT_GRID_G_PER_KWH
    pue: float = DEFAULT_PUE
    provider: str | None = None

    def title(self) -> str:
        """The plan's question in one line, for its table and its plot."""
        w = self.workload
        return (f"{self.model.id} ({self.quant.name} weights, {self.kv_quant.name} KV): "
                f"{w.rate:g} req/s, {w.isl:,} in / {w.osl:,} out, SLO {self.slo.describe()}, "
                f"{describe(self.speculation)}")


@dataclass(frozen=True)
class Option:
    """One way to serve the traffic: a layout, how many replicas, and what it costs."""

    replica: Replica
    replicas: int
    batch_limit: int
    load: ReplicaLoad
    capacity_tokens_s: float
    price: Price | None
    usd_per_hour: float | None
    usd_per_mtok: float | None
    joules_per_token: float | None
    kw: float | None
    gco2_per_mtok: float | None
    binding: str
    detail: str

    @property
    def hardware(self) -> Hardware:
        return self.replica.hardware

    @property
    def chips(self) -> int:
        return self.replicas * self.replica.chips

    @property
    def layout(self) -> str:
        return f"{self.replica.describe()} x{self.replicas}, batch<={self.batch_limit}"


@dataclass(frozen=True)
class Infeasible:
    """Hardware with no layout that serves the request, and why (of its best attempt)."""

    hardware: Hardware
    reason: str


@dataclass(frozen=True)
class CapacityPlan:
    request: PlanRequest
    options: tuple[Option, ...]  # the best per hardware, cheapest first
    infeasible: tuple[Infeasible, ...]
    candidates: tuple[Option, ...] = ()  # every feasible layout (for plots)


def _violation(load: ReplicaLoad, slo: Slo) -> str:
    """'' when ``load`` meets ``slo``, else the name of what it misses."""
    if not load.stable:
        return "throughput"
    if load.ttft.at(slo.percentile) > slo.ttft_s:
        return f"TTFT p{slo.percentile:g}"
    if load.tpot.at(slo.percentile) > slo.tpot_s:
        return f"TPOT p{slo.percentile:g}"
    return ""


def _batch_limit(req: PlanRequest, replica: Replica, most: int) -> int:
    """Largest batch limit whose full-batch decode step meets the TPOT target (0 if none)."""
    ctx, spec = req.workload.decode_context, req.speculation
    limits = sorted({b for b in BATCH_LIMITS if b <= most} | {min(most, BATCH_LIMITS[-1])})
    best = 0
    for b in limits:
        if decode_cost(replica, b, ctx, spec).seconds <= req.slo.tpot_s:
            best = b
        else:
            break
    return best


def _fewest_replicas(meets: Callable[[int], bool], start: int) -> int | None:
    """Smallest r >= start with meets(r), assuming meets is monotone; None past the cap."""
    if meets(start):
        return start
    lo, hi = start, start * 2
    while not meets(hi):
        lo, hi = hi, hi * 2
        if hi > start * MAX_REPLICA_FACTOR + MAX_REPLICA_FACTOR:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if meets(mid):
            hi = mid
        else:
            lo = mid
    return hi


def evaluate(req: PlanRequest, replica: Replica) -> Option | str:
    """The cheapest way to serve ``req`` with this replica layout, or why there is none."""
    w, hw = req.workload, replica.hardware
    if not replica.fits_weights:
        return (f"memory capacity: weights need {replica.weights.total / 1e9:,.0f} GB, "
                f"{replica.chips} x {hw.usable_bytes / 1e9:,.1f} GB usable")
    most = replica.max_sequences(w.max_context)
    if most < 1:
        return (f"memory capacity: no room for the KV cache of one {w.max_context:,}-token "
                f"sequence beside the weights on {plural(replica.chips, 'chip')}")
    batch = _batch_limit(req, replica, most)
    if batch < 1:
        one = decode_cost(replica, 1, w.decode_context, req.speculation).seconds
        return (f"SLO: one decode step takes {format_seconds(one)} > TPOT "
                f"{format_seconds(req.slo.tpot_s)}")
    pre = prefill(replica, w.isl)
    if pre.total_s > req.slo.ttft_s:
        return (f"SLO: prefill of {w.isl:,} tokens takes {format_seconds(pre.total_s)} > "
                f"TTFT {format_seconds(req.slo.ttft_s)}")
    engine = Engine(batch_limit=batch, chunk_tokens=req.chunk_tokens,
                    speculation=req.speculation)
    full = decode_cost(replica, batch, w.decode_context, req.speculation)
    per_replica_rate = batch / (w.osl * full.seconds + batch * pre.occupancy_s)
    by_throughput = max(1, math.ceil(w.rate / per_replica_rate * (1 - 1e-9)))
    loads: dict[int, ReplicaLoad] = {}

    def meets(r: int) -> bool:
        if r not in loads:
            loads[r] = steady_state(replica, Workload(w.rate / r, w.isl, w.osl), engine)
        return not _violation(loads[r], req.slo)

    replicas = _fewest_replicas(meets, by_throughput)
    if replicas is None:
        worst = loads[max(loads)]
        return f"SLO: {_violation(worst, req.slo)} not met at any replica count"
    load = loads[replicas]
    reason = _violation(loads[replicas - 1], req.slo) if replicas > by_throughput else ""
    return _option(req, replica, replicas, batch, load, per_replica_rate, most, reason,
                   by_throughput)


def _option(req: PlanRequest, replica: Replica, replicas: int, batch: int, load: ReplicaLoad,
            per_replica_rate: float, most: int, slo_reason: str, by_throughput: int) -> Option:
    w, hw = req.workload, replica.hardware
    chips = replicas * replica.chips
    price = hw.price(req.provider)
    usd_h = None if price is None else price.usd_per_hour * chips
    tokens_s = w.rate * w.osl
    usd_mtok = None if usd_h is None else usd_h / (tokens_s * 3600) * 1e6
    joules = load.joules_per_token
    kw = None if load.watts_per_chip is None else load.watts_per_chip * chips / 1e3
    gco2 = None if joules is None else carbon_g_per_mtok(joules, req.grid_g_per_kwh, req.pue)
    binding, detail = _binding(req, replica, replicas, batch, load, most, slo_reason,
                               by_throughput)
    return Option(replica=replica, replicas=replicas, batch_limit=batch, load=load,
                  capacity_tokens_s=replicas * per_replica_rate * w.osl, price=price,
                  usd_per_hour=usd_h, usd_per_mtok=usd_mtok, joules_per_token=joules, kw=kw,
                  gco2_per_mtok=gco2, binding=binding, detail=detail)


def _binding(req: PlanRequest, replica: Replica, replicas: int, batch: int, load: ReplicaLoad,
             most: int, slo_reason: str, by_throughput: int) -> tuple[str, str]:
    """A short phrase for what binds this option, and a sentence with the numbers."""
    hw, step = replica.hardware, load.decode.step
    weights_gb = replica.weights.total / 1e9
    n_min = min_chips_for_weights(req.model, hw, req.quant)
    memory_forced = n_min > 1 and replica.chips == min_layout_chips(req.model, hw, req.quant)
    step_phrase = {
        "bandwidth": f"bandwidth: {step.bytes_per_chip / 1e9:,.1f} GB read per chip per step",
        "compute": f"compute: {step.share('compute'):.0%} of the decode step",
        "interconnect": f"interconnect: {step.share('interconnect'):.0%} of the decode step",
        "overhead": f"step overhead: {step.share('overhead'):.0%} of the decode step",
    }[step.bound]
    notes = [f"decode step {format_seconds(step.total_s)} at {load.concurrency:.3g} "
             f"sequences in flight per replica ({step.breakdown()})"]
    if memory_forced:
        notes.insert(0, f"weights {weights_gb:,.0f} GB need {n_min} x "
                        f"{hw.usable_bytes / 1e9:,.0f} GB usable")
    if batch < min(most, BATCH_LIMITS[-1]):
        notes.append(f"TPOT caps the batch at {batch} (memory holds {most})")
    if slo_reason:
        notes.append(f"{slo_reason} needs {replicas} replicas, throughput alone "
                     f"{by_throughput}")
    prefill_phrase = (f"{load.prefill.bound}: prefill is {load.prefill_share:.0%} of the "
                      "replicas' time")
    notes.append(f"prefill of one prompt {format_seconds(load.prefill.total_s)} "
                 f"({load.prefill.bound}-bound), {load.prefill_share:.0%} of the time")
    if slo_reason:
        binding = f"SLO: {slo_reason}"
    elif memory_forced:
        binding = f"memory capacity: weights need {weights_gb:,.0f} GB"
    elif load.prefill_share >= 0.5:
        binding = prefill_phrase
    else:
        binding = step_phrase
    return binding, "; ".join(notes)


def plan(req: PlanRequest) -> CapacityPlan:
    """Every hardware's best option, cheapest first; hardware that cannot serve, with why."""
    best: list[Option] = []
    candidates: list[Option] = []
    infeasible: list[Infeasible] = []
    for hw in req.hardware:
        if compute_rate_key(req.quant, hw.peak_tflops) is None:
            infeasible.append(Infeasible(hw, f"no published compute rate for {req.quant.name} "
                                             "or a wider format"))
            continue
        options: list[Option] = []
        reasons: list[str] = []
        for replica in layouts(req.model, hw, req.quant, req.kv_quant):
            result = evaluate(req, replica)
            if isinstance(result, Option):
                options.append(result)
            else:
                reasons.append(result)
        if not options:
            infeasible.append(Infeasible(hw, reasons[-1] if reasons else "no layout"))
            continue
        options.sort(key=_rank)
        best.append(options[0])
        candidates.extend(options)
    best.sort(key=_rank)
    return CapacityPlan(request=req, options=tuple(best), infeasible=tuple(infeasible),
                candidates=tuple(candidates))


def _rank(option: Option) -> tuple[int, float, float, float]:
    """Priced options by $/Mtok, then unpriced ones by chips; ties by the SLO percentile TTFT."""
    ttft = option.load.ttft.p99
    if option.usd_per_mtok is None:
        return (1, float(option.chips), ttft, 0.0)
    return (0, option.usd_per_mtok, ttft, float(option.chips))
