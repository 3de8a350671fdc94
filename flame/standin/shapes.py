"""Stage 5 of the stand-in head: the named shape modes.

Displacement fields of identity (head size, face width, nose size, jaw width,
...), each about one standard deviation; :mod:`.build` puts them first in the
shape basis, before the random fields of :mod:`.bases`.
"""

from __future__ import annotations

import numpy as np

from .anatomy import MOUTH_Y
from .fields import _both, _front, _gauss, _smoothstep
from .mesh import _Geometry


def _shape_modes(g: _Geometry) -> dict[str, np.ndarray]:
    """The named shape modes, ``{name: displacement [V,3]}``."""
    p, n = g.v, g.smooth_normals
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    zero = np.zeros_like(x)
    front = _front(p)
    face_band = _smoothstep(0.07, 0.03, y) * _smoothstep(-0.13, -0.09, y)
    nose = _gauss(p, (0.0, -0.006, 0.104), (0.014, 0.022, 0.014)) * _smoothstep(0.08, 0.095, z)
    nose_anchor = np.array([0.0, -0.008, 0.085])
    lips = _gauss(p, (0.0, MOUTH_Y, 0.092), (0.02, 0.01, 0.01))
    mouth = _gauss(p, (0.0, MOUTH_Y, 0.088), (0.028, 0.012, 0.015))
    ears = _both(p, (0.08, 0.004, -0.01), (0.016, 0.03, 0.02))
    neck = _smoothstep(-0.085, -0.11, y)
    modes = {
        "head_size": 0.03 * p,
        "face_width": np.stack([0.06 * x * front * face_band, zero, zero], 1),
        "head_length": np.stack([zero, zero, 0.05 * z * _smoothstep(0.02, -0.03, z)], 1),
        "face_height": np.stack(
            [zero, 0.06 * (y - 0.02) * _smoothstep(0.03, -0.02, y) * front * (1 - neck), zero], 1
        ),
        "nose_size": 0.22 * (p - nose_anchor) * nose[:, None],
        "jaw_width": np.stack(
            [
                0.09
                * x
                * _smoothstep(-0.035, -0.075, y)
                * _smoothstep(-0.03, 0.01, z)
                * (1 - neck),
                zero,
                zero,
            ],
            1,
        ),
        "cranium_height": np.stack([zero, 0.05 * y * _smoothstep(0.03, 0.11, y), zero], 1),
        "face_depth": np.stack([zero, zero, 0.05 * z * front * face_band], 1),
        "chin_protrusion": 0.005
        * _gauss(p, (0.0, -0.09, 0.08), (0.015, 0.013, 0.015))[:, None]
        * np.array([0, -0.3, 1.0]),
        "cheekbones": 0.003 * (n * _both(p, (0.055, 0.003, 0.055), (0.012, 0.01, 0.012))[:, None]),
        "brow_ridge": 0.0028 * (n * _gauss(p, (0.0, 0.038, 0.085), (0.035, 0.008, 0.012))[:, None]),
        "nose_width": np.stack([0.18 * x * nose, zero, zero], 1),
        "nose_bridge": 0.003
        * _gauss(p, (0.0, 0.012, 0.095), (0.008, 0.014, 0.01))[:, None]
        * np.array([0, 0, 1.0]),
        "eye_spacing": np.stack(
            [
                0.003 * np.tanh(x / 0.008) * _both(p, (0.032, 0.021, 0.08), (0.016, 0.012, 0.015)),
                zero,
                zero,
            ],
            1,
        ),
        "lip_fullness": 0.0022 * n * lips[:, None],
        "mouth_width": np.stack([0.1 * x * mouth, zero, zero], 1),
        "ear_size": 0.15
        * (p - np.array([0.0, 0.004, -0.01]))
        * np.array([0.3, 1.0, 1.0])
        * ears[:, None],
        "neck_width": np.stack([0.06 * x * neck, zero, 0.06 * (z + 0.02) * neck], 1),
        "forehead_slope": np.stack([zero, zero, 0.006 * _smoothstep(0.045, 0.11, y) * front], 1),
    }
    return modes
