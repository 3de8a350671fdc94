"""Procedural meshes for tests, examples and benchmarks."""

from __future__ import annotations

import math

import torch


def uv_sphere(
    n_lat: int = 70, n_lon: int = 72, *, radius: float = 1.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """A latitude/longitude sphere centred at the origin.

    ``n_lat`` latitude bands (>= 2) and ``n_lon`` longitude segments (>= 3) give
    ``(n_lat - 1) * n_lon + 2`` vertices and ``2 * n_lon * (n_lat - 1)`` faces; the
    defaults (4970 vertices, 9936 faces) are about the size of a FLAME head (5023 / 9976).
    Faces wind counter-clockwise seen from outside (outward right-hand normals).

    Returns ``verts [V,3]`` (``dtype``, in units of ``radius``) and ``faces [F,3]`` int64.
    """
    if n_lat < 2 or n_lon < 3:
        raise ValueError(f"uv_sphere needs n_lat >= 2 and n_lon >= 3, got {n_lat}, {n_lon}")
    theta = torch.arange(1, n_lat, dtype=torch.float64) * (math.pi / n_lat)  # polar angle
    phi = torch.arange(n_lon, dtype=torch.float64) * (2 * math.pi / n_lon)
    st, ct = torch.sin(theta)[:, None], torch.cos(theta)[:, None]
    ring = torch.stack(
        [st * torch.cos(phi)[None], ct.expand(-1, n_lon), st * torch.sin(phi)[None]], -1
    ).reshape(-1, 3)
    top = torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64)
    bottom = torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)
    verts = torch.cat([top, ring, bottom]) * radius
    n_rings = n_lat - 1
    j = torch.arange(n_lon)
    jn = (j + 1) % n_lon
    faces = [torch.stack([torch.zeros_like(j), 1 + jn, 1 + j], 1)]
    for i in range(n_rings - 1):
        a = 1 + i * n_lon + j
        b = 1 + i * n_lon + jn
        c = 1 + (i + 1) * n_lon + j
        d = 1 + (i + 1) * n_lon + jn
        faces += [torch.stack([a, b, c], 1), torch.stack([b, d, c], 1)]
    last = 1 + (n_rings - 1) * n_lon
    south = verts.shape[0] - 1
    faces.append(torch.stack([torch.full_like(j, south), last + j, last + jn], 1))
    faces = torch.cat(faces)
    # Make every face wind counter-clockwise around its outward normal.
    v = verts[faces]
    normal = torch.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0], dim=1)
    flip = (normal * v.mean(1)).sum(1) < 0
    faces[flip] = faces[flip][:, [0, 2, 1]]
    return verts.to(dtype), faces


def icosphere(
    subdivisions: int = 3, *, radius: float = 1.0, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """A geodesic sphere: an icosahedron subdivided ``subdivisions`` times (>= 0).

    ``10 * 4**s + 2`` vertices and ``20 * 4**s`` faces, counter-clockwise seen from
    outside. Returns ``verts [V,3]`` and ``faces [F,3]`` int64.
    """
    if subdivisions < 0:
        raise ValueError(f"subdivisions must be >= 0, got {subdivisions}")
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0),
        (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
        (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
        (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
        (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
        (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    v = torch.tensor(verts, dtype=torch.float64)
    v = v / v.norm(dim=1, keepdim=True)
    f = torch.tensor(faces, dtype=torch.int64)
    for _ in range(subdivisions):
        edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        key = torch.sort(edges, dim=1).values
        uniq, inverse = torch.unique(key, dim=0, return_inverse=True)
        mid = v[uniq[:, 0]] + v[uniq[:, 1]]
        mid = mid / mid.norm(dim=1, keepdim=True)
        m = inverse.reshape(3, -1).T + v.shape[0]  # midpoints of edges 01, 12, 20
        v = torch.cat([v, mid])
        a, b, c = f[:, 0], f[:, 1], f[:, 2]
        m01, m12, m20 = m[:, 0], m[:, 1], m[:, 2]
        f = torch.cat(
            [
                torch.stack([a, m01, m20], 1),
                torch.stack([b, m12, m01], 1),
                torch.stack([c, m20, m12], 1),
                torch.stack([m01, m12, m20], 1),
            ]
        )
    return (v * radius).to(dtype), f
