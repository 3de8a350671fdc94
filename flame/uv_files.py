"""Reading a real FLAME's UV layout: ``FLAME_texture.npz`` or the template ``.obj``.

Both files put ``v = 0`` at the texture image's bottom row; :mod:`flame.uv` (and
``minirast.texture``) put it at the top row, so both readers flip (``v -> 1 - v``).
Nothing in the files is executed: ``.npz`` is read with ``allow_pickle=False``
(only its ``vt`` and ``ft`` arrays are loaded, not the texture basis beside them)
and ``.obj`` is parsed as text.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .uv import check_uv_layout


class ObjMesh(NamedTuple):
    """A triangle mesh read from a Wavefront OBJ file.

    vertices: [V, 3] float64 (the file's units).
    faces: [F, 3] int64, 0-based vertex indices in the file's order.
    uvs: [T, 2] float64 in :mod:`flame.uv`'s convention (``v`` flipped from the
        file's), or None when the file has no ``vt`` lines.
    uv_faces: [F, 3] int64, 0-based UV indices of each face's corners, or None
        when the faces give none.
    """

    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray | None
    uv_faces: np.ndarray | None


def read_uv_layout(
    path: str | os.PathLike, faces: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The UV layout (``uvs`` float32 [T, 2], ``uv_faces`` int64 [F, 3]) in
    :mod:`flame.uv`'s convention from FLAME's ``FLAME_texture.npz`` (arrays ``vt``
    [T, 2] and ``ft`` [F, 3]; others such as ``mean`` and ``tex_dir`` are ignored)
    or a template ``.obj`` (``vt`` lines and ``f v/vt`` faces).

    ``faces`` ([F, 3], the model's faces), when given, must match: the layout needs
    one UV triangle per face, and an OBJ's own faces must be the model's, in the
    same order (else its UV triangles belong to other faces). Raises
    ``FileNotFoundError``, ``ValueError`` or ``TypeError`` saying what was wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"UV layout file not found: {path}")
    suffix = path.suffix.lower()
    n_faces = None if faces is None else int(np.asarray(faces).shape[0])
    if suffix == ".npz":
        uvs, uv_faces = _read_npz_layout(path)
    elif suffix == ".obj":
        mesh = read_obj(path)
        if mesh.uv_faces is None:
            raise ValueError(f"{path}: the OBJ has no texture coordinates (f v/vt faces)")
        if faces is not None:
            _check_same_faces(mesh.faces, np.asarray(faces), path)
        uvs, uv_faces = mesh.uvs, mesh.uv_faces
    else:
        raise ValueError(
            f"unknown UV layout format {path.suffix!r} for {path}: "
            "expected FLAME_texture.npz (vt, ft) or a template .obj"
        )
    uvs, uv_faces = check_uv_layout(uvs, uv_faces, n_faces, str(path))
    return uvs.astype(np.float32), uv_faces


def _read_npz_layout(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``vt`` (v flipped) and ``ft`` of a ``FLAME_texture.npz``."""
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("vt", "ft") if k not in z.files]
        if missing:
            raise ValueError(
                f"{path}: a FLAME texture file needs the arrays vt [T,2] and ft [F,3]; "
                f"it lacks {missing} (it holds {sorted(z.files)})"
            )
        try:
            vt, ft = z["vt"], z["ft"]
        except ValueError as err:  # an object array would need pickle
            raise ValueError(f"{path}: vt and ft must be plain numeric arrays ({err})") from None
    if vt.dtype.kind not in "fiu":
        raise TypeError(f"{path}: vt must be a numeric array, got dtype {vt.dtype}")
    if vt.ndim != 2 or vt.shape[1] != 2:
        raise ValueError(f"{path}: vt must have shape [T,2], got {list(vt.shape)}")
    return flip_v(vt.astype(np.float64)), _index_array(ft, f"{path}: ft")


def _index_array(a: np.ndarray, name: str) -> np.ndarray:
    """Integer indices (floats holding whole numbers accepted) as int64."""
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
            raise ValueError(f"{name} must hold integer indices")
    elif a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    return a.astype(np.int64)


def flip_v(uvs: np.ndarray) -> np.ndarray:
    """``(u, v) -> (u, 1 - v)``: between the OBJ / FLAME convention (``v = 0`` at the
    image's bottom row) and :mod:`flame.uv`'s (``v = 0`` at the top row). [T, 2]."""
    out = np.array(uvs, dtype=np.result_type(uvs, np.float32), copy=True)
    out[:, 1] = 1.0 - out[:, 1]
    return out


def _check_same_faces(obj_faces: np.ndarray, faces: np.ndarray, path: Path) -> None:
    if obj_faces.shape != faces.shape:
        raise ValueError(
            f"{path}: the OBJ has {obj_faces.shape[0]} faces, the model {faces.shape[0]}; "
            "give the template of this model"
        )
    if not np.array_equal(obj_faces, faces):
        bad = int(np.nonzero((obj_faces != faces).any(1))[0][0])
        raise ValueError(
            f"{path}: the OBJ's faces are not the model's, in the model's order "
            f"(face {bad}: {obj_faces[bad].tolist()} in the OBJ, {faces[bad].tolist()} "
            "in the model); give the template of this model"
        )


def read_obj(path: str | os.PathLike) -> ObjMesh:
    """A triangle mesh from a Wavefront OBJ: ``v``, ``vt`` and ``f`` lines (``v``,
    ``v/vt``, ``v/vt/vn`` or ``v//vn`` corners, 1-based or negative relative
    indices); other statements (``vn``, ``o``, ``g``, ``s``, ``mtllib``, ``usemtl``)
    are skipped. Texture coordinates come back with ``v`` flipped (see
    :func:`flip_v`). Raises ``ValueError`` naming the line for a malformed
    statement, a face that is not a triangle, an index out of range, or faces of
    which only some give texture coordinates."""
    path = Path(path)
    verts: list[list[float]] = []
    tex: list[list[float]] = []
    faces: list[list[int]] = []
    tfaces: list[list[int] | None] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            words = line.split("#", 1)[0].split()
            if not words:
                continue
            where = f"{path}:{number}"
            if words[0] == "v":
                verts.append(_numbers(words[1:4], 3, where))
            elif words[0] == "vt":
                tex.append(_numbers(words[1:3], 2, where))
            elif words[0] == "f":
                corners = words[1:]
                if len(corners) != 3:
                    raise ValueError(
                        f"{where}: only triangles are read, got {len(corners)} corners"
                    )
                vs, ts = zip(*(_corner(c, len(verts), len(tex), where) for c in corners))
                faces.append(list(vs))
                tfaces.append(None if None in ts else list(ts))
    if not faces:
        raise ValueError(f"{path}: no faces (f lines) in the OBJ")
    with_uv = sum(t is not None for t in tfaces)
    if 0 < with_uv < len(tfaces):
        raise ValueError(
            f"{path}: {len(tfaces) - with_uv} of {len(tfaces)} faces lack v/vt indices"
        )
    vertices = np.asarray(verts, dtype=np.float64).reshape(-1, 3)
    uvs = flip_v(np.asarray(tex, dtype=np.float64).reshape(-1, 2)) if with_uv else None
    uv_faces = np.asarray(tfaces, dtype=np.int64) if with_uv else None
    return ObjMesh(vertices, np.asarray(faces, dtype=np.int64), uvs, uv_faces)


def _numbers(words: list[str], n: int, where: str) -> list[float]:
    try:
        values = [float(w) for w in words]
    except ValueError:
        values = []
    if len(values) != n or not all(np.isfinite(values)):
        raise ValueError(f"{where}: expected {n} finite numbers, got {' '.join(words)!r}")
    return values


def _corner(word: str, n_v: int, n_t: int, where: str) -> tuple[int, int | None]:
    """0-based (vertex, texture or None) of a face corner ``v[/vt[/vn]]``."""
    parts = word.split("/")
    v = _index(parts[0], n_v, "vertex", where)
    t = _index(parts[1], n_t, "texture", where) if len(parts) > 1 and parts[1] else None
    return v, t


def _index(word: str, n: int, what: str, where: str) -> int:
    """An OBJ index (1-based, or negative: relative to the ``n`` read so far), 0-based."""
    try:
        i = int(word)
    except ValueError:
        raise ValueError(f"{where}: {what} index {word!r} is not an integer") from None
    k = i - 1 if i > 0 else n + i
    if i == 0 or not 0 <= k < n:
        raise ValueError(f"{where}: {what} index {i} out of range (1..{n} defined so far)")
    return k
