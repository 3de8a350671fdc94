"""An independent float64 per-pixel rasterizer (numpy) and random scenes for the tests.

Written from the contract (DESIGN.md section 4, minirast/CONTRACT.md) without
any code of the package: every pixel centre is tested against every triangle
with edge functions, dense over pixels x triangles (small sizes only).
"""

from __future__ import annotations

import numpy as np
import torch

EPS_W = 1e-6


def reference_rasterize(pos, faces, height: int, width: int, cull: int = 0, edge_tol=1e-6):
    """Rasterize ``pos [B,V,4]`` with ``faces [F,3]`` in float64.

    Returns numpy ``tri_id [B,H,W]`` (-1 background), ``bary [B,H,W,3]``,
    ``depth [B,H,W]`` (0 background) and ``ambiguous [B,H,W]``: pixels whose centre
    lies within ``edge_tol`` (NDC distance) of the boundary of a drawable triangle
    that (nearly) contains it, or whose two nearest covering depths differ by less
    than ``edge_tol`` (results there may legitimately differ in float32).
    """
    pos = np.asarray(pos, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    B = pos.shape[0]
    F = faces.shape[0]
    tri_id = np.full((B, height, width), -1, dtype=np.int64)
    bary = np.zeros((B, height, width, 3))
    depth = np.zeros((B, height, width))
    ambiguous = np.zeros((B, height, width), dtype=bool)
    if F == 0:
        return tri_id, bary, depth, ambiguous
    cols, rows = np.meshgrid(np.arange(width), np.arange(height))
    px = ((2 * cols + 1) / width - 1).reshape(-1, 1)  # [P,1]
    py = ((2 * rows + 1) / height - 1).reshape(-1, 1)
    for b in range(B):
        p = pos[b][faces]  # [F,3,4]
        w = p[..., 3]
        good = (w > EPS_W).all(1)
        ws = np.where(w > EPS_W, w, 1.0)
        X, Y, Z = p[..., 0] / ws, p[..., 1] / ws, p[..., 2] / ws  # [F,3]
        area = (X[:, 1] - X[:, 0]) * (Y[:, 2] - Y[:, 0]) - (X[:, 2] - X[:, 0]) * (Y[:, 1] - Y[:, 0])
        good &= area != 0
        if cull < 0:
            good &= area < 0
        elif cull > 0:
            good &= area > 0
        safe_area = np.where(area != 0, area, 1.0)
        lam = []
        dist = []
        for i in range(3):
            j, k = (i + 1) % 3, (i + 2) % 3
            e = (X[:, j] - px) * (Y[:, k] - py) - (X[:, k] - px) * (Y[:, j] - py)  # [P,F]
            lam.append(e / safe_area)
            length = np.hypot(X[:, k] - X[:, j], Y[:, k] - Y[:, j])
            dist.append(e * np.sign(area) / np.where(length > 0, length, 1.0))
        lam = np.stack(lam, -1)  # [P,F,3]
        dist = np.stack(dist, -1)
        inside = good & (lam >= 0).all(-1)
        near_edge = good & (dist >= -edge_tol).all(-1) & (np.abs(dist) < edge_tol).any(-1)
        d = (lam * Z[None]).sum(-1)
        d_masked = np.where(inside, d, np.inf)
        best = np.argmin(d_masked, axis=1)  # first minimum = lowest id on exact ties
        best_d = d_masked[np.arange(len(best)), best]
        covered = np.isfinite(best_d)
        second = np.partition(d_masked, 1, axis=1)[:, 1] if F > 1 else np.full_like(best_d, np.inf)
        with np.errstate(invalid="ignore"):
            gap = np.abs(second - best_d)
        close_depth = covered & np.isfinite(second) & (gap < edge_tol)
        l_best = lam[np.arange(len(best)), best]  # [P,3]
        q = l_best / ws[best]
        bb = q / q.sum(1, keepdims=True)
        tid = np.where(covered, best, -1)
        tri_id[b] = tid.reshape(height, width)
        bary[b] = np.where(covered[:, None], bb, 0.0).reshape(height, width, 3)
        depth[b] = np.where(covered, best_d, 0.0).reshape(height, width)
        ambiguous[b] = (near_edge.any(1) | close_depth).reshape(height, width)
    return tri_id, bary, depth, ambiguous


def random_scene(seed: int, batch: int, num_faces: int, shared: bool = True):
    """A random triangle soup / mesh in clip space, float32.

    NDC vertex positions in [-1.3, 1.3]^2 (some triangles leave the image), depths in
    [-1, 1], w in [0.4, 2.5], and about 1 vertex in 25 behind the camera (w < 0) so the
    drop rule is exercised. With ``shared`` the faces index a pool of ``num_faces``
    vertices (shared edges); otherwise every face has its own 3 vertices. Triangles
    are kept well shaped (no slivers) so float32 barycentrics are well conditioned;
    with ``shared`` that can leave fewer than ``num_faces`` faces.
    """
    g = torch.Generator().manual_seed(seed)
    V = num_faces if shared else 3 * num_faces
    V = max(V, 3)
    ndc = (torch.rand(batch, V, 2, generator=g, dtype=torch.float64) * 2 - 1) * 1.3
    z = torch.rand(batch, V, 1, generator=g, dtype=torch.float64) * 2 - 1
    w = 0.4 + 2.1 * torch.rand(batch, V, 1, generator=g, dtype=torch.float64)
    behind = torch.rand(batch, V, 1, generator=g) < 0.04
    w = torch.where(behind, -w, w)
    pos = torch.cat([ndc * w, z * w, w], -1)
    if shared:
        faces = torch.stack([torch.randperm(V, generator=g)[:3] for _ in range(num_faces)]).to(
            torch.int64
        )
        faces = faces[_well_shaped(pos, faces)]
    else:
        faces = torch.arange(3 * num_faces, dtype=torch.int64).reshape(-1, 3)
    # Shrink random triangles towards their centroid so they are not all huge.
    if not shared:
        scale = 0.15 + 0.6 * torch.rand(batch, num_faces, 1, 1, generator=g, dtype=torch.float64)
        p = pos[:, faces]  # [B,F,3,4]
        ndc3 = p[..., :2] / p[..., 3:]
        centre = ndc3.mean(2, keepdim=True)
        ndc3 = centre + (ndc3 - centre) * scale
        p = torch.cat([ndc3 * p[..., 3:], p[..., 2:]], -1)
        pos = p.reshape(batch, -1, 4)
        faces = faces[_well_shaped(pos, faces)]
    return pos.float(), faces


def _well_shaped(pos: torch.Tensor, faces: torch.Tensor, quality: float = 0.08) -> torch.Tensor:
    """Faces that are not slivers in any batch element: screen area >= ``quality`` times
    the squared longest edge (float32 barycentrics of slivers are ill-conditioned)."""
    p = pos[:, faces]
    ndc = p[..., :2] / p[..., 3:]
    e = ndc[:, :, [1, 2, 0]] - ndc
    area = (e[..., 0, 0] * e[..., 1, 1] - e[..., 0, 1] * e[..., 1, 0]).abs()
    longest = (e**2).sum(-1).amax(-1)
    return (area >= quality * longest).all(0)


def perspective_clip(verts: torch.Tensor, scale: float = 0.8, rho: float = 0.3) -> torch.Tensor:
    """ppcam-style clip positions ``(S x, S y, z, 1 + rho z)`` of camera-frame points."""
    x, y, z = verts.unbind(-1)
    return torch.stack([scale * x, scale * y, z, 1 + rho * z], -1)
