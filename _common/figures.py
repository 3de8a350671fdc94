"""Saving figures so they read at a glance: every PNG the project writes has at least
:data:`MIN_SHORT_SIDE_PX` pixels on its short side (the figure's own size in inches is
kept; the resolution is raised to reach it), and is written atomically."""

from __future__ import annotations

import math
import os

from _common.atomic import atomic_path

#: the least number of pixels on the short side of a saved figure
MIN_SHORT_SIDE_PX = 600


def figure_dpi(size_inches: tuple[float, float], dpi: float = 100.0) -> int:
    """The resolution a figure of ``size_inches`` (width, height) is saved at: ``dpi``,
    or more where that leaves its short side under :data:`MIN_SHORT_SIDE_PX` pixels."""
    short = min(float(size_inches[0]), float(size_inches[1]))
    if not short > 0:
        raise ValueError(f"a figure needs a positive size, got {tuple(size_inches)} inches")
    # the small margin keeps matplotlib's rounding of width * dpi from losing a pixel
    return max(int(dpi), math.ceil(MIN_SHORT_SIDE_PX / short + 1e-6))


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (files only, no display), imported when
    first drawn with: matplotlib is needed only by the code that draws."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | os.PathLike, dpi: float = 100.0) -> None:
    """Write the matplotlib figure ``fig`` to ``path`` (format from the suffix) at
    :func:`figure_dpi`, atomically. The caller closes the figure."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=figure_dpi(fig.get_size_inches(), dpi))
