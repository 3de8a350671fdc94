"""Stage 0 of the stand-in head: the anatomical anchors the other stages share.

The height of the lip line (also the height of the centre the mesh rays start
from), the eyeball centres and radius, and the five joints with their parents
(FLAME's order: global, neck, jaw, left eye, right eye). Model frame as FLAME:
x to the subject's left, y up, z out of the face, metres.
"""

from __future__ import annotations

import numpy as np

MOUTH_Y = -0.0545  # height of the lip line, and of the ray centre
RAY_CENTRE = np.array([0.0, MOUTH_Y, 0.0])
EYE_CENTRES = np.array([[0.032, 0.021, 0.071], [-0.032, 0.021, 0.071]])  # left, right
EYE_RADIUS = 0.0122
JOINTS = np.array(
    [
        [0.0, -0.125, -0.018],  # global: neck base
        [0.0, -0.045, -0.020],  # neck: skull base
        [0.0, -0.014, 0.012],  # jaw: temporomandibular axis
        EYE_CENTRES[0],
        EYE_CENTRES[1],
    ]
)
PARENTS = np.array([-1, 0, 1, 1, 1], dtype=np.int64)
