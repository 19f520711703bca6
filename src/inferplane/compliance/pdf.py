"""The documentation's Markdown lines set as A4 PDF pages with matplotlib (already a
dependency: no system packages, no other PDF library). Headings in bold, the rest in a
monospaced face wrapped to the page, so tables keep their columns' order."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

A4 = (8.27, 11.69)  # inches
TOP, BOTTOM, LEFT = 0.95, 0.05, 0.06
WIDTH = 108  # characters of the body face per line
STYLES = {"#": (13.0, 0.030), "##": (10.5, 0.026), "": (7.0, 0.0125)}  # size, line height


def _styled(lines: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(style, text) per printed line: headings kept whole, table rules dropped, the rest
    wrapped."""
    fenced = False
    for line in lines:
        fenced ^= line.startswith("```")
        if fenced or line.startswith("```"):
            yield from (("", part) for part in textwrap.wrap(line, WIDTH) or [""])
        elif line.startswith("## "):
            yield "##", line[3:]
        elif line.startswith("# "):
            yield "#", line[2:]
        elif line.startswith("|") and set(line) <= set("|-"):
            continue
        else:
            for part in textwrap.wrap(line.replace("**", ""), WIDTH,
                                      subsequent_indent="    ") or [""]:
                yield "", part


def pages(lines: Sequence[str]) -> list[Figure]:
    """The lines laid out on as many A4 figures as they need."""
    figures: list[Figure] = []
    y = BOTTOM
    fig: Figure | None = None
    for style, text in _styled(lines):
        size, height = STYLES[style]
        if fig is None or y - height < BOTTOM or (style == "##" and y - 6 * height < BOTTOM):
            fig = Figure(figsize=A4)
            figures.append(fig)
            y = TOP
        y -= height
        fig.text(LEFT, y, text, fontsize=size, family="sans-serif" if style else "monospace",
                 weight="bold" if style else "normal", va="baseline", parse_math=False)
    for number, figure in enumerate(figures, 1):
        figure.text(0.5, 0.025, f"{number} / {len(figures)}", fontsize=7, ha="center")
    return figures


def write_pdf(lines: Sequence[str], path: Path, title: str) -> int:
    """Write ``lines`` to ``path`` as a PDF; return its number of pages."""
    figures = pages(lines)
    with PdfPages(path, metadata={"Title": title, "Creator": "Inferplane"}) as pdf:
        for figure in figures:
            pdf.savefig(figure)
    return len(figures)


def write_pngs(lines: Sequence[str], directory: Path, dpi: int = 80) -> list[Path]:
    """The same pages as PNG images (to look at them)."""
    out = []
    for number, figure in enumerate(pages(lines), 1):
        out.append(directory / f"page-{number:03d}.png")
        figure.savefig(out[-1], dpi=dpi)
    return out
