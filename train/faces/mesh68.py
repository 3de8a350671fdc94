"""68 points in iBUG order from MediaPipe's 468/478-point mesh, so that everything that
reads ``.pts`` files keeps working with the MediaPipe backend.

Each iBUG point is one mesh point or the mean of two. The correspondence is Peizhi
Yan's table (github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, ``mp2dlib.py``, 2024:
"each Dlib landmark index maps to one or two Mediapipe landmark indices ... the
average of their coordinates"), restated here per region. How close it comes to dlib's
68-point model on real photographs is measured by ``python -m bench.faces``
(docs/faces.md section 5): the two are different definitions of the jaw line in
particular (the mesh's face oval is its silhouette, iBUG's jaw the annotators').
"""

from __future__ import annotations

import numpy as np

#: per iBUG point (0-based), the mesh indices averaged for it
MESH_TO_IBUG: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, from the image's left (the subject's right) to its right
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # brows 17-26
    (70,), (63,), (105,), (66,), (107,), (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30 and lower nose 31-35
    (168, 6), (197, 195), (5,), (4,), (75,), (97,), (2,), (326,), (305,),
    # eyes 36-47: each from its outer corner (36) / inner corner (42), upper lid first
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59 from the left corner, upper first
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67 from the left corner, upper first
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)  # fmt: skip

_PAIRS = np.array([(m[0], m[-1]) for m in MESH_TO_IBUG], dtype=np.int64)


def mesh_to_68(mesh: np.ndarray) -> np.ndarray:
    """``[68,D]`` float64 iBUG-ordered points from mesh points ``[468 or 478, D]``
    (D = 2 or 3; any coordinates: the mapping is a selection and two-point means)."""
    pts = np.asarray(mesh, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] not in (468, 478) or pts.shape[1] not in (2, 3):
        raise ValueError(f"mesh points must be [468 or 478, 2 or 3], got {list(pts.shape)}")
    return pts[_PAIRS].mean(axis=1)
