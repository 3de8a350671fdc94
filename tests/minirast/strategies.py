"""Hypothesis strategies that draw rasterizer geometry on small grids.

Vertices are integers on a grid of ``1/GRID`` NDC units, depths and ``w`` small
integer fractions, so a failing case shrinks to a few readable numbers.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

#: NDC units per grid step of the drawn vertices.
GRID = 16


def grid_points(n: int, lo: int = -14, hi: int = 14) -> st.SearchStrategy[torch.Tensor]:
    """``n`` NDC points ``[n,2]`` float64 on the ``1/GRID`` grid, in ``[lo, hi] / GRID``."""
    coord = st.integers(lo, hi)
    return st.lists(st.tuples(coord, coord), min_size=n, max_size=n).map(
        lambda v: torch.tensor(v, dtype=torch.float64) / GRID
    )


def fractions(n: int, lo: int, hi: int, denominator: int) -> st.SearchStrategy[torch.Tensor]:
    """``n`` float64 values ``k / denominator`` with integers ``k`` in ``[lo, hi]``."""
    return st.lists(st.integers(lo, hi), min_size=n, max_size=n).map(
        lambda v: torch.tensor(v, dtype=torch.float64) / denominator
    )


#: Clip ``w`` of three vertices, in [0.5, 2.5] by quarters.
vertex_ws = fractions(3, 2, 10, 4)
#: Depths ``z/w`` of three vertices, in [0, 1] by eighths.
vertex_depths = fractions(3, 0, 8, 8)
