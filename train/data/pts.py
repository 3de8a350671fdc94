"""300-W ``.pts`` landmark files: ``version: 1``, ``n_points: 68``, ``{``, one ``x y`` line
per point in 1-based pixel coordinates, ``}``. In memory the points are 0-based pixels
with pixel centres at integers (docs/design.md section 2)."""

from __future__ import annotations

import numpy as np

from _common.atomic import write_text


def read_pts(path: str) -> np.ndarray:
    """300W ``.pts`` landmarks as 0-based pixel coordinates ``[N,2]``."""
    with open(path) as f:
        lines = [line.strip() for line in f if line.strip()]
    try:
        start, end = lines.index("{"), lines.index("}")
    except ValueError:
        raise ValueError("not a .pts file: no '{' ... '}' block") from None
    points = np.array([[float(v) for v in line.split()] for line in lines[start + 1 : end]])
    return points - 1.0


def write_pts(path: str, points: np.ndarray) -> None:
    """Write ``[68,2]`` 0-based pixel landmarks as a 300W ``.pts`` file (1-based), atomically.

    :func:`read_pts` reads it back to the same values (to the 6 decimals written).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (68, 2) or not np.isfinite(pts).all():
        raise ValueError(f"expected 68 finite (x, y) landmarks, got shape {list(pts.shape)}")
    body = "".join(f"{x + 1.0:.6f} {y + 1.0:.6f}\n" for x, y in pts)
    write_text(path, f"version: 1\nn_points: 68\n{{\n{body}}}\n")
