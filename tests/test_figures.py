"""Figures read at a glance: every figure goes through ``_common.figures.save_figure``,
which gives it at least 600 px on its short side."""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from _common.figures import MIN_SHORT_SIDE_PX, figure_dpi, pyplot, save_figure

plt = pyplot()

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("_common", "bench", "flame", "minirast", "ppcam", "tools", "train")


@given(st.floats(0.5, 30.0), st.floats(0.5, 30.0), st.floats(50.0, 300.0))
def test_the_resolution_reaches_the_short_side_and_keeps_a_higher_one(w, h, dpi):
    chosen = figure_dpi((w, h), dpi)
    assert min(w, h) * chosen >= MIN_SHORT_SIDE_PX
    assert chosen >= int(dpi)
    if min(w, h) * int(dpi) < MIN_SHORT_SIDE_PX:  # raised only as far as needed
        assert min(w, h) * (chosen - 1) < MIN_SHORT_SIDE_PX + 1e-6


def test_pyplot_draws_to_files_only():
    assert plt is matplotlib.pyplot
    assert matplotlib.get_backend().lower() == "agg"


def test_a_small_figure_is_saved_large_enough(tmp_path):
    fig, ax = plt.subplots(figsize=(4.0, 1.5))
    ax.plot([0, 1], [1, 0])
    save_figure(fig, tmp_path / "small.png", dpi=80)
    plt.close(fig)
    w, h = Image.open(tmp_path / "small.png").size
    assert min(w, h) >= MIN_SHORT_SIDE_PX
    assert w == pytest.approx(h * 4.0 / 1.5, rel=0.01)  # the figure's shape is kept
    with pytest.raises(ValueError, match="positive size"):
        figure_dpi((0.0, 3.0))


def test_every_figure_is_saved_through_save_figure():
    """No module calls matplotlib's ``savefig`` itself (it would pick its own size)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != ROOT / "_common" / "figures.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.savefig\(", line)
    ]
    assert offenders == []


@pytest.mark.parametrize("bench", ["fit", "photo_fit", "projection", "raster", "regressor"])
def test_the_bench_plots_of_the_committed_results_are_large_enough(bench, tmp_path):
    """Each benchmark's plot, re-drawn from its committed results file."""
    import importlib

    module = importlib.import_module(f"bench.{bench}")
    payload = json.loads((ROOT / "bench/results/cpu-x86_64-2cores" / f"{bench}.json").read_text())
    module.plot(payload, str(tmp_path / f"{bench}.png"))
    assert min(Image.open(tmp_path / f"{bench}.png").size) >= MIN_SHORT_SIDE_PX
