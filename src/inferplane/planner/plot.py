"""Cost against latency for every feasible layout of a plan, as a PNG (matplotlib, Agg)."""

from __future__ import annotations

import math
from pathlib import Path

from inferplane.planner.plan import CapacityPlan, Option


def _latency(option: Option, percentile: float) -> float:
    return option.load.tpot.at(percentile) * 1e3


def write_plot(plan: CapacityPlan, path: Path) -> int:
    """Draw $/1M tokens against TPOT for each priced option; returns how many were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    slo = plan.request.slo
    priced = [o for o in plan.candidates if o.usd_per_mtok is not None]
    best = {o.hardware.id: o for o in plan.options if o.usd_per_mtok is not None}
    fig, ax = plt.subplots(figsize=(9, 5.5), dpi=120)
    ids = sorted({o.hardware.id for o in priced})
    cmap = plt.get_cmap("tab20")
    for i, hw_id in enumerate(ids):
        points = [o for o in priced if o.hardware.id == hw_id]
        ax.scatter([_latency(o, slo.percentile) for o in points],
                   [o.usd_per_mtok or 0.0 for o in points],
                   s=18, alpha=0.45, color=cmap(i % 20), label=hw_id)
        if hw_id in best:
            b = best[hw_id]
            x, y = _latency(b, slo.percentile), b.usd_per_mtok or 0.0
            ax.scatter([x], [y], s=90, marker="*", color=cmap(i % 20), edgecolors="black",
                       linewidths=0.6, zorder=3)
            ax.annotate(f"{hw_id} {b.chips}x", (x, y), xytext=(4, 4),
                        textcoords="offset points", fontsize=7)
    if math.isfinite(slo.tpot_s):
        ax.axvline(slo.tpot_s * 1e3, color="grey", linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel(f"TPOT p{slo.percentile:g} (ms)")
    ax.set_ylabel("$ per 1M output tokens (log)")
    w = plan.request.workload
    ax.set_title(f"{plan.request.model.id} {plan.request.quant.name}: {w.rate:g} req/s, "
                 f"{w.isl} in / {w.osl} out; stars = cheapest per hardware", fontsize=9)
    if ids:
        ax.legend(fontsize=7, ncol=2, loc="best")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return len(priced)
