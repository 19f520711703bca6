"""A usage report as PNGs (matplotlib, Agg): cost and energy over time; cost per 1M tokens."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from inferplane.ledger.report import J_PER_KWH, Key, Series, Tally

OVER_TIME = "cost-energy-over-time.png"
PER_MTOK = "cost-per-mtok-by-deployment.png"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def write_over_time(series: Series, path: Path) -> None:
    """Two panels sharing the time axis: cost in USD and energy in kWh per hour or per day."""
    plt = _pyplot()
    starts = [p.start for p in series.points]
    width = timedelta(hours=1 if series.unit == "hour" else 24) * 0.8
    fig, (cost_ax, energy_ax) = plt.subplots(2, 1, sharex=True, figsize=(9, 5.5), dpi=120)
    cost_ax.bar(starts, [p.cost_usd for p in series.points], width=width, align="edge",
                color="tab:blue")
    cost_ax.set_ylabel(f"cost (USD per {series.unit})")
    energy_ax.bar(starts, [p.energy_j / J_PER_KWH for p in series.points], width=width,
                  align="edge", color="tab:green")
    energy_ax.set_ylabel(f"energy (kWh per {series.unit})")
    energy_ax.set_xlabel("time (UTC)")
    for ax in (cost_ax, energy_ax):
        ax.grid(True, axis="y", alpha=0.3)
    total = sum(p.requests for p in series.points)
    cost_ax.set_title(f"cost and energy per {series.unit}: {total:,} requests", fontsize=9)
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    energy_ax.xaxis.set_major_locator(locator)
    energy_ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def write_cost_per_mtok(groups: Sequence[tuple[Key, Tally]], path: Path) -> int:
    """A bar per deployment with tokens: USD per 1M (prompt + completion) tokens; returns how
    many bars were drawn."""
    plt = _pyplot()
    bars = [(key or "-", t.cost_usd * 1e6 / t.total_tokens, t.total_tokens)
            for key, t in groups if t.total_tokens]
    bars.sort(key=lambda bar: bar[1])
    fig, ax = plt.subplots(figsize=(9, max(2.5, 0.45 * len(bars) + 1.5)), dpi=120)
    names = [name for name, _, _ in bars]
    values = [value for _, value, _ in bars]
    ax.barh(names, values, color="tab:blue")
    for i, (_, value, tokens) in enumerate(bars):
        ax.annotate(f" ${value:.4g}  ({tokens:,} tok)", (value, i), va="center", fontsize=7)
    ax.set_xlabel("USD per 1M tokens (prompt + completion)")
    ax.set_title("cost per 1M tokens by deployment", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    if values:
        ax.set_xlim(0, max(values) * 1.35 or 1.0)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return len(bars)
