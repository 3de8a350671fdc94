"""Stage 3 of the stand-in head: skinning weights, joint regressor, pose correctives.

Smooth linear-blend-skinning weights for the five joints (the jaw's follows the
mouth rings on the lips and stops at the mandible's lower edge and the ears),
the joint regressor (min-norm affine vertex weights that reproduce
:data:`.anatomy.JOINTS` exactly) and small pose correctives where the neck and
jaw weights blend.
"""

from __future__ import annotations

import numpy as np

from .anatomy import EYE_CENTRES, EYE_RADIUS, JOINTS, MOUTH_Y
from .fields import _both, _smoothstep
from .mesh import _Geometry


def _jaw_weight(g: _Geometry) -> np.ndarray:
    """The jaw joint's weight [V]: below the lip line (on the lips, exactly the lower
    mouth rings), in front of the ramus, above the mandible's lower edge, off the ears."""
    p = g.v
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    m = g.mouth_weight
    smooth = _smoothstep(MOUTH_Y + 0.012, MOUTH_Y - 0.022, y)
    # on the lips the split follows the mouth rings exactly
    split = np.where(g.side > 0, 0.0, np.where(g.side < 0, 1.0, 0.5))
    w = (1 - m) * smooth + m * split
    w *= _smoothstep(-0.025, 0.005, z)  # behind the ramus: head
    y_line = -0.106 + 0.35 * (0.04 - z)  # the lower edge of the mandible
    w *= _smoothstep(-0.012, 0.004, y - y_line)  # the neck stays
    w *= 1.0 - _smoothstep(0.06, 0.075, np.abs(x)) * _smoothstep(-0.04, -0.01, y)  # ears
    return w


def _skinning(g: _Geometry) -> np.ndarray:
    """Skinning weights [V,5] (global, neck, jaw, left eye, right eye); rows sum to 1."""
    p = g.v
    w = np.zeros((len(p), 5))
    root = _smoothstep(-0.095, -0.15, p[:, 1])
    jaw = _jaw_weight(g) * (1 - root)
    eyes = []
    for c in EYE_CENTRES:
        d = np.linalg.norm(p - c, axis=1)
        eyes.append(
            (1 - _smoothstep(EYE_RADIUS + 0.0006, EYE_RADIUS + 0.0016, d)) * (p[:, 2] > c[2])
        )
    w[:, 0] = root
    w[:, 2] = jaw
    w[:, 3], w[:, 4] = eyes
    w[:, 3:] *= (1 - root - jaw)[:, None]
    w[:, 1] = 1.0 - w.sum(1)
    return w


def _regressor(v: np.ndarray) -> np.ndarray:
    """Rows: min-norm affine weights over nearby vertices that reproduce JOINTS exactly."""
    rows = np.zeros((len(JOINTS), len(v)))
    radius = [0.06, 0.07, 0.085, 0.02, 0.02]
    for j, (c, rad) in enumerate(zip(JOINTS, radius)):
        idx = np.nonzero(np.linalg.norm(v - c, axis=1) < rad)[0]
        a = np.vstack([v[idx].T, np.ones(len(idx))])  # 4 x k
        w0 = np.full(len(idx), 1.0 / len(idx))
        b = np.append(c, 1.0)
        w = w0 + a.T @ np.linalg.solve(a @ a.T, b - a @ w0)
        rows[j, idx] = w
    return rows


def _posedirs(g: _Geometry, w: np.ndarray) -> np.ndarray:
    """Small smooth correctives: 36 features (neck, jaw, eyes; 9 each)."""
    rng = np.random.default_rng(11)
    out = np.zeros((len(g.v), 3, 36))
    for jj, joint in enumerate((1, 2)):
        band = 4.0 * w[:, joint] * (1.0 - w[:, joint])  # where skinning blends
        for k in range(9):
            out[:, :, 9 * jj + k] = g.smooth_normals * (band * rng.normal() * 0.0015)[:, None]
    # opening the jaw (R[2,1] = sin a) thins the cheeks a little
    cheeks = _both(g.v, (0.05, -0.045, 0.05), (0.015, 0.015, 0.02))
    out[:, :, 9 + 7] += -0.004 * g.smooth_normals * cheeks[:, None]
    return out
