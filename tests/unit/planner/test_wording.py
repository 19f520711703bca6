"""What ``inferplane plan`` says: counts in the singular for one, the speculative-decoding
setting in the title (table and plot), a decode breakdown that explains its compute share,
and a plot whose labels and colours can be told apart."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngImageFile
from typer.testing import CliRunner

from inferplane.cli.main import app
from inferplane.planner.plot import style
from inferplane.planner.plot_labels import place_labels, text_boxes

matplotlib.use("Agg")
import matplotlib.pyplot as plt

runner = CliRunner()
ONE_CHIP = ["plan", "--model", "llama-3.1-70b", "--quant", "fp8", "--hardware", "mi300x,h100"]


@pytest.fixture
def no_calibration(tmp_path: Path) -> list[str]:
    return ["--calibration", str(tmp_path / "none.json")]


def test_one_chip_is_singular_and_the_title_says_no_speculation(
        no_calibration: list[str]) -> None:
    result = runner.invoke(app, [*ONE_CHIP, *no_calibration])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())  # however the notes wrap
    assert "1 chip x $" in text and "1 chips" not in text
    assert "no speculative decoding" in text


def test_the_speculation_setting_is_in_the_table_and_the_plot_title(
        tmp_path: Path, no_calibration: list[str]) -> None:
    png = tmp_path / "plan.png"
    result = runner.invoke(app, [*ONE_CHIP, "--spec", "4:0.7", "--plot", str(png),
                                 *no_calibration])
    assert result.exit_code == 0, result.output
    setting = "speculative decoding 4 draft tokens, 70% accepted"
    assert setting in " ".join(result.stdout.split())
    with Image.open(png) as image:
        assert isinstance(image, PngImageFile)
        assert setting in image.text["Title"]


def test_the_decode_breakdown_explains_a_compute_share_hidden_under_memory(
        no_calibration: list[str]) -> None:
    """A bandwidth-bound decode step charges its compute to the memory reads it hides under:
    the breakdown says so, and how busy the compute units were, instead of 'compute 0%'."""
    result = runner.invoke(app, [*ONE_CHIP, *no_calibration])
    text = " ".join(result.stdout.split())
    assert "compute 0%" not in text
    assert "compute under the memory reads, busy" in text
    assert "(compute-bound)" in text  # the prefill of the same plan


def test_config_check_counts_in_the_singular(tmp_path: Path) -> None:
    config = tmp_path / "inferplane.yaml"
    config.write_text("models: [{name: chat}]\ndeployments:\n"
                      "  - {name: d, model: chat, provider: openai, base_url: 'http://x/v1'}\n")
    result = runner.invoke(app, ["config", "check", str(config)])
    assert "OK: 1 model, 1 deployment" in result.stdout, result.output


def test_hardware_styles_differ_in_colour_or_marker() -> None:
    cmap = plt.get_cmap("tab10")
    looks = [(style(i, cmap)["color"], style(i, cmap)["marker"]) for i in range(20)]
    assert len(set(looks)) == 20
    assert len({color for color, _ in looks[:10]}) == 10  # ten hues before a marker repeats


def test_labels_of_crowded_points_do_not_overlap() -> None:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    xs = [10 + 0.3 * i for i in range(8)]
    ys = [2 + 0.02 * i for i in range(8)]
    ax.scatter(xs, ys)
    ax.set_xlim(0, 40)
    ax.set_ylim(0, 5)
    labels = [ax.annotate(f"hardware-{i} (1 chip)", (x, y), xytext=(6, 4),
                          textcoords="offset points", fontsize=7,
                          arrowprops={"arrowstyle": "-"})
              for i, (x, y) in enumerate(zip(xs, ys, strict=True))]
    assert place_labels(fig, ax, labels) == 0
    for a, b in itertools.combinations(text_boxes(fig, labels), 2):
        assert not a.overlaps(b)
    plt.close(fig)
