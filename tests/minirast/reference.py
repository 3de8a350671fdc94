"""The float64 reference rasterizer of the tests, and random scenes.

Written from the contract (docs/design.md section 4, minirast/CONTRACT.md) without
any code of the package: every pixel centre is tested against every triangle
with edge functions, dense over pixels x triangles (small sizes only). Both
backends are tested against it (``test_reference_agreement.py``,
``test_triton_raster.py``, ``test_backends_agree.py``).
"""

from __future__ import annotations

import math

import torch

EPS_W = 1e-6


def pixel_centres(height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """NDC pixel centres [H*W] (float64 values of the contract's float32 formula)."""
    c = torch.arange(width, dtype=torch.float32)
    r = torch.arange(height, dtype=torch.float32)
    px = ((2 * c + 1) / width - 1).double()
    py = ((2 * r + 1) / height - 1).double()
    gy, gx = torch.meshgrid(py, px, indexing="ij")
    return gx.reshape(-1), gy.reshape(-1)


def reference_rasterize(
    pos, faces, height, width, cull=0, eps_w=EPS_W, tol_edge=1e-6, tol_depth=1e-6
):
    """Float64 brute force: every pixel against every triangle (``pos [B,V,4]``, ``faces
    [F,3]``, any float dtype and device; ``cull`` 0 none, 1 drop area < 0, -1 drop > 0).

    Returns CPU tensors ``(tri_id [B,H,W], bary [B,H,W,3], depth [B,H,W],
    ambiguous [B,H,W])`` where ``ambiguous`` marks pixel centres within ``tol_edge``
    (NDC distance) of a drawn triangle's boundary, or whose two nearest candidate depths are within
    ``tol_depth`` of each other: there float32 rounding may legitimately decide.
    """
    B = pos.shape[0]
    F = faces.shape[0]
    gx, gy = pixel_centres(height, width)
    n = height * width
    tri = torch.full((B, n), -1, dtype=torch.int64)
    bary = torch.zeros((B, n, 3), dtype=torch.float64)
    depth = torch.zeros((B, n), dtype=torch.float64)
    amb = torch.zeros((B, n), dtype=torch.bool)
    if F == 0:
        shape = (B, height, width)
        return tri.view(shape), bary.view(*shape, 3), depth.view(shape), amb.view(shape)
    fl = faces.long().cpu()
    ia, ib = [1, 2, 0], [2, 0, 1]
    for b in range(B):
        v = pos[b].detach().double().cpu()[fl]  # [F, 3, 4]
        x, y, z, w = v.unbind(-1)
        valid = (w > eps_w).all(1)
        q = 1.0 / torch.where(valid[:, None], w, torch.ones_like(w))
        X, Y, Z = x * q, y * q, z * q
        area = (X[:, 1] - X[:, 0]) * (Y[:, 2] - Y[:, 0]) - (X[:, 2] - X[:, 0]) * (Y[:, 1] - Y[:, 0])
        valid &= (area != 0) & torch.isfinite(area)
        if cull == 1:
            valid &= area > 0
        elif cull == -1:
            valid &= area < 0
        sa = torch.where(valid, area, torch.ones_like(area))
        Xa, Ya = X[:, ia, None], Y[:, ia, None]
        Xb, Yb = X[:, ib, None], Y[:, ib, None]
        e = (Xa - gx) * (Yb - gy) - (Xb - gx) * (Ya - gy)  # [F, 3, n]
        lam = e / sa[:, None, None]
        inside = (lam >= 0).all(1) & valid[:, None]
        d = (lam * Z[:, :, None]).sum(1)
        dd = torch.where(inside, d, torch.full_like(d, math.inf))
        win = torch.argmin(dd, 0)  # first (lowest id) among equal minima
        dmin = dd[win, torch.arange(n)]
        cov = torch.isfinite(dmin)
        tri[b] = torch.where(cov, win, torch.full_like(win, -1))
        lw = lam[win, :, torch.arange(n)]  # [n, 3]
        u = lw * q[win]
        bary[b] = torch.where(cov[:, None], u / u.sum(1, keepdim=True), torch.zeros_like(u))
        depth[b] = torch.where(cov, dmin, torch.zeros_like(dmin))
        # Ambiguity: near a drawn triangle's boundary, or near-equal nearest depths.
        length = torch.sqrt((Xb - Xa) ** 2 + (Yb - Ya) ** 2)
        signed = e * torch.sign(sa)[:, None, None] / length
        loose = (signed >= -tol_edge).all(1) & valid[:, None]
        strict = (signed > tol_edge).all(1) & valid[:, None]
        near_edge = (loose & ~strict).any(0)
        dl = torch.where(loose, d, torch.full_like(d, math.inf))
        if F >= 2:
            two = torch.topk(dl, 2, dim=0, largest=False).values
            close = torch.isfinite(two[1]) & (two[1] - two[0] <= tol_depth * (1 + two[0].abs()))
        else:
            close = torch.zeros(n, dtype=torch.bool)
        amb[b] = near_edge | close
    shape = (B, height, width)
    return tri.view(shape), bary.view(*shape, 3), depth.view(shape), amb.view(shape)


def recompute_bary_depth(pos64, faces, tri_id, height, width):
    """Differentiable float64 perspective-correct bary and depth for a fixed tri_id."""
    B = pos64.shape[0]
    gx, gy = pixel_centres(height, width)
    tid = tri_id.reshape(B, -1).long().cpu()
    fl = faces.long().cpu()
    barys, depths = [], []
    for b in range(B):
        cov = tid[b] >= 0
        f = fl[tid[b].clamp(min=0)]  # [n, 3]
        v = pos64[b][f]  # [n, 3, 4]
        q = 1.0 / v[..., 3]
        X, Y, Z = v[..., 0] * q, v[..., 1] * q, v[..., 2] * q
        area = (X[:, 1] - X[:, 0]) * (Y[:, 2] - Y[:, 0]) - (X[:, 2] - X[:, 0]) * (Y[:, 1] - Y[:, 0])
        ia, ib = [1, 2, 0], [2, 0, 1]
        e = (X[:, ia] - gx[:, None]) * (Y[:, ib] - gy[:, None]) - (X[:, ib] - gx[:, None]) * (
            Y[:, ia] - gy[:, None]
        )
        lam = e / area[:, None]
        u = lam * q
        bary = u / u.sum(1, keepdim=True)
        depth = (lam * Z).sum(1)
        barys.append(torch.where(cov[:, None], bary, torch.zeros_like(bary)))
        depths.append(torch.where(cov, depth, torch.zeros_like(depth)))
    return (
        torch.stack(barys).view(B, height, width, 3),
        torch.stack(depths).view(B, height, width),
    )


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
