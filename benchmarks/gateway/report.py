"""From the measured rows to the report: overhead over direct, the ratios the issue asks for,
the Markdown table and the plot of p99 latency against the request rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

RATIO_RPS = 500


def add_overheads(runs: list[dict[str, Any]]) -> None:
    """Each gateway row's p50/p99 (and TTFB p50) minus direct's at the same rate and mode."""
    floor = {(r["mode"], r["rps"]): r for r in runs if r["gateway"] == "direct"}
    for row in runs:
        base = floor.get((row["mode"], row["rps"]))
        for key in ("p50", "p99", "ttfb_p50"):
            mine, theirs = row.get(f"{key}_ms"), base.get(f"{key}_ms") if base else None
            if key == "ttfb_p50" and f"{key}_ms" not in row:
                continue
            row[f"overhead_{key}_ms"] = (None if mine is None or theirs is None
                                         else round(mine - theirs, 3))


def _find(runs: list[dict[str, Any]], gateway: str, mode: str, rps: float
          ) -> dict[str, Any] | None:
    return next((r for r in runs if (r["gateway"], r["mode"], r["rps"]) == (gateway, mode, rps)),
                None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 4)


def ratios(runs: list[dict[str, Any]], max_rps: dict[str, float],
           soak: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The figures the issue sets targets for, each with its target and whether it is met."""
    def overhead(gw: str) -> float | None:
        row = _find(runs, gw, "non-stream", RATIO_RPS)
        return None if row is None else row.get("overhead_p50_ms")

    ip, ll, pk = overhead("inferplane"), overhead("litellm"), overhead("portkey")
    stream = _find(runs, "inferplane", "stream", RATIO_RPS)
    ttfb = None if stream is None else stream.get("overhead_ttfb_p50_ms")
    out: dict[str, Any] = {
        "at_rps": RATIO_RPS,
        "overhead_p50_ms": {"inferplane": ip, "litellm": ll, "portkey": pk},
        "inferplane_over_litellm_overhead_p50": _ratio(ip, ll),
        "inferplane_over_portkey_overhead_p50": _ratio(ip, pk),
        "inferplane_over_litellm_max_rps": _ratio(max_rps.get("inferplane"),
                                                  max_rps.get("litellm")),
        "inferplane_over_portkey_max_rps": _ratio(max_rps.get("inferplane"),
                                                  max_rps.get("portkey")),
        "stream_ttfb_p50_inferplane_minus_direct_ms": ttfb,
        "soak_growth_pct": {gw: s.get("growth_pct") for gw, s in soak.items()},
    }
    growth = out["soak_growth_pct"].get("inferplane")
    ratio_ll = out["inferplane_over_litellm_overhead_p50"]
    max_ratio = out["inferplane_over_litellm_max_rps"]
    out["targets"] = {
        "overhead_p50_at_most_tenth_of_litellm": None if ratio_ll is None else ratio_ll <= 0.1,
        "overhead_p50_below_portkey": None if ip is None or pk is None else ip < pk,
        "max_rps_at_least_5x_litellm": None if max_ratio is None else max_ratio >= 5,
        "stream_ttfb_p50_within_1ms_of_direct": None if ttfb is None else ttfb <= 1.0,
        "soak_rss_growth_below_5pct": None if growth is None else growth < 5,
    }
    return out


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    modes = ["non-stream", "stream"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, mode in zip(axes, modes, strict=True):
        for gw in dict.fromkeys(r["gateway"] for r in runs):
            rows = sorted((r for r in runs if r["gateway"] == gw and r["mode"] == mode
                           and r["p99_ms"] is not None), key=lambda r: r["rps"])
            if rows:
                ax.plot([r["rps"] for r in rows], [r["p99_ms"] for r in rows], marker="o",
                        label=gw)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{mode}: p99 latency")
        ax.set_xlabel("offered rate (requests/s, open loop)")
        ax.axhline(50, color="grey", linestyle=":", linewidth=1)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("ms (from intended send time)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(x: Any, digits: int = 2) -> str:
    if x is None:
        return "—"
    if isinstance(x, float):
        return f"{x:,.{digits}f}"
    return str(x)


def table(runs: list[dict[str, Any]]) -> list[str]:
    lines = ["| gateway | mode | rps | p50 ms | p90 ms | p99 ms | overhead p50 / p99 ms | "
             "TTFB p50 / p99 ms | success | gateway CPU s (ms/req) | peak RSS MB | others |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in runs:
        ttfb = (f"{_fmt(r.get('ttfb_p50_ms'))} / {_fmt(r.get('ttfb_p99_ms'))}"
                if r["mode"] == "stream" else "")
        cpu = ("" if r["cpu_s"] is None
               else f"{_fmt(r['cpu_s'])} ({_fmt(r['cpu_ms_per_request'], 3)})")
        lines.append(
            f"| {r['gateway']} | {r['mode']} | {r['rps']:g} | {_fmt(r['p50_ms'])} | "
            f"{_fmt(r['p90_ms'])} | {_fmt(r['p99_ms'])} | {_fmt(r.get('overhead_p50_ms'))} / "
            f"{_fmt(r.get('overhead_p99_ms'))} | {ttfb} | {100 * r['success_rate']:.2f}% | "
            f"{cpu} | {_fmt(r['rss_mb'], 1)} | {_fmt(r.get('other_processes_cores'))} |")
    return lines


def markdown(report: dict[str, Any], plot_name: str) -> str:
    env, s, rt = report["environment"], report["settings"], report["ratios"]
    t = rt["targets"]
    lines = [
        "# Gateway overhead: Inferplane, LiteLLM, Portkey and direct",
        "",
        f"{env['date']}; {env['cpu_model']}, {env['cores']} cores; {env['core_split']}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in env['versions'].items())}.",
        "",
        f"One fake OpenAI upstream (think time {s['think_ms']:g} ms, {s['completion_words']}-word "
        f"completion, {s['max_tokens']} max tokens). Every gateway is one process. "
        f"{env['litellm_note']} {env['inferplane_note']} {env['portkey_note']}",
        "",
        f"Open-loop load at fixed rates, latency from each request's intended send time; "
        f"{s['warmup_s']:g} s warm-up + {s['duration_s']:g} s measured per point; a request "
        f"not answered within {s['timeout_s']:g} s fails. Percentiles over successful "
        "requests. Overhead = gateway minus direct at the same rate and mode. \"others\": cores "
        "that processes outside the benchmark used meanwhile (the machine is shared; in the "
        "full run a point above 0.25 was run again once and the quieter run kept). Load "
        f"generator: {env['load_generator']}",
        "",
        *table(report["runs"]),
        "",
        *[f"Not run: {r['gateway']} {r['mode']} at {r['rps']:g} RPS ({r['why']})."
          for r in report.get("skipped_runs", [])],
        "",
        f"![p99 latency vs rate]({plot_name})",
        "",
        f"## Against the targets (at {rt['at_rps']} RPS, non-streaming, unless said)",
        "",
        f"- Overhead p50: inferplane {_fmt(rt['overhead_p50_ms']['inferplane'], 3)} ms, litellm "
        f"{_fmt(rt['overhead_p50_ms']['litellm'], 3)} ms, portkey "
        f"{_fmt(rt['overhead_p50_ms']['portkey'], 3)} ms. Inferplane / LiteLLM = "
        f"{_fmt(rt['inferplane_over_litellm_overhead_p50'], 3)} (target <= 0.1: "
        f"{_yes(t['overhead_p50_at_most_tenth_of_litellm'])}); Inferplane / Portkey = "
        f"{_fmt(rt['inferplane_over_portkey_overhead_p50'], 3)} (target < 1: "
        f"{_yes(t['overhead_p50_below_portkey'])}).",
        f"- Highest sustained rate (p99 < {50 + s['think_ms']:g} ms, >= 99.9% success): "
        + ", ".join(f"{gw} {_fmt(v, 0)}" for gw, v in report["max_rps"].items())
        + f" RPS{' (from the sweep only)' if report['quick'] else ''}. Inferplane / LiteLLM = "
        f"{_fmt(rt['inferplane_over_litellm_max_rps'])} (target >= 5: "
        f"{_yes(t['max_rps_at_least_5x_litellm'])}).",
        f"- Streaming TTFB p50, inferplane minus direct: "
        f"{_fmt(rt['stream_ttfb_p50_inferplane_minus_direct_ms'], 3)} ms (target <= 1 ms: "
        f"{_yes(t['stream_ttfb_p50_within_1ms_of_direct'])}).",
        f"- Soak ({s['soak_s']:g} s at {s['soak_rps']:g} RPS, or half the gateway's sustained "
        "rate if lower; RSS every 10 s), growth from 20% of the run (minute 2 of 10) to its end: "
        + ", ".join(f"{gw} {_fmt(v)}%" for gw, v in rt["soak_growth_pct"].items())
        + f" (target < 5% for inferplane: {_yes(t['soak_rss_growth_below_5pct'])}).",
        "",
        *soak_lines(report["soak"]),
        *generator_lines(report["generator"]),
    ]
    return "\n".join(lines) + "\n"


def _yes(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "**not met**")


def soak_lines(soak: dict[str, dict[str, Any]]) -> list[str]:
    if not soak:
        return []
    lines = ["## Soak", "", "| gateway | rps | RSS start / at 20% / end / max MB | growth | "
             "p50 / p99 ms | success |", "|---|---|---|---|---|---|"]
    for gw, s in soak.items():
        rss = " / ".join(str(s[k]) for k in ("rss_mb_start", "rss_mb_at_20pct", "rss_mb_end",
                                             "rss_mb_max"))
        lines.append(f"| {gw} | {s['rps']:g} | {rss} | {_fmt(s['growth_pct'])}% | "
                     f"{_fmt(s['p50_ms'])} / {_fmt(s['p99_ms'])} | "
                     f"{100 * s['success_rate']:.2f}% |")
    return [*lines, ""]


def generator_lines(gen: dict[str, Any]) -> list[str]:
    rows = gen.get("rows", [])
    lines = ["## The load generator's own limit", "", gen["note"], ""]
    if rows:
        lines += ["| mode | rps | p50 ms | p99 ms | success | generator lag p99 ms | generator "
                  "CPU (cores) | upstream CPU (cores) |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            window = r["cpu_window_s"] or 1
            upstream = (r["upstream_cpu_s"] or 0) / window
            lines.append(
                f"| {r['mode']} | {r['rps']:g} | {_fmt(r['p50_ms'])} | {_fmt(r['p99_ms'])} | "
                f"{100 * r['success_rate']:.2f}% | {_fmt(r['generator_lag_p99_ms'])} | "
                f"{r['generator_cpu_s'] / window:.2f} | {upstream:.2f} |")
        lines.append("")
    return lines
