"""FLAME's MediaPipe embedding: 105 of MediaPipe's 478 face-mesh points on the surface.

SMIRK (github.com/georgeretsi/smirk, MIT; ``assets/mediapipe_landmark_embedding/``)
ships ``mediapipe_landmark_embedding.npz`` with three arrays:

- ``lmk_face_idx [105]`` (uint32 there): the FLAME triangle each point lies in;
- ``lmk_b_coords [105, 3]`` float: its barycentric coordinates in that triangle;
- ``landmark_indices [105]`` int: which MediaPipe point (0..477) each one is.

The 105 points are MediaPipe's brows, eyes, nose and lips (no jaw line); their order
is :data:`MEDIAPIPE_105`. :func:`load_mediapipe_embedding` reads such a file without
pickles (``allow_pickle=False``) and checks shapes, dtypes and index ranges; the face
range is checked against the model by :meth:`flame.FlameModel.validate`. In a
:class:`flame.FlameModel` the arrays are ``mp_lmk_faces_idx``, ``mp_lmk_bary_coords``
and ``mp_landmark_indices``; ``flame.FLAME.mediapipe_landmarks(vertices)`` gives the
posed points ``[B, 105, 3]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: MediaPipe's point count with the irises (468 mesh + 2 x 5 iris points).
N_MEDIAPIPE = 478
#: SMIRK's 105 embedded MediaPipe points, in its file's order.
MEDIAPIPE_105 = (
    276, 282, 283, 285, 293, 295, 296, 300, 334, 336, 46, 52, 53, 55, 63, 65, 66, 70, 105,
    107, 249, 263, 362, 373, 374, 380, 381, 382, 384, 385, 386, 387, 388, 390, 398, 466, 7,
    33, 133, 144, 145, 153, 154, 155, 157, 158, 159, 160, 161, 163, 173, 246, 168, 6, 197,
    195, 5, 4, 129, 98, 97, 2, 326, 327, 358, 0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82,
    84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267, 269, 270, 291, 308, 310, 311, 312,
    314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)  # fmt: skip
#: MediaPipe's iris points: per eye the centre, then four on the iris edge; the first
#: five belong to the eye around mesh points 33/133 (the subject's right eye), the next
#: five to the eye around 362/263 (the subject's left eye).
IRIS_POINTS = ((468, 469, 470, 471, 472), (473, 474, 475, 476, 477))
#: SMIRK's file keys -> our model fields
FILE_KEYS = {
    "lmk_face_idx": "mp_lmk_faces_idx",
    "lmk_b_coords": "mp_lmk_bary_coords",
    "landmark_indices": "mp_landmark_indices",
}


def load_mediapipe_embedding(path: str | Path) -> dict[str, np.ndarray]:
    """The MediaPipe embedding of ``path`` (SMIRK's ``.npz``) as model fields.

    Returns ``{"mp_lmk_faces_idx": [N] int64, "mp_lmk_bary_coords": [N, 3] float32,
    "mp_landmark_indices": [N] int64}``. Raises ``FileNotFoundError`` or ``ValueError``
    saying what is wrong (a missing key, a pickled array, a shape, an index out of range).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MediaPipe embedding file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
    except ValueError as exc:  # object arrays need pickles: refused
        raise ValueError(f"{path}: not a plain .npz of arrays ({exc})") from exc
    missing = [k for k in FILE_KEYS if k not in raw]
    if missing:
        raise ValueError(
            f"{path}: a MediaPipe embedding needs the arrays {list(FILE_KEYS)}, lacks {missing}"
        )
    out = {
        "mp_lmk_faces_idx": _indices(raw["lmk_face_idx"], "lmk_face_idx", path),
        "mp_lmk_bary_coords": np.asarray(raw["lmk_b_coords"]),
        "mp_landmark_indices": _indices(raw["landmark_indices"], "landmark_indices", path),
    }
    check_mediapipe_embedding(**out, n_faces=None, source=str(path))
    out["mp_lmk_bary_coords"] = out["mp_lmk_bary_coords"].astype(np.float32)
    return out


def check_mediapipe_embedding(
    mp_lmk_faces_idx: np.ndarray,
    mp_lmk_bary_coords: np.ndarray,
    mp_landmark_indices: np.ndarray,
    n_faces: int | None,
    source: str = "the MediaPipe embedding",
) -> None:
    """Shapes ``[N]``, ``[N, 3]``, ``[N]``; faces in ``[0, n_faces)`` (unless None);
    barycentrics finite, >= -0.01 and summing to 1; distinct MediaPipe indices in
    ``[0, 478)``. Raises ``ValueError`` naming the problem."""
    fi, b, mi = mp_lmk_faces_idx, mp_lmk_bary_coords, mp_landmark_indices
    if fi.ndim != 1 or fi.shape[0] == 0:
        raise ValueError(f"{source}: face indices must have shape [N], got {list(fi.shape)}")
    n = fi.shape[0]
    if b.dtype.kind != "f" or b.shape != (n, 3):
        raise ValueError(
            f"{source}: barycentric coordinates must be float [{n}, 3], got {b.dtype} "
            f"{list(b.shape)}"
        )
    if mi.shape != (n,):
        raise ValueError(f"{source}: MediaPipe indices must have shape [{n}], got {list(mi.shape)}")
    if fi.dtype.kind not in "iu" or mi.dtype.kind not in "iu":
        raise ValueError(f"{source}: face and MediaPipe indices must be integers")
    if fi.min() < 0 or (n_faces is not None and fi.max() >= n_faces):
        raise ValueError(
            f"{source}: face indices out of range [0, {n_faces}): min {fi.min()}, max {fi.max()}"
        )
    if not np.all(np.isfinite(b)) or b.min() < -0.01 or np.abs(b.sum(1) - 1).max() > 1e-3:
        raise ValueError(f"{source}: barycentric coordinates must be >= 0 and sum to 1 per row")
    if mi.min() < 0 or mi.max() >= N_MEDIAPIPE or len(np.unique(mi)) != n:
        raise ValueError(
            f"{source}: MediaPipe indices must be distinct and in [0, {N_MEDIAPIPE}), got "
            f"min {mi.min()}, max {mi.max()}, {len(np.unique(mi))} distinct of {n}"
        )


def _indices(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{path}: {key} must hold integers, got dtype {a.dtype}")
    return a.astype(np.int64)
