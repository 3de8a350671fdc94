"""Stage 6 of the stand-in head: the named expression modes and the eyelids.

Displacement fields of expression (mouth open, smile, brow raise, frown, ...),
each about one standard deviation, that :mod:`.build` puts first in the
expression basis; and the two eyelid blendshapes (left, right; 1 = closed).
"""

from __future__ import annotations

import numpy as np

from .anatomy import EYE_CENTRES, JOINTS, MOUTH_Y
from .fields import _both, _front, _gauss, _smoothstep
from .mesh import _Geometry


def _expression_modes(g: _Geometry, jaw_w: np.ndarray) -> dict[str, np.ndarray]:
    """The named expression modes, ``{name: displacement [V,3]}``; ``jaw_w`` is the jaw's
    skinning weight [V] (``mouth_open`` turns it about the jaw joint)."""
    p, n = g.v, g.smooth_normals
    x, y = p[:, 0], p[:, 1]
    zero = np.zeros_like(x)
    jaw = JOINTS[2]
    a = 0.14  # one unit opens the jaw by about 8 degrees
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    opened = (p - jaw) @ (rot - np.eye(3)).T * jaw_w[:, None]
    corner_l = (0.025, MOUTH_Y, 0.086)
    corner_r = (-0.025, MOUTH_Y, 0.086)
    s_c = (0.012, 0.012, 0.014)
    left = _gauss(p, corner_l, s_c)
    right = _gauss(p, corner_r, s_c)
    cheeks = _both(p, (0.04, -0.025, 0.07), (0.015, 0.015, 0.02))
    smile_l = left[:, None] * np.array([0.004, 0.005, -0.003]) + _gauss(
        p, (0.04, -0.025, 0.07), (0.015, 0.015, 0.02)
    )[:, None] * np.array([0.0, 0.002, 0.001])
    smile_r = right[:, None] * np.array([-0.004, 0.005, -0.003]) + _gauss(
        p, (-0.04, -0.025, 0.07), (0.015, 0.015, 0.02)
    )[:, None] * np.array([0.0, 0.002, 0.001])
    front = _front(p)
    brows = (
        _smoothstep(0.027, 0.036, y)
        * _smoothstep(0.09, 0.055, y)
        * front
        * _smoothstep(0.082, 0.062, np.abs(x))
    )
    inner_brows = _both(p, (0.016, 0.038, 0.088), (0.01, 0.01, 0.012))
    lips = _gauss(p, (0.0, MOUTH_Y, 0.092), (0.02, 0.011, 0.012))
    upper_lip = _gauss(p, (0.0, MOUTH_Y + 0.008, 0.093), (0.018, 0.006, 0.012)) * (g.side > 0)
    lower_lip = _gauss(p, (0.0, MOUTH_Y - 0.009, 0.09), (0.018, 0.007, 0.012)) * (g.side < 0)
    lower_lids = _both(p, (0.032, 0.013, 0.082), (0.012, 0.004, 0.01))
    nose = _gauss(p, (0.0, 0.01, 0.095), (0.012, 0.01, 0.012))
    modes = {
        "mouth_open": opened,
        "smile": smile_l + smile_r,
        "brow_raise": np.stack([zero, 0.006 * brows, 0.0005 * brows], 1),
        "frown": inner_brows[:, None]
        * np.array([1.0, 1.0, 1.0])
        * np.stack(
            [-0.0025 * np.tanh(x / 0.005), np.full_like(x, -0.003), np.full_like(x, 0.001)], 1
        ),
        "lip_pucker": lips[:, None] * np.stack([-0.25 * x, zero, np.full_like(x, 0.005)], 1),
        "mouth_stretch": np.stack(
            [0.15 * x * _gauss(p, (0.0, MOUTH_Y, 0.088), (0.03, 0.012, 0.015)), zero, zero], 1
        ),
        "cheek_puff": 0.004 * n * cheeks[:, None],
        "eye_squint": np.stack([zero, 0.0018 * lower_lids, zero], 1),
        "upper_lip_raise": np.stack([zero, 0.003 * upper_lip, 0.0006 * upper_lip], 1),
        "lower_lip_depress": np.stack([zero, -0.003 * lower_lip, 0.0008 * lower_lip], 1),
        "jaw_forward": np.stack([zero, zero, 0.004 * jaw_w], 1),
        "mouth_left": np.stack(
            [0.005 * _gauss(p, (0.0, MOUTH_Y, 0.088), (0.03, 0.015, 0.02)), zero, zero], 1
        ),
        "smile_left": smile_l,
        "smile_right": smile_r,
        "nose_wrinkle": np.stack([zero, 0.002 * nose, -0.001 * nose], 1),
    }
    return modes


def _eyelids(g: _Geometry) -> np.ndarray:
    """Eyelid blendshapes [V,3,2] (left, right): at 1 each upper lid meets its lower lid."""
    p = g.v
    out = np.zeros((len(p), 3, 2))
    for k, c in enumerate(EYE_CENTRES):
        low = c[1] - 0.0052
        wx = _smoothstep(0.019, 0.013, np.abs(p[:, 0] - c[0]))
        wy = _smoothstep(c[1] + 0.016, c[1] + 0.009, p[:, 1]) * (p[:, 1] > low - 0.001)
        wz = p[:, 2] > c[2]
        w = wx * wy * wz
        out[:, 1, k] = -(p[:, 1] - low) * w
        out[:, 2, k] = 0.0012 * w
    return out
