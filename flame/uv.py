"""UV layouts of a head mesh: the convention, their checks and their distortion.

A layout is ``uvs`` [T, 2] and ``uv_faces`` [F, 3] (int64): face ``k`` of
``uv_faces`` is the UV triangle of face ``k`` of the mesh, corner for corner, and
UV vertices are separate from mesh vertices, so a seam splits a mesh vertex into
several UV vertices. ``u`` runs along the texture image's width and ``v`` along its
height; texel ``(i, j)`` (row, column) of an ``[Ht, Wt]`` image is centred at
``((j + 0.5) / Wt, (i + 0.5) / Ht)``, so ``v = 0`` is the image's FIRST (top) row,
as in ``minirast.texture``. Wavefront OBJ files and FLAME's ``FLAME_texture.npz`` put
``v = 0`` at the bottom row instead: :mod:`flame.uv_files` flips on reading and
``train.render.writers.write_obj`` on writing (``v -> 1 - v``).
"""

from __future__ import annotations

import numpy as np


def check_uv_layout(
    uvs: np.ndarray, uv_faces: np.ndarray, n_faces: int | None = None, source: str = "UV layout"
) -> tuple[np.ndarray, np.ndarray]:
    """Check a layout and return it as (float [T, 2], int64 [F, 3]) numpy arrays.

    Raises ``TypeError`` / ``ValueError`` naming ``source`` and what was expected:
    ``uvs`` a finite floating [T, 2] array with T >= 1, ``uv_faces`` an integer
    [F, 3] array with indices in [0, T), and F equal to ``n_faces`` (the mesh's face
    count) when given.
    """
    uvs = np.asarray(uvs)
    uv_faces = np.asarray(uv_faces)
    if uvs.dtype.kind != "f":
        raise TypeError(f"{source}: uvs must be a floating-point array, got dtype {uvs.dtype}")
    if uvs.ndim != 2 or uvs.shape[1] != 2 or uvs.shape[0] < 1:
        raise ValueError(f"{source}: uvs must have shape [T,2] with T >= 1, got {list(uvs.shape)}")
    if not np.all(np.isfinite(uvs)):
        raise ValueError(f"{source}: uvs contains NaN or inf values")
    if uv_faces.dtype.kind not in "iu":
        raise TypeError(f"{source}: uv_faces must be an integer array, got dtype {uv_faces.dtype}")
    if uv_faces.ndim != 2 or uv_faces.shape[1] != 3:
        raise ValueError(f"{source}: uv_faces must have shape [F,3], got {list(uv_faces.shape)}")
    if n_faces is not None and uv_faces.shape[0] != n_faces:
        raise ValueError(
            f"{source}: uv_faces has {uv_faces.shape[0]} faces, the mesh has {n_faces} "
            "(face k of uv_faces must be the UV triangle of face k of the mesh)"
        )
    if uv_faces.size and (uv_faces.min() < 0 or uv_faces.max() >= uvs.shape[0]):
        raise ValueError(
            f"{source}: uv_faces holds UV indices out of range [0, {uvs.shape[0]}): "
            f"min {uv_faces.min()}, max {uv_faces.max()}"
        )
    return uvs, uv_faces.astype(np.int64)


def signed_uv_areas(uvs: np.ndarray, uv_faces: np.ndarray) -> np.ndarray:
    """Signed area [F] (float64, in units of the texture's area) of each UV triangle,
    ``0.5 * cross(c1 - c0, c2 - c0)`` in (u, v) coordinates.

    With ``v`` down the image, a layout in which the texture shows the surface as
    seen from outside (the mesh's faces counter-clockwise from outside) has every
    area negative: counter-clockwise on the displayed image.
    """
    t = np.asarray(uvs, dtype=np.float64)[np.asarray(uv_faces)]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    return 0.5 * (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])


def mesh_areas(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area [F] (float64, square units of ``vertices``) of each mesh triangle."""
    p = np.asarray(vertices, dtype=np.float64)[np.asarray(faces)]
    return 0.5 * np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1)


def faces_in_region(faces: np.ndarray, vertex_ids: np.ndarray, n_vertices: int) -> np.ndarray:
    """Boolean [F]: faces whose three vertices are all in ``vertex_ids`` (a vertex mask
    such as ``FlameModel.masks["face"]``)."""
    inside = np.zeros(n_vertices, dtype=bool)
    inside[np.asarray(vertex_ids)] = True
    return inside[np.asarray(faces)].all(axis=1)


def area_distortion(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    uv_faces: np.ndarray,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Per-face area distortion [n] of a layout over a region of the mesh.

    For each face of ``region`` (boolean [F]; all faces when None): its share of the
    region's UV area divided by its share of the region's surface area. 1 everywhere
    means the texture covers the region at a uniform density (texels per square
    metre); 2 means twice the region's mean density, 0.5 half of it.
    """
    a3 = mesh_areas(vertices, faces)
    auv = np.abs(signed_uv_areas(uvs, uv_faces))
    if region is not None:
        region = np.asarray(region, dtype=bool)
        a3, auv = a3[region], auv[region]
    if a3.size == 0 or a3.sum() <= 0 or auv.sum() <= 0:
        raise ValueError("area_distortion: the region has no area on the mesh or in UV space")
    return (auv / auv.sum()) / np.maximum(a3 / a3.sum(), 1e-300)


def distortion_summary(ratios: np.ndarray) -> dict[str, float]:
    """Median and 5th / 95th percentiles of :func:`area_distortion`'s ratios."""
    p5, median, p95 = np.percentile(np.asarray(ratios, dtype=np.float64), [5, 50, 95])
    return {"median": float(median), "p5": float(p5), "p95": float(p95)}
