"""68-point landmark files, read and written: ``.npy`` (a float array ``[68, 2]``,
loaded with ``allow_pickle=False``), ``.json`` (``[[x, y], ...]`` or ``{"landmarks":
[...]}``), both 0-based pixels, and 300-W ``.pts`` (``version: 1``, ``n_points: 68``,
``{``, one ``x y`` line per point in 1-based pixel coordinates, ``}``). In memory the
points are 0-based pixels with pixel centres at integers (docs/design.md section 2)."""

from __future__ import annotations

import json
import os

import numpy as np

from _common.atomic import write_text

#: landmark file suffixes, in the order a folder's files are looked up
LANDMARK_SUFFIXES = (".npy", ".json", ".pts")
#: MediaPipe's 478 points beside a ``.pts`` (train.landmarks): ``<stem>.mp.npy``
MESH_SUFFIX = ".mp.npy"


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


def read_landmarks(path: str) -> np.ndarray:
    """Landmarks ``[68,2]`` (0-based pixels) from a .npy, .json or .pts file."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix == ".npy":
        points = np.load(path, allow_pickle=False)
    elif suffix == ".json":
        with open(path) as f:
            content = json.load(f)
        if isinstance(content, dict):
            if "landmarks" not in content:
                raise ValueError("JSON landmarks need a 'landmarks' key or a top-level list")
            content = content["landmarks"]
        points = np.asarray(content, dtype=np.float64)
    elif suffix == ".pts":
        points = read_pts(path)
    else:
        raise ValueError(f"unknown landmark format {suffix!r}, expected one of {LANDMARK_SUFFIXES}")
    points = np.asarray(points, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"expected 68 (x, y) landmarks, got shape {list(points.shape)}")
    if not np.isfinite(points).all():
        raise ValueError("landmarks contain NaN or inf")
    return points
