"""Loading and saving FLAME models: official pickles, npz, safetensors.

Formats read by :func:`load_model`:

- ``"bundled"``: the project's own stand-in head (see ``flame.standin``).
- ``.pkl``: the official ``generic_model.pkl`` (FLAME 2017/2020/2023; Python 2
  pickle with chumpy arrays and a scipy sparse ``J_regressor``), read with a
  restricted unpickler: neither chumpy nor trust in the file is needed.
- ``.npz``: either our layout (see :meth:`FlameModel.to_arrays`) or the
  official key names (``v_template``, ``f``, ``shapedirs``, ``posedirs``,
  ``J_regressor``, ``kintree_table``, ``weights``); never unpickled.
- ``.safetensors``: our layout, written by :func:`save_model` /
  ``python -m flame.convert``.

UV layouts (``uv=``): FLAME's ``FLAME_texture.npz`` (``vt``, ``ft``) or the
template ``.obj``, read by :func:`flame.uv_files.read_uv_layout` (``v`` flipped
to :mod:`flame.uv`'s convention).

Landmark embeddings: DECA's ``landmark_embedding.npy`` (a pickled dict,
read with the same restricted unpickler) or a safetensors/npz file with the
same key names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .mediapipe_embedding import load_mediapipe_embedding
from .model import FlameModel
from .safe_pickle import load_npy, load_pickle
from .standin import bundled_model
from .storage import read_npz, read_safetensors
from .uv_files import read_uv_layout

#: Shape components of the official FLAME shapedirs (the rest are expression).
FLAME_N_SHAPE = 300

_LMK_KEYS = (
    "static_lmk_faces_idx",
    "static_lmk_bary_coords",
    "dynamic_lmk_faces_idx",
    "dynamic_lmk_bary_coords",
    "full_lmk_faces_idx",
    "full_lmk_bary_coords",
)


def load_model(
    path: str | Path = "bundled",
    landmarks: str | Path | tuple[str | Path, str | Path] | None = None,
    eyelids: tuple[str | Path, str | Path] | None = None,
    n_shape_components: int = FLAME_N_SHAPE,
    eyelid_space: str = "posed",
    uv: str | Path | None = None,
    mediapipe: str | Path | None = None,
) -> FlameModel:
    """Load a FLAME-format model and validate it.

    Args:
        path: ``"bundled"`` (the stand-in head) or a ``.pkl``, ``.npz`` or
            ``.safetensors`` file.
        landmarks: optional landmark embedding: DECA's ``landmark_embedding.npy``,
            a ``.safetensors`` / ``.npz`` with the same keys, or the pair
            ``(flame_static_embedding.pkl, flame_dynamic_embedding.npy)``; see
            :func:`load_landmark_embedding`. Replaces any embedding in ``path``.
        eyelids: optional ``(l_eyelid.npy, r_eyelid.npy)`` pair of [V, 3]
            eyelid blendshapes (SMIRK's assets).
        eyelid_space: where those eyelids are added, stored as
            ``metadata["eyelid_space"]``: ``"posed"`` (after skinning, as SMIRK
            does; the default) or ``"rest"`` (before skinning). Only used with
            ``eyelids``.
        n_shape_components: for official files, how many of ``shapedirs``'
            components are identity (300 for FLAME); the rest are expression.
        uv: optional UV layout file, FLAME's ``FLAME_texture.npz`` or the template
            ``.obj`` (see :func:`flame.uv_files.read_uv_layout`); replaces any
            layout in ``path`` (the stand-in head has its own).
        mediapipe: optional MediaPipe embedding, SMIRK's
            ``mediapipe_landmark_embedding.npz`` (:mod:`flame.mediapipe_embedding`);
            replaces any in ``path`` (the stand-in head has its own).

    Returns:
        A validated :class:`FlameModel` (float32 arrays for files, as stored
        for safetensors).
    """
    if isinstance(path, str) and path == "bundled":
        model = bundled_model()
    else:
        model = _read_model_file(Path(path), n_shape_components)
    if landmarks is not None:
        for key, value in load_landmark_embedding(landmarks).items():
            setattr(model, key, value)
        model.metadata["contour_yaw_sign"] = landmark_yaw_sign(landmarks)
    if eyelids is not None:
        model.eyelids = _read_eyelids(eyelids, model.v_template.dtype)
        model.metadata["eyelid_space"] = eyelid_space
    if uv is not None:
        model.uvs, model.uv_faces = read_uv_layout(uv, model.faces)
    if mediapipe is not None:
        for key, value in load_mediapipe_embedding(mediapipe).items():
            setattr(model, key, value)
    return model.validate()


def _read_model_file(path: Path, n_shape_components: int) -> FlameModel:
    """An unvalidated model from a ``.pkl``, ``.npz`` or ``.safetensors`` file."""
    if not path.is_file():
        raise FileNotFoundError(f"FLAME model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".pkl":
        raw = load_pickle(path)
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a pickled dict of arrays, got {type(raw)}")
        return model_from_official(raw, n_shape_components, source=str(path))
    if suffix == ".npz":
        raw = read_npz(path)
        if "kintree_table" in raw:
            return model_from_official(raw, n_shape_components, source=str(path))
        return FlameModel.from_arrays(raw, {"source": str(path)})
    if suffix == ".safetensors":
        arrays, meta = read_safetensors(path)
        return FlameModel.from_arrays(arrays, meta)
    raise ValueError(
        f"unknown FLAME model format {path.suffix!r} for {path}: "
        "expected .pkl, .npz, .safetensors or 'bundled'"
    )


def _read_eyelids(paths: tuple[str | Path, str | Path], dtype: np.dtype) -> np.ndarray:
    """SMIRK's (left, right) [V, 3] eyelid blendshapes as one [V, 3, 2] array."""
    left, right = (np.asarray(load_npy(p), dtype=np.float64) for p in paths)
    return np.stack([left, right], axis=-1).astype(dtype)


def model_from_official(
    raw: dict[str, Any], n_shape_components: int = FLAME_N_SHAPE, source: str = ""
) -> FlameModel:
    """A :class:`FlameModel` from the official key names (``generic_model.pkl``)."""
    need = ("v_template", "f", "shapedirs", "posedirs", "J_regressor", "kintree_table", "weights")
    missing = [k for k in need if k not in raw]
    if missing:
        raise ValueError(f"{source}: not a FLAME model file, it lacks {missing}")
    arr = {k: np.asarray(raw[k]) for k in need}
    shapedirs = arr["shapedirs"].astype(np.float32)
    if shapedirs.ndim != 3:
        raise ValueError(f"{source}: shapedirs must be [V,3,K], got {list(shapedirs.shape)}")
    n_s = min(int(n_shape_components), shapedirs.shape[2])
    parents = _parents_from_kintree(arr["kintree_table"], source)
    posedirs = arr["posedirs"].astype(np.float32)
    meta = {"source": source, "format": "FLAME official"}
    model = FlameModel(
        v_template=arr["v_template"].astype(np.float32),
        faces=arr["f"].astype(np.int64),
        shapedirs=np.ascontiguousarray(shapedirs[:, :, :n_s]),
        exprdirs=np.ascontiguousarray(shapedirs[:, :, n_s:]),
        posedirs=posedirs,
        J_regressor=arr["J_regressor"].astype(np.float32),
        parents=parents,
        lbs_weights=arr["weights"].astype(np.float32),
        metadata=meta,
    )
    present = [k for k in _LMK_KEYS if k in raw]
    if present:
        for key, value in _embedding_from_dict(raw, source).items():
            setattr(model, key, value)
    return model


def _parents_from_kintree(kintree_table: np.ndarray, source: str) -> np.ndarray:
    """Parent indices [J] from the official [2, J] kintree_table (parent ids, joint ids)."""
    kintree = kintree_table.astype(np.int64)
    if kintree.ndim != 2 or kintree.shape[0] != 2:
        raise ValueError(f"{source}: kintree_table must be [2,J], got {list(kintree.shape)}")
    ids = kintree[1].tolist()
    index = {j: i for i, j in enumerate(ids)}
    parents = np.array(
        [index.get(int(p), -1) if i > 0 else -1 for i, p in enumerate(kintree[0].tolist())],
        dtype=np.int64,
    )
    if ids != list(range(len(ids))):
        raise ValueError(f"{source}: kintree_table joint ids must be 0..J-1, got {ids}")
    return parents


def load_landmark_embedding(
    path: str | Path | tuple[str | Path, str | Path] | list[str | Path],
) -> dict[str, np.ndarray]:
    """The landmark embedding arrays, from any of:

    - DECA's ``landmark_embedding.npy`` (keys ``static_lmk_faces_idx``,
      ``static_lmk_bary_coords``, ``dynamic_lmk_faces_idx``,
      ``dynamic_lmk_bary_coords``, optionally ``full_lmk_*``);
    - our ``.safetensors`` / ``.npz`` with the same keys;
    - the FLAME_PyTorch / TF_FLAME pair ``(flame_static_embedding.pkl,
      flame_dynamic_embedding.npy)`` (keys ``lmk_face_idx``, ``lmk_b_coords``).
    """
    if isinstance(path, tuple | list):
        if len(path) == 1:
            return load_landmark_embedding(path[0])
        if len(path) != 2:
            raise ValueError(
                "landmark embedding: give one file (DECA .npy, .safetensors, .npz) or the pair "
                f"(flame_static_embedding.pkl, flame_dynamic_embedding.npy), got {len(path)} files"
            )
        return _pair_embedding(path[0], path[1])
    path = Path(path)
    return _embedding_from_dict(_read_embedding_file(path), str(path))


def _pair_embedding(static_path: str | Path, dynamic_path: str | Path) -> dict[str, np.ndarray]:
    """The FLAME_PyTorch pair (``lmk_face_idx``, ``lmk_b_coords`` in each file) in DECA's keys."""
    static, dynamic = (_read_embedding_file(Path(p)) for p in (static_path, dynamic_path))
    for raw, what, p in ((static, "static", static_path), (dynamic, "dynamic", dynamic_path)):
        if "lmk_face_idx" not in raw or "lmk_b_coords" not in raw:
            raise ValueError(f"{p}: a {what} embedding needs lmk_face_idx and lmk_b_coords")
    merged = {
        "static_lmk_faces_idx": static["lmk_face_idx"],
        "static_lmk_bary_coords": static["lmk_b_coords"],
        "dynamic_lmk_faces_idx": dynamic["lmk_face_idx"],
        "dynamic_lmk_bary_coords": dynamic["lmk_b_coords"],
    }
    return _embedding_from_dict(merged, f"{static_path} + {dynamic_path}")


def landmark_yaw_sign(path: str | Path | tuple | list) -> str:
    """The contour yaw sign that goes with a landmark embedding (see ``flame.FLAME``).

    "-1" for the FLAME_PyTorch / smplx pair (their code negates the yaw), the
    stored value for our safetensors files, else "1" (DECA's convention).
    """
    if isinstance(path, tuple | list):
        return "-1" if len(path) == 2 else landmark_yaw_sign(path[0])
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        return read_safetensors(path)[1].get("contour_yaw_sign", "1")
    return "1"


def _read_embedding_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"landmark embedding file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        raw = load_npy(path)
    elif suffix == ".pkl":
        raw = load_pickle(path)
    elif suffix == ".safetensors":
        raw, _ = read_safetensors(path)
    elif suffix == ".npz":
        raw = read_npz(path)
    else:
        raise ValueError(f"unknown landmark embedding format {path.suffix!r} for {path}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a dict of landmark arrays, got {type(raw)}")
    return raw


def _embedding_from_dict(raw: dict[str, Any], source: str) -> dict[str, np.ndarray]:
    need = _LMK_KEYS[:4]
    missing = [k for k in need if k not in raw]
    if missing:
        raise ValueError(f"{source}: landmark embedding lacks {missing}")
    out: dict[str, np.ndarray] = {}
    for key in _LMK_KEYS:
        if key not in raw:
            continue
        a = np.asarray(raw[key])
        if key.startswith("full_") and a.ndim >= 2 and a.shape[0] == 1:
            a = a[0]  # DECA stores the full embedding with a leading batch axis
        if key.endswith("faces_idx"):
            out[key] = a.astype(np.int64)
        else:
            out[key] = a.astype(np.float32)
    return out


def mode_names(model: FlameModel, kind: str) -> list[str]:
    """Names of the shape (``kind="shape"``) or expression modes, when the file has them."""
    text = model.metadata.get(f"{kind}_mode_names")
    return list(json.loads(text)) if text else []
