"""Smooth scalar fields over points that the stages build their weights from.

A smoothstep ramp, Gaussian bumps (single and mirrored to both sides of the
face) and the ramp that selects the front of the head; the mesh, skinning,
bases, expressions and masks stages all use them.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    """Hermite ramp from 0 at ``e0`` to 1 at ``e1`` (``e1 < e0`` ramps down)."""
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _gauss(p: np.ndarray, c: ArrayLike, s: ArrayLike) -> np.ndarray:
    """Unnormalised Gaussian about ``c`` with per-axis widths ``s``, [N,3] -> [N]."""
    q = (p - np.asarray(c)) / np.asarray(s)
    return np.exp(-0.5 * (q * q).sum(-1))


def _both(p: np.ndarray, c: ArrayLike, s: ArrayLike) -> np.ndarray:
    """A Gaussian placed at c and at its mirror image."""
    c = np.asarray(c, dtype=float)
    m = c * np.array([-1.0, 1.0, 1.0])
    return _gauss(p, c, s) + _gauss(p, m, s)


def _front(p: np.ndarray) -> np.ndarray:
    """Weight of the front of the head: 0 behind z = -0.01, 1 in front of z = 0.05."""
    return _smoothstep(-0.01, 0.05, p[:, 2])
