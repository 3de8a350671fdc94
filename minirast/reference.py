"""The simple float64 reference rasterizer the backends are tested against.

Written from the contract (``docs/design.md`` section 4, ``minirast/CONTRACT.md``)
without any other code of the package, and as plainly as possible: every pixel
centre is tested against every triangle with the contract's edge functions, dense
over pixels x triangles, in float64. That costs ``O(B H W F)`` time and memory, so
it is for small scenes only (tests, and checking a change by hand); the backends
are ``backend="torch"`` (:mod:`minirast._cpu`, the optimised CPU path) and
``backend="triton"`` (:mod:`minirast._triton`).

- :func:`reference_rasterize`: ``tri_id``, perspective-correct barycentrics and
  depth, plus the pixels where float32 rounding may legitimately decide
  (``ambiguous``), so a float32 backend can be compared exactly everywhere else;
- :func:`recompute_bary_depth`: barycentrics and depth for a given ``tri_id``,
  differentiable by autograd (the reference for the rasterizer's backward);
- :func:`interpolate_at`: the perspective-correct interpolation of an attribute over
  given faces at arbitrary (continuous) NDC points, the reference of
  :func:`minirast.interpolate`'s values and (by finite differences) derivatives;
- :func:`pixel_centres`: the contract's NDC pixel centres.

Tests against it: ``tests/minirast/test_reference_agreement.py`` (torch backend),
``test_triton_raster.py`` (Triton kernels) and ``test_backends_agree.py``::

    from minirast.reference import reference_rasterize

    tri_id, bary, depth, ambiguous = reference_rasterize(pos_clip, faces, 16, 16)
"""

from __future__ import annotations

import math

import torch

#: The contract's drop threshold on ``w``, restated here so the reference reads no
#: code of the package (equal to :data:`minirast.EPS_W`; a test checks).
EPS_W = 1e-6
#: The contract's degenerate-area threshold (a triangle with ``|A|`` at most this times
#: ``|(X1-X0)(Y2-Y0)| + |(X2-X0)(Y1-Y0)|`` is dropped), restated likewise.
DEGENERATE_AREA = 2.0**-20


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
        first = (X[:, 1] - X[:, 0]) * (Y[:, 2] - Y[:, 0])
        second = (X[:, 2] - X[:, 0]) * (Y[:, 1] - Y[:, 0])
        area = first - second
        valid &= ~(area.abs() <= DEGENERATE_AREA * (first.abs() + second.abs()))
        valid &= torch.isfinite(area)
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
    """Perspective-correct barycentrics ``[B,H,W,3]`` and depth ``[B,H,W]`` of the faces
    ``tri_id [B,H,W]`` (held fixed; -1 background gives zeros), computed from ``pos64
    [B,V,4]`` with differentiable float64 torch ops: autograd through them is the
    reference for the rasterizer's backward. CPU tensors."""
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


def interpolate_at(pos, faces, attr, attr_faces, image, tri, px, py):
    """Float64 perspective-correct interpolation at continuous NDC points.

    Point ``n`` lies in image ``image[n]`` at NDC ``(px[n], py[n])`` and is interpolated
    over rasterized face ``tri[n]`` (held fixed: outside the face this is the affine
    extension of its screen barycentrics): ``l_k`` from the contract's edge functions,
    ``b_k = (l_k / w_k) / sum_j (l_j / w_j)``, value ``sum_k b_k attr[attr_faces[tri,
    k]]``. ``pos [B,V,4]``, ``faces [F,3]`` rasterized; ``attr [B,T,C]`` or ``[T,C]``
    with ``attr_faces [F,3]`` into its ``T`` vertices; ``image``, ``tri`` int, ``px``,
    ``py`` float, all ``[N]``. Returns ``[N,C]`` float64 (CPU), differentiable by
    autograd in every float input.
    """
    image, tri = image.long().cpu(), tri.long().cpu()
    attr = attr.double().cpu()
    attr = attr.unsqueeze(0).expand(pos.shape[0], -1, -1) if attr.dim() == 2 else attr
    v = pos.double().cpu()[image[:, None], faces.long().cpu()[tri]]  # [N, 3, 4]
    a = attr[image[:, None], attr_faces.long().cpu()[tri]]  # [N, 3, C]
    X, Y, q = v[..., 0] / v[..., 3], v[..., 1] / v[..., 3], 1.0 / v[..., 3]
    px, py = px.double().cpu()[:, None], py.double().cpu()[:, None]
    ia, ib = [1, 2, 0], [2, 0, 1]
    e = (X[:, ia] - px) * (Y[:, ib] - py) - (X[:, ib] - px) * (Y[:, ia] - py)
    u = e / e.sum(1, keepdim=True) * q
    return ((u / u.sum(1, keepdim=True))[..., None] * a).sum(1)
