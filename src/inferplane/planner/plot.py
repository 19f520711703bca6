"""Cost against latency for every feasible layout of a plan, as a PNG (matplotlib, Agg).

Each hardware has its own colour and marker (ten colours that differ in hue, then the next
marker shape), its cheapest layout a large outlined marker labelled with its name and chip
count; labels are moved off one another (``plot_labels.py``).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

from inferplane.planner.plan import CapacityPlan, Option
from inferplane.planner.plot_labels import place_labels
from inferplane.text import plural

MARKERS = ("o", "s", "^", "D", "v", "P")
BEST_SIZE = 110.0  # the cheapest layout's marker (points squared)
PALETTE = "tab10"  # ten hues that can be told apart (tab20 pairs each with a paler twin)


def _latency(option: Option, percentile: float) -> float:
    return option.load.tpot.at(percentile) * 1e3


def style(index: int, cmap: Any) -> dict[str, Any]:
    """The colour and marker of the ``index``-th hardware: no two of the first sixty alike.

    >>> [style(i, lambda n: n)["marker"] for i in (0, 9, 10)]
    ['o', 'o', 's']
    """
    return {"color": cmap(index % 10), "marker": MARKERS[index // 10 % len(MARKERS)]}


def write_plot(plan: CapacityPlan, path: Path) -> int:
    """Draw $/1M tokens against TPOT for each priced option; returns how many were drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    slo = plan.request.slo
    priced = [o for o in plan.candidates if o.usd_per_mtok is not None]
    best = {o.hardware.id: o for o in plan.options if o.usd_per_mtok is not None}
    fig, ax = plt.subplots(figsize=(10, 6), dpi=120)
    ids = sorted({o.hardware.id for o in priced})
    cmap = plt.get_cmap(PALETTE)
    labels = []
    for i, hw_id in enumerate(ids):
        points = [o for o in priced if o.hardware.id == hw_id]
        look = style(i, cmap)
        ax.scatter([_latency(o, slo.percentile) for o in points],
                   [o.usd_per_mtok or 0.0 for o in points], s=16, alpha=0.35, label=hw_id,
                   **look)
        if hw_id in best:
            b = best[hw_id]
            x, y = _latency(b, slo.percentile), b.usd_per_mtok or 0.0
            ax.scatter([x], [y], s=BEST_SIZE, edgecolors="black", linewidths=0.9, zorder=3, **look)
            label = ax.annotate(f"{hw_id} ({plural(b.chips, 'chip')})", (x, y),
                                xytext=(6, 4), textcoords="offset points", fontsize=7, zorder=4,
                                arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6,
                                            "shrinkA": 0, "shrinkB": 6})
            labels.append((y, label))
    if math.isfinite(slo.tpot_s):
        ax.axvline(slo.tpot_s * 1e3, color="grey", linestyle="--", linewidth=0.8,
                   label=f"TPOT SLO {slo.tpot_s * 1e3:g} ms")
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(f"TPOT p{slo.percentile:g} (ms)")
    ax.set_ylabel("$ per 1M output tokens (log scale)")
    title = [*textwrap.wrap(plan.request.title(), 110),
             "large outlined marker: the cheapest layout per hardware"]
    ax.set_title("\n".join(title), fontsize=8, loc="left")
    if ids:
        legend = ax.legend(fontsize=7, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                           borderaxespad=0.0)
        for handle in legend.legend_handles:
            if handle is not None:
                handle.set_alpha(1.0)  # the key in full colour, not as faint as the cloud
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    cheapest_first = [label for _, label in sorted(labels, key=lambda pair: pair[0])]
    place_labels(fig, ax, cheapest_first, marker_pt=math.sqrt(BEST_SIZE))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, metadata={"Title": plan.request.title()})
    plt.close(fig)
    return len(priced)
