"""The stand-in head's MediaPipe embedding: SMIRK's 105 MediaPipe points on its surface.

Each point is placed as the 68 static landmarks are (:mod:`.landmarks`): a ray along -z
through a rest-pose ``(x, y)`` (metres, model frame) onto the front-most face, kept as
face index and barycentrics. The ``(x, y)`` come from MediaPipe itself
(``python -m bench.standin_mediapipe --derive 64 --print``): its mesh run on 64 renders
of random stand-in subjects (44 detected; yaw within +-20 degrees, over real
backgrounds), each point back-projected onto the posed mesh and carried to the rest
mesh through that face and barycentrics, the median over views. The same command
reports how well the embedding reprojects onto MediaPipe's output on held-out renders
(docs/fitting.md, "Dense points and the iris").
"""

from __future__ import annotations

import numpy as np

from ..mediapipe_embedding import MEDIAPIPE_105
from .landmarks import _ray_hits
from .mesh import _Geometry

#: rest ``(x, y)`` (metres) of each point of :data:`MEDIAPIPE_105`, in that order
REST_XY = (
    (0.0535, 0.0357), (0.0402, 0.0413), (0.0475, 0.0396), (0.0138, 0.0344),
    (0.0509, 0.0441), (0.0288, 0.0400), (0.0304, 0.0450), (0.0580, 0.0397),
    (0.0428, 0.0472), (0.0159, 0.0425), (-0.0555, 0.0330), (-0.0402, 0.0388),
    (-0.0492, 0.0366), (-0.0135, 0.0339), (-0.0531, 0.0419), (-0.0287, 0.0385),
    (-0.0303, 0.0440), (-0.0598, 0.0368), (-0.0429, 0.0438), (-0.0154, 0.0423),
    (0.0408, 0.0176), (0.0430, 0.0193), (0.0171, 0.0176), (0.0347, 0.0154),
    (0.0297, 0.0151), (0.0249, 0.0153), (0.0205, 0.0170), (0.0181, 0.0175),
    (0.0219, 0.0201), (0.0270, 0.0209), (0.0322, 0.0205), (0.0368, 0.0201),
    (0.0399, 0.0198), (0.0382, 0.0164), (0.0188, 0.0189), (0.0417, 0.0196),
    (-0.0399, 0.0153), (-0.0421, 0.0166), (-0.0176, 0.0172), (-0.0337, 0.0141),
    (-0.0287, 0.0142), (-0.0243, 0.0152), (-0.0207, 0.0165), (-0.0185, 0.0169),
    (-0.0216, 0.0200), (-0.0265, 0.0203), (-0.0313, 0.0198), (-0.0358, 0.0187),
    (-0.0387, 0.0176), (-0.0372, 0.0146), (-0.0188, 0.0183), (-0.0407, 0.0170),
    (-0.0003, 0.0227), (-0.0000, 0.0139), (0.0006, 0.0059), (0.0008, -0.0011),
    (0.0009, -0.0081), (0.0014, -0.0163), (-0.0213, -0.0197), (-0.0177, -0.0261),
    (-0.0076, -0.0279), (0.0006, -0.0281), (0.0094, -0.0282), (0.0191, -0.0258),
    (0.0230, -0.0191), (0.0015, -0.0431), (0.0004, -0.0482), (0.0015, -0.0544),
    (0.0006, -0.0612), (-0.0071, -0.0423), (-0.0161, -0.0449), (-0.0209, -0.0473),
    (-0.0277, -0.0505), (-0.0238, -0.0500), (-0.0160, -0.0487), (-0.0113, -0.0487),
    (-0.0061, -0.0483), (-0.0085, -0.0605), (-0.0056, -0.0542), (-0.0168, -0.0538),
    (-0.0210, -0.0555), (-0.0194, -0.0536), (-0.0249, -0.0536), (-0.0116, -0.0543),
    (-0.0148, -0.0587), (-0.0253, -0.0481), (-0.0205, -0.0491), (0.0096, -0.0420),
    (0.0175, -0.0440), (0.0223, -0.0462), (0.0276, -0.0493), (0.0232, -0.0488),
    (0.0166, -0.0478), (0.0124, -0.0479), (0.0072, -0.0482), (0.0099, -0.0609),
    (0.0079, -0.0544), (0.0181, -0.0532), (0.0222, -0.0554), (0.0207, -0.0523),
    (0.0259, -0.0535), (0.0136, -0.0540), (0.0163, -0.0589), (0.0261, -0.0475),
    (0.0199, -0.0481),
)  # fmt: skip


def _mediapipe_embedding(g: _Geometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Faces ``[105]``, barycentrics ``[105, 3]`` and MediaPipe indices ``[105]``."""
    faces_idx, bary = _ray_hits(g.v, g.faces, np.array(REST_XY))
    return faces_idx, bary, np.array(MEDIAPIPE_105, dtype=np.int64)
