"""Stage 8 of the stand-in head: vertex masks of regions.

Face, nose, lips, mouth interior, eyeballs, eye regions, ears, neck and scalp,
as sorted vertex indices (``FlameModel.masks``).
"""

from __future__ import annotations

import numpy as np

from .anatomy import EYE_CENTRES, MOUTH_Y
from .fields import _gauss
from .mesh import _Geometry


def _masks(g: _Geometry, w: np.ndarray) -> dict[str, np.ndarray]:
    """Vertex indices of each region, ``{name: int64 [k]}``; ``w`` are the skinning
    weights (an eyeball is where its eye joint has more than half)."""
    p = g.v
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    ear_d = np.linalg.norm(
        p[:, None, :] - np.array([[0.078, 0.004, -0.01], [-0.078, 0.004, -0.01]]), axis=2
    )
    ears = ear_d.min(1) < 0.033
    eye_l = w[:, 3] > 0.5
    eye_r = w[:, 4] > 0.5
    face = (z > 0.02) & (y < 0.075) & (y > -0.115) & ~ears
    masks = {
        "face": face,
        "nose": (_gauss(p, (0.0, -0.004, 0.1), (0.016, 0.024, 0.02)) > 0.35) & (z > 0.085),
        "lips": (_gauss(p, (0.0, MOUTH_Y, 0.09), (0.027, 0.011, 0.02)) > 0.3) & (z > 0.075),
        "mouth_interior": g.mouth_inner & (g.mouth_weight > 0.5),
        "left_eyeball": eye_l,
        "right_eyeball": eye_r,
        "left_eye_region": np.linalg.norm(p - EYE_CENTRES[0] - [0, 0, 0.012], axis=1) < 0.024,
        "right_eye_region": np.linalg.norm(p - EYE_CENTRES[1] - [0, 0, 0.012], axis=1) < 0.024,
        "left_ear": ears & (x > 0),
        "right_ear": ears & (x < 0),
        "neck": (y < -0.09) & ~face,
        "scalp": (y > 0.06) | ((z < -0.02) & (y > -0.04) & ~ears),
    }
    return {k: np.nonzero(v)[0].astype(np.int64) for k, v in masks.items()}
