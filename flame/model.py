"""The arrays of a FLAME-format head model, in one typed container.

Conventions (docs/design.md section 2): model frame x to the subject's left, y up,
z out of the face; metres. Joint order is FLAME's: 0 global (root), 1 neck,
2 jaw, 3 left eye, 4 right eye. Landmarks follow DECA's embedding: 51 static
landmarks (iBUG points 17..67) on fixed faces, and 17 jaw-contour landmarks
(iBUG 0..16) whose faces depend on the head yaw through 79 bins.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from .mediapipe_embedding import check_mediapipe_embedding
from .uv import check_uv_layout

#: Number of yaw bins of the dynamic jaw-contour embedding (DECA's format:
#: bins 0..39 for yaw 0..39 degrees, bins 40..78 for yaw -1..-39 degrees).
N_YAW_BINS = 79
#: Landmarks of the dynamic contour and of the static part.
N_CONTOUR = 17
N_STATIC = 51

#: Arrays every model file holds, and those holding indices (stored as int64).
_REQUIRED = (
    "v_template",
    "faces",
    "shapedirs",
    "exprdirs",
    "posedirs",
    "J_regressor",
    "parents",
    "lbs_weights",
)
_INDEX_ARRAYS = (
    "faces",
    "parents",
    "static_lmk_faces_idx",
    "dynamic_lmk_faces_idx",
    "full_lmk_faces_idx",
    "uv_faces",
    "mp_lmk_faces_idx",
    "mp_landmark_indices",
)


#: Where eyelid blendshapes are added (``metadata["eyelid_space"]``): ``"rest"`` in the
#: rest pose before skinning (they turn with the head), ``"posed"`` after skinning in the
#: posed model frame (SMIRK's FLAME: ``vertices + eyelid_dirs * eyelids`` after LBS).
EYELID_SPACES = ("rest", "posed")


@dataclass
class FlameModel:
    """A FLAME-format head model (plain numpy arrays).

    Attributes:
        v_template: [V, 3] float, the template mesh in metres.
        faces: [F, 3] int64, triangle vertex indices, counter-clockwise seen
            from outside.
        shapedirs: [V, 3, Ks] float, identity blendshapes (one unit = one
            standard deviation for PCA models).
        exprdirs: [V, 3, Ke] float, expression blendshapes.
        posedirs: [V, 3, 9 * (J - 1)] float, pose correctives on the features
            (R_j - I) of the non-root joints, flattened row-major, joint 1
            first (FLAME's own layout).
        J_regressor: [J, V] float, joint locations as a linear function of the
            shaped vertices.
        parents: [J] int64, parent of each joint; parents[0] = -1 and
            0 <= parents[j] < j for the others.
        lbs_weights: [V, J] float, skinning weights (rows sum to 1).
        static_lmk_faces_idx: [51] int64 or None, faces of the static landmarks.
        static_lmk_bary_coords: [51, 3] float or None, their barycentric
            coordinates.
        dynamic_lmk_faces_idx: [79, 17] int64 or None, jaw-contour faces per
            yaw bin.
        dynamic_lmk_bary_coords: [79, 17, 3] float or None.
        full_lmk_faces_idx: [68] int64 or None, optional all-static 68-point
            embedding (DECA's ``full_lmk_*``).
        full_lmk_bary_coords: [68, 3] float or None.
        eyelids: [V, 3, 2] float or None, optional eyelid blendshapes
            (left, right), one unit = eye closed (SMIRK's convention).
        uvs: [T, 2] float or None, the texture coordinates of a UV layout in
            :mod:`flame.uv`'s convention (``v = 0`` at the image's top row).
        uv_faces: [F, 3] int64 or None, the UV triangle of each face (corner for
            corner; seams split vertices). ``uvs`` and ``uv_faces`` come together.
        mp_lmk_faces_idx: [N] int64 or None, the faces of an embedding of N of
            MediaPipe's points (SMIRK's 105, :mod:`flame.mediapipe_embedding`).
        mp_lmk_bary_coords: [N, 3] float or None, their barycentric coordinates.
        mp_landmark_indices: [N] int64 or None, which MediaPipe point (0..477) each is.
        masks: vertex index sets of named regions (e.g. "nose", "lips").
        metadata: free-form strings (name, licence, mode names) and
            ``contour_yaw_sign`` ("1" or "-1", default "1"): the sign applied
            to the head yaw before DECA's bin rule (see ``flame.FLAME``).
    """

    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    posedirs: np.ndarray
    J_regressor: np.ndarray
    parents: np.ndarray
    lbs_weights: np.ndarray
    static_lmk_faces_idx: np.ndarray | None = None
    static_lmk_bary_coords: np.ndarray | None = None
    dynamic_lmk_faces_idx: np.ndarray | None = None
    dynamic_lmk_bary_coords: np.ndarray | None = None
    full_lmk_faces_idx: np.ndarray | None = None
    full_lmk_bary_coords: np.ndarray | None = None
    eyelids: np.ndarray | None = None
    uvs: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    mp_lmk_faces_idx: np.ndarray | None = None
    mp_lmk_bary_coords: np.ndarray | None = None
    mp_landmark_indices: np.ndarray | None = None
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)

    # ------------------------------------------------------------------ sizes
    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def n_joints(self) -> int:
        return int(self.parents.shape[0])

    @property
    def n_shape(self) -> int:
        return int(self.shapedirs.shape[2])

    @property
    def n_expr(self) -> int:
        return int(self.exprdirs.shape[2])

    @property
    def has_landmarks(self) -> bool:
        return self.static_lmk_faces_idx is not None

    @property
    def has_mediapipe(self) -> bool:
        return self.mp_lmk_faces_idx is not None

    @property
    def has_eyelids(self) -> bool:
        return self.eyelids is not None

    @property
    def has_uvs(self) -> bool:
        return self.uvs is not None

    # ------------------------------------------------------------- validation
    def validate(self) -> FlameModel:
        """Check every array's shape, dtype, finiteness and index range.

        Raises ``ValueError`` (or ``TypeError`` for a wrong kind of array)
        naming the offending field and what was expected. Returns ``self``.
        """
        _check_array_types(self)
        n_v = _check_mesh(self.v_template, self.faces)
        _check_blendshapes(self, n_v)
        _check_skeleton(self, n_v)
        _check_landmarks(self)
        _check_eyelids(self.eyelids, n_v)
        _check_uvs(self)
        _check_mediapipe(self)
        _check_masks(self.masks, n_v)
        _check_metadata(self.metadata)
        return self

    # ------------------------------------------------------------ conversion
    def astype(self, dtype: np.dtype | type) -> FlameModel:
        """A copy with every floating array cast to ``dtype``."""
        out = dataclasses.replace(self, masks=dict(self.masks), metadata=dict(self.metadata))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                setattr(out, f.name, value.astype(dtype))
        return out

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (our safetensors / npz layout); masks as ``mask.<name>``."""
        out: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                out[f.name] = np.ascontiguousarray(value)
        for name, idx in self.masks.items():
            out[f"mask.{name}"] = np.ascontiguousarray(idx.astype(np.int64))
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], metadata: dict[str, str] | None = None):
        """Inverse of :meth:`to_arrays`. Unknown keys raise ``ValueError``."""
        names = {f.name for f in dataclasses.fields(cls)} - {"masks", "metadata"}
        kwargs: dict[str, object] = {}
        masks: dict[str, np.ndarray] = {}
        for key, value in arrays.items():
            if key.startswith("mask."):
                masks[key[5:]] = np.asarray(value).astype(np.int64)
            elif key in names:
                kwargs[key] = np.asarray(value)
            else:
                raise ValueError(f"unknown array {key!r} in a FLAME model file")
        missing = [n for n in _REQUIRED if n not in kwargs]
        if missing:
            raise ValueError(f"FLAME model file lacks the arrays {missing}")
        for k in _INDEX_ARRAYS:
            if k in kwargs:
                kwargs[k] = _as_index(kwargs[k], k)
        return cls(**kwargs, masks=masks, metadata=dict(metadata or {}))


def _check_array_types(model: FlameModel) -> None:
    for f in dataclasses.fields(model):
        value = getattr(model, f.name)
        if f.name in ("masks", "metadata") or value is None:
            continue
        if not isinstance(value, np.ndarray):
            raise TypeError(f"FlameModel.{f.name} must be a numpy array, got {type(value)}")


def _check_mesh(v_template: np.ndarray, faces: np.ndarray) -> int:
    """Template [V, 3] (V >= 3) and faces [F, 3] (F >= 1) on it; returns V."""
    v = _float(v_template, "v_template", 2)
    if v.shape[1] != 3 or v.shape[0] < 3:
        raise ValueError(f"v_template must have shape [V,3] with V >= 3, got {list(v.shape)}")
    n_v = v.shape[0]
    faces = _int(faces, "faces", 2)
    if faces.shape[1] != 3 or faces.shape[0] < 1:
        raise ValueError(f"faces must have shape [F,3], got {list(faces.shape)}")
    _index_range(faces, n_v, "faces", "vertex")
    return n_v


def _check_blendshapes(model: FlameModel, n_v: int) -> None:
    for name in ("shapedirs", "exprdirs", "posedirs"):
        a = _float(getattr(model, name), name, 3)
        if a.shape[:2] != (n_v, 3):
            raise ValueError(f"{name} must have shape [{n_v},3,K], got {list(a.shape)}")


def _check_skeleton(model: FlameModel, n_v: int) -> None:
    """Parents in topological order, and posedirs, J_regressor, lbs_weights sized to them."""
    n_j = _check_parents(model.parents)
    if model.posedirs.shape[2] != 9 * (n_j - 1):
        raise ValueError(
            f"posedirs must have 9 * (J - 1) = {9 * (n_j - 1)} components for {n_j} joints, "
            f"got {model.posedirs.shape[2]}"
        )
    jr = _float(model.J_regressor, "J_regressor", 2)
    if jr.shape != (n_j, n_v):
        raise ValueError(f"J_regressor must have shape [{n_j},{n_v}], got {list(jr.shape)}")
    w = _float(model.lbs_weights, "lbs_weights", 2)
    if w.shape != (n_v, n_j):
        raise ValueError(f"lbs_weights must have shape [{n_v},{n_j}], got {list(w.shape)}")


def _check_parents(parents: np.ndarray) -> int:
    """parents[0] = -1 and 0 <= parents[j] < j; returns the joint count."""
    parents = _int(parents, "parents", 1)
    n_j = parents.shape[0]
    if n_j < 1 or parents[0] != -1:
        raise ValueError(f"parents must start with -1 (the root), got {parents.tolist()}")
    for j in range(1, n_j):
        if not 0 <= parents[j] < j:
            raise ValueError(
                "parents must list every joint after its parent "
                f"(0 <= parents[j] < j), got {parents.tolist()}"
            )
    return n_j


def _check_landmarks(model: FlameModel) -> None:
    """The static + dynamic embedding (all four arrays or none), and the optional full one."""
    lmk = (
        model.static_lmk_faces_idx,
        model.static_lmk_bary_coords,
        model.dynamic_lmk_faces_idx,
        model.dynamic_lmk_bary_coords,
    )
    if any(a is not None for a in lmk):
        if any(a is None for a in lmk):
            raise ValueError(
                "the landmark embedding needs all of static_lmk_faces_idx, "
                "static_lmk_bary_coords, dynamic_lmk_faces_idx and dynamic_lmk_bary_coords"
            )
        _check_embedding("static_lmk", lmk[0], lmk[1], (N_STATIC,), model.n_faces)
        _check_embedding("dynamic_lmk", lmk[2], lmk[3], (N_YAW_BINS, N_CONTOUR), model.n_faces)
    if (model.full_lmk_faces_idx is None) != (model.full_lmk_bary_coords is None):
        raise ValueError("full_lmk_faces_idx and full_lmk_bary_coords come together")
    if model.full_lmk_faces_idx is not None:
        _check_embedding(
            "full_lmk", model.full_lmk_faces_idx, model.full_lmk_bary_coords, (68,), model.n_faces
        )


def _check_embedding(
    name: str, faces_idx: np.ndarray, bary: np.ndarray, lead: tuple[int, ...], n_faces: int
) -> None:
    """Faces ``lead`` in [0, n_faces) and barycentric coordinates ``[*lead, 3]`` summing to 1."""
    fi = _int(faces_idx, f"{name}_faces_idx", len(lead))
    if fi.shape != lead:
        raise ValueError(f"{name}_faces_idx must have shape {list(lead)}, got {list(fi.shape)}")
    _index_range(fi, n_faces, f"{name}_faces_idx", "face")
    b = _float(bary, f"{name}_bary_coords", len(lead) + 1)
    if b.shape != (*lead, 3):
        raise ValueError(f"{name}_bary_coords must have shape {[*lead, 3]}, got {list(b.shape)}")
    if np.abs(b.sum(-1) - 1.0).max() > 1e-3:
        raise ValueError(f"{name}_bary_coords must sum to 1 over the last axis")


def _check_eyelids(eyelids: np.ndarray | None, n_v: int) -> None:
    if eyelids is not None:
        e = _float(eyelids, "eyelids", 3)
        if e.shape != (n_v, 3, 2):
            raise ValueError(f"eyelids must have shape [{n_v},3,2], got {list(e.shape)}")


def _check_uvs(model: FlameModel) -> None:
    if (model.uvs is None) != (model.uv_faces is None):
        raise ValueError("uvs and uv_faces come together (a UV layout needs both)")
    if model.uvs is not None:
        check_uv_layout(model.uvs, model.uv_faces, model.n_faces, "the model's UV layout")


def _check_mediapipe(model: FlameModel) -> None:
    arrays = (model.mp_lmk_faces_idx, model.mp_lmk_bary_coords, model.mp_landmark_indices)
    if all(a is None for a in arrays):
        return
    if any(a is None for a in arrays):
        raise ValueError(
            "the MediaPipe embedding needs all of mp_lmk_faces_idx, mp_lmk_bary_coords "
            "and mp_landmark_indices"
        )
    check_mediapipe_embedding(
        *arrays, n_faces=model.n_faces, source="the model's MediaPipe embedding"
    )


def _check_masks(masks: dict[str, np.ndarray], n_v: int) -> None:
    for name, idx in masks.items():
        if not isinstance(idx, np.ndarray):
            raise TypeError(f"mask {name!r} must be a numpy array of vertex indices")
        _index_range(_int(idx, f"mask {name!r}", 1), n_v, f"mask {name!r}", "vertex")


def _check_metadata(metadata: dict[str, str]) -> None:
    for k, val in metadata.items():
        if not isinstance(k, str) or not isinstance(val, str):
            raise TypeError("metadata must map strings to strings")
    sign = metadata.get("contour_yaw_sign", "1")
    if sign not in ("1", "-1"):
        raise ValueError(f"metadata contour_yaw_sign must be '1' or '-1', got {sign!r}")
    space = metadata.get("eyelid_space", "rest")
    if space not in EYELID_SPACES:
        raise ValueError(f"metadata eyelid_space must be one of {EYELID_SPACES}, got {space!r}")


def _as_index(a: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold integer indices")
    elif a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def _float(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    if a.dtype.kind != "f":
        raise TypeError(f"{name} must be a floating-point array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {list(a.shape)}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf values")
    return a


def _int(a: np.ndarray, name: str, ndim: int) -> np.ndarray:
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {list(a.shape)}")
    return a


def _index_range(a: np.ndarray, n: int, name: str, what: str) -> None:
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(
            f"{name} holds {what} indices out of range [0, {n}): min {a.min()}, max {a.max()}"
        )
