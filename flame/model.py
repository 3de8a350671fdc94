"""The arrays of a FLAME-format head model, in one typed container.

Conventions (DESIGN.md section 2): model frame x to the subject's left, y up,
z out of the face; metres. Joint order is FLAME's: 0 global (root), 1 neck,
2 jaw, 3 left eye, 4 right eye. Landmarks follow DECA's embedding: 51 static
landmarks (iBUG points 17..67) on fixed faces, and 17 jaw-contour landmarks
(iBUG 0..16) whose faces depend on the head yaw through 79 bins.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

#: Number of yaw bins of the dynamic jaw-contour embedding (DECA's format:
#: bins 0..39 for yaw 0..39 degrees, bins 40..78 for yaw -1..-39 degrees).
N_YAW_BINS = 79
#: Landmarks of the dynamic contour and of the static part.
N_CONTOUR = 17
N_STATIC = 51


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
    def has_eyelids(self) -> bool:
        return self.eyelids is not None

    # ------------------------------------------------------------- validation
    def validate(self) -> FlameModel:
        """Check every array's shape, dtype, finiteness and index range.

        Raises ``ValueError`` (or ``TypeError`` for a wrong kind of array)
        naming the offending field and what was expected. Returns ``self``.
        """
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("masks", "metadata") or value is None:
                continue
            if not isinstance(value, np.ndarray):
                raise TypeError(f"FlameModel.{f.name} must be a numpy array, got {type(value)}")

        v = _float(self.v_template, "v_template", 2)
        if v.shape[1] != 3 or v.shape[0] < 3:
            raise ValueError(f"v_template must have shape [V,3] with V >= 3, got {list(v.shape)}")
        n_v = v.shape[0]

        faces = _int(self.faces, "faces", 2)
        if faces.shape[1] != 3 or faces.shape[0] < 1:
            raise ValueError(f"faces must have shape [F,3], got {list(faces.shape)}")
        _index_range(faces, n_v, "faces", "vertex")

        for name in ("shapedirs", "exprdirs", "posedirs"):
            a = _float(getattr(self, name), name, 3)
            if a.shape[:2] != (n_v, 3):
                raise ValueError(f"{name} must have shape [{n_v},3,K], got {list(a.shape)}")

        parents = _int(self.parents, "parents", 1)
        n_j = parents.shape[0]
        if n_j < 1 or parents[0] != -1:
            raise ValueError(f"parents must start with -1 (the root), got {parents.tolist()}")
        for j in range(1, n_j):
            if not 0 <= parents[j] < j:
                raise ValueError(
                    "parents must list every joint after its parent "
                    f"(0 <= parents[j] < j), got {parents.tolist()}"
                )
        if self.posedirs.shape[2] != 9 * (n_j - 1):
            raise ValueError(
                f"posedirs must have 9 * (J - 1) = {9 * (n_j - 1)} components for {n_j} joints, "
                f"got {self.posedirs.shape[2]}"
            )
        jr = _float(self.J_regressor, "J_regressor", 2)
        if jr.shape != (n_j, n_v):
            raise ValueError(f"J_regressor must have shape [{n_j},{n_v}], got {list(jr.shape)}")
        w = _float(self.lbs_weights, "lbs_weights", 2)
        if w.shape != (n_v, n_j):
            raise ValueError(f"lbs_weights must have shape [{n_v},{n_j}], got {list(w.shape)}")

        lmk = (
            self.static_lmk_faces_idx,
            self.static_lmk_bary_coords,
            self.dynamic_lmk_faces_idx,
            self.dynamic_lmk_bary_coords,
        )
        if any(a is not None for a in lmk):
            if any(a is None for a in lmk):
                raise ValueError(
                    "the landmark embedding needs all of static_lmk_faces_idx, "
                    "static_lmk_bary_coords, dynamic_lmk_faces_idx and dynamic_lmk_bary_coords"
                )
            self._validate_embedding(
                "static_lmk", self.static_lmk_faces_idx, self.static_lmk_bary_coords, (N_STATIC,)
            )
            self._validate_embedding(
                "dynamic_lmk",
                self.dynamic_lmk_faces_idx,
                self.dynamic_lmk_bary_coords,
                (N_YAW_BINS, N_CONTOUR),
            )
        if (self.full_lmk_faces_idx is None) != (self.full_lmk_bary_coords is None):
            raise ValueError("full_lmk_faces_idx and full_lmk_bary_coords come together")
        if self.full_lmk_faces_idx is not None:
            self._validate_embedding(
                "full_lmk", self.full_lmk_faces_idx, self.full_lmk_bary_coords, (68,)
            )

        if self.eyelids is not None:
            e = _float(self.eyelids, "eyelids", 3)
            if e.shape != (n_v, 3, 2):
                raise ValueError(f"eyelids must have shape [{n_v},3,2], got {list(e.shape)}")

        for name, idx in self.masks.items():
            if not isinstance(idx, np.ndarray):
                raise TypeError(f"mask {name!r} must be a numpy array of vertex indices")
            _index_range(_int(idx, f"mask {name!r}", 1), n_v, f"mask {name!r}", "vertex")
        for k, val in self.metadata.items():
            if not isinstance(k, str) or not isinstance(val, str):
                raise TypeError("metadata must map strings to strings")
        sign = self.metadata.get("contour_yaw_sign", "1")
        if sign not in ("1", "-1"):
            raise ValueError(f"metadata contour_yaw_sign must be '1' or '-1', got {sign!r}")
        return self

    def _validate_embedding(
        self, name: str, faces_idx: np.ndarray, bary: np.ndarray, lead: tuple[int, ...]
    ) -> None:
        fi = _int(faces_idx, f"{name}_faces_idx", len(lead))
        if fi.shape != lead:
            raise ValueError(f"{name}_faces_idx must have shape {list(lead)}, got {list(fi.shape)}")
        _index_range(fi, self.n_faces, f"{name}_faces_idx", "face")
        b = _float(bary, f"{name}_bary_coords", len(lead) + 1)
        if b.shape != (*lead, 3):
            raise ValueError(
                f"{name}_bary_coords must have shape {[*lead, 3]}, got {list(b.shape)}"
            )
        if np.abs(b.sum(-1) - 1.0).max() > 1e-3:
            raise ValueError(f"{name}_bary_coords must sum to 1 over the last axis")

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
        missing = [
            n
            for n in (
                "v_template",
                "faces",
                "shapedirs",
                "exprdirs",
                "posedirs",
                "J_regressor",
                "parents",
                "lbs_weights",
            )
            if n not in kwargs
        ]
        if missing:
            raise ValueError(f"FLAME model file lacks the arrays {missing}")
        for k in (
            "faces",
            "parents",
            "static_lmk_faces_idx",
            "dynamic_lmk_faces_idx",
            "full_lmk_faces_idx",
        ):
            if k in kwargs:
                kwargs[k] = _as_index(kwargs[k], k)
        return cls(**kwargs, masks=masks, metadata=dict(metadata or {}))


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
