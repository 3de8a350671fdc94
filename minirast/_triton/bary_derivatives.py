"""Triton op: screen-space derivatives of the perspective-correct barycentrics per pixel
(nvdiffrast's ``rast_db``), what :func:`minirast.interpolate` needs for
``derivatives=True``.

Output ``db [2,B,H,W,3]`` float32: ``db[0, ..., k]`` is ``d b_k / d column``,
``db[1, ..., k]`` is ``d b_k / d row`` (pixel units), zeros on background; each
``db[axis]`` is a contiguous ``[B,H,W,3]`` map, so the interpolate kernels turn it
into the attribute's derivative (``sum_k db_k attr_k``) as they do ``bary`` into its
value. Math (``minirast/_cpu/interpolate.py``, the reference): with ``q_k = 1/w_k``,
screen positions ``X_k = x_k q_k``, ``Y_k = y_k q_k``, signed area ``A``, the screen
barycentric gradients ``gx_k = (Y_{k+1} - Y_{k+2}) / A``, ``gy_k = (X_{k+2} -
X_{k+1}) / A`` and ``u = sum_j b_j w_j`` (= ``1/S``)::

    db_k = step * u * (q_k g_k - b_k sum_j q_j g_j)      (step = 2/W or 2/H)

computed from the rasterizer's ``bary`` and the visible face's clip positions, so the
op is differentiable in both: the backward (:func:`_db_pixel_grads`) gives the
gradient of ``bary`` per pixel and the 12 corner gradients (``z`` gets none), summed
per vertex as the rasterize backward does (per bin entry in list order, then the
segmented sums of :func:`minirast._triton.common.reduce_entries`): deterministic, no
float atomics.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from _common.codegen import kernel_spec

from .common import (
    ARG_TYPES,
    BWD_TILE_WARPS,
    NUM_WARPS,
    PIX_BLOCK,
    TILE_H,
    TILE_W,
    RasterBins,
    bins_from_tri_id,
    check_bins,
    load_pixel3,
    load_visible_face,
    nonempty,
    reduce_entries,
    screen_corners,
    tile_pixels,
)

# --------------------------------------------------------------------------- kernels


@triton.jit
def _db_setup(pos_ptr, faces_ptr, bary_ptr, b, V, pix, t, cov, H, W):
    """Per pixel: the clip ``x, y, w``, ``q = 1/w`` and screen ``X, Y`` of the visible
    face's three corners, then ``1/A``, the barycentrics, ``u`` and the NDC steps of a
    column and a row (a flat tuple of 25); masked lanes read harmless values."""
    (_i0, _i1, _i2, x0, y0, _z0, w0, x1, y1, _z1, w1, x2, y2, _z2, w2) = load_visible_face(
        pos_ptr, faces_ptr, b, V, t, cov
    )  # fmt: skip
    q0, q1, q2, X0, Y0, X1, Y1, X2, Y2, inv_area = screen_corners(
        x0, y0, w0, x1, y1, w1, x2, y2, w2, cov
    )
    bb0, bb1, bb2 = load_pixel3(bary_ptr, pix, cov)
    u = bb0 * w0 + bb1 * w1 + bb2 * w2
    sx = 2.0 / W.to(tl.float32)
    sy = 2.0 / H.to(tl.float32)
    return (x0, y0, w0, q0, X0, Y0, x1, y1, w1, q1, X1, Y1, x2, y2, w2, q2, X2, Y2,
            inv_area, bb0, bb1, bb2, u, sx, sy)  # fmt: skip


@triton.jit
def _db_fwd_kernel(
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3] rasterized faces
    tri_id_ptr,  # [B,H,W] visible triangle
    bary_ptr,  # [B,H,W,3] perspective-correct barycentrics
    out_ptr,  # [2,B,H,W,3] out: d bary / d column, d bary / d row
    V,
    H,
    W,
    N,  # B*H*W
    BLOCK: tl.constexpr,
):
    """db of every pixel of a block (module docstring); zeros on background."""
    b = tl.program_id(1).to(tl.int64)
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pm = q < H * W
    pix = b * H * W + q
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    (_x0, _y0, _w0, q0, X0, Y0, _x1, _y1, _w1, q1, X1, Y1, _x2, _y2, _w2, q2, X2, Y2,
     inv_area, bb0, bb1, bb2, u, sx, sy) = _db_setup(
        pos_ptr, faces_ptr, bary_ptr, b, V, pix, t, cov, H, W
    )  # fmt: skip
    gx0 = (Y1 - Y2) * inv_area * q0
    gx1 = (Y2 - Y0) * inv_area * q1
    gx2 = (Y0 - Y1) * inv_area * q2
    gy0 = (X2 - X1) * inv_area * q0
    gy1 = (X0 - X2) * inv_area * q1
    gy2 = (X1 - X0) * inv_area * q2
    tx = gx0 + gx1 + gx2
    ty = gy0 + gy1 + gy2
    ux = tl.where(cov, u * sx, 0.0)
    uy = tl.where(cov, u * sy, 0.0)
    ox = out_ptr + pix * 3
    oy = out_ptr + (N.to(tl.int64) + pix) * 3
    tl.store(ox + 0, (gx0 - bb0 * tx) * ux, mask=pm)
    tl.store(ox + 1, (gx1 - bb1 * tx) * ux, mask=pm)
    tl.store(ox + 2, (gx2 - bb2 * tx) * ux, mask=pm)
    tl.store(oy + 0, (gy0 - bb0 * ty) * uy, mask=pm)
    tl.store(oy + 1, (gy1 - bb1 * ty) * uy, mask=pm)
    tl.store(oy + 2, (gy2 - bb2 * ty) * uy, mask=pm)


@triton.jit
def _db_pixel_grads(pos_ptr, faces_ptr, bary_ptr, go_ptr, b, V, H, W, N, pix, t, cov):
    """Gradients of one pixel's ``db`` (upstream ``go`` ``[2,B,H,W,3]``) with respect to
    its three barycentrics and to the clip ``x, y, w`` of its face's corners (``z`` gets
    none): ``(gb0, gb1, gb2, gx0, gy0, gw0, gx1, gy1, gw1, gx2, gy2, gw2)``.

    With ``G_k = step * go_k`` per axis, ``a_k = q_k g_k`` and ``T = sum a``:
    ``gu = sum_axes sum_k G_k (a_k - b_k T)``, ``d/da_j = u (G_j - G.b)``,
    ``d/db_k = gu w_k - u sum_axes G_k T``, ``d/dw_k += gu b_k``; ``a_k = q_k g_k``
    passes ``g_k dL/da_k`` to ``q_k`` and ``R_k = q_k dL/da_k`` to ``g_k``; the ``g``
    (edge differences over ``A``) pass ``(R^y_{j+1} - R^y_{j-1}) / A + s gx_j`` to
    ``X_j`` and ``(R^x_{j-1} - R^x_{j+1}) / A + s gy_j`` to ``Y_j``, with ``s = -sum
    R g`` (the area's share); then ``X = x q``, ``Y = y q``, ``q = 1 / w``.
    """
    (x0, y0, w0, q0, X0, Y0, x1, y1, w1, q1, X1, Y1, x2, y2, w2, q2, X2, Y2,
     inv_area, bb0, bb1, bb2, u, sx, sy) = _db_setup(
        pos_ptr, faces_ptr, bary_ptr, b, V, pix, t, cov, H, W
    )  # fmt: skip
    ex0 = (Y1 - Y2) * inv_area
    ex1 = (Y2 - Y0) * inv_area
    ex2 = (Y0 - Y1) * inv_area
    ey0 = (X2 - X1) * inv_area
    ey1 = (X0 - X2) * inv_area
    ey2 = (X1 - X0) * inv_area
    ax0 = ex0 * q0
    ax1 = ex1 * q1
    ax2 = ex2 * q2
    ay0 = ey0 * q0
    ay1 = ey1 * q1
    ay2 = ey2 * q2
    tx = ax0 + ax1 + ax2
    ty = ay0 + ay1 + ay2
    gox = go_ptr + pix * 3
    goy = go_ptr + (N.to(tl.int64) + pix) * 3
    Gx0 = tl.load(gox + 0, mask=cov, other=0.0) * sx
    Gx1 = tl.load(gox + 1, mask=cov, other=0.0) * sx
    Gx2 = tl.load(gox + 2, mask=cov, other=0.0) * sx
    Gy0 = tl.load(goy + 0, mask=cov, other=0.0) * sy
    Gy1 = tl.load(goy + 1, mask=cov, other=0.0) * sy
    Gy2 = tl.load(goy + 2, mask=cov, other=0.0) * sy
    gu = (
        Gx0 * (ax0 - bb0 * tx)
        + Gx1 * (ax1 - bb1 * tx)
        + Gx2 * (ax2 - bb2 * tx)
        + Gy0 * (ay0 - bb0 * ty)
        + Gy1 * (ay1 - bb1 * ty)
        + Gy2 * (ay2 - bb2 * ty)
    )
    gxb = Gx0 * bb0 + Gx1 * bb1 + Gx2 * bb2
    gyb = Gy0 * bb0 + Gy1 * bb1 + Gy2 * bb2
    # d/da (a = q g), then R = q d/da (the share of g) and d/dq = g d/da.
    Rx0 = u * (Gx0 - gxb) * q0
    Rx1 = u * (Gx1 - gxb) * q1
    Rx2 = u * (Gx2 - gxb) * q2
    Ry0 = u * (Gy0 - gyb) * q0
    Ry1 = u * (Gy1 - gyb) * q1
    Ry2 = u * (Gy2 - gyb) * q2
    gq0 = u * ((Gx0 - gxb) * ex0 + (Gy0 - gyb) * ey0)
    gq1 = u * ((Gx1 - gxb) * ex1 + (Gy1 - gyb) * ey1)
    gq2 = u * ((Gx2 - gxb) * ex2 + (Gy2 - gyb) * ey2)
    s = -(Rx0 * ex0 + Rx1 * ex1 + Rx2 * ex2 + Ry0 * ey0 + Ry1 * ey1 + Ry2 * ey2)
    gX0 = (Ry1 - Ry2) * inv_area + s * ex0
    gX1 = (Ry2 - Ry0) * inv_area + s * ex1
    gX2 = (Ry0 - Ry1) * inv_area + s * ex2
    gY0 = (Rx2 - Rx1) * inv_area + s * ey0
    gY1 = (Rx0 - Rx2) * inv_area + s * ey1
    gY2 = (Rx1 - Rx0) * inv_area + s * ey2
    gq0 += gX0 * x0 + gY0 * y0
    gq1 += gX1 * x1 + gY1 * y1
    gq2 += gX2 * x2 + gY2 * y2
    gw0 = gu * bb0 - gq0 * q0 * q0
    gw1 = gu * bb1 - gq1 * q1 * q1
    gw2 = gu * bb2 - gq2 * q2 * q2
    gb0 = gu * w0 - u * (Gx0 * tx + Gy0 * ty)
    gb1 = gu * w1 - u * (Gx1 * tx + Gy1 * ty)
    gb2 = gu * w2 - u * (Gx2 * tx + Gy2 * ty)
    return (
        tl.where(cov, gb0, 0.0),
        tl.where(cov, gb1, 0.0),
        tl.where(cov, gb2, 0.0),
        tl.where(cov, gX0 * q0, 0.0),
        tl.where(cov, gY0 * q0, 0.0),
        tl.where(cov, gw0, 0.0),
        tl.where(cov, gX1 * q1, 0.0),
        tl.where(cov, gY1 * q1, 0.0),
        tl.where(cov, gw1, 0.0),
        tl.where(cov, gX2 * q2, 0.0),
        tl.where(cov, gY2 * q2, 0.0),
        tl.where(cov, gw2, 0.0),
    )


@triton.jit
def _db_bwd_tile_kernel(
    go_ptr,  # [2,B,H,W,3] upstream gradient of db
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3] rasterized faces
    tri_id_ptr,  # [B,H,W] visible triangle
    bary_ptr,  # [B,H,W,3] barycentrics
    bin_tri_ptr,  # [N] triangle ids of the bin entries
    tile_start_ptr,  # [B*T] first entry of each tile
    tile_count_ptr,  # [B*T] entries of each tile
    part_ptr,  # [NE,12] out: per-entry sums of the 12 corner gradients
    gbary_ptr,  # [B,H,W,3] out: gradient of bary
    V,
    H,
    W,
    TX,  # tiles per row
    N,  # B*H*W
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
):
    """Per (tile, batch): the bary gradient of its pixels, and per bin entry the summed
    12 corner gradients of the pixels showing that triangle (list order)."""
    tile = tl.program_id(0)
    bi = tl.program_id(1)
    b = bi.to(tl.int64)
    ntiles = tl.num_programs(0)
    r, c, pm = tile_pixels(tile, TX, H, W, TILE_H, TILE_W)
    pix = (b * H + r) * W + c
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    t = tl.where(cov, t, -1)
    (gb0, gb1, gb2, gx0, gy0, gw0, gx1, gy1, gw1, gx2, gy2, gw2) = _db_pixel_grads(
        pos_ptr, faces_ptr, bary_ptr, go_ptr, b, V, H, W, N, pix, t, cov
    )
    tl.store(gbary_ptr + pix * 3 + 0, gb0, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 1, gb1, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 2, gb2, mask=pm)
    # The 12 corner gradients as the columns of one [P, 16] tensor (4 columns unused).
    j = tl.arange(0, 16)[None, :]
    contrib = tl.where(j == 0, gx0, 0.0)
    contrib = tl.where(j == 1, gy0, contrib)
    contrib = tl.where(j == 3, gw0, contrib)
    contrib = tl.where(j == 4, gx1, contrib)
    contrib = tl.where(j == 5, gy1, contrib)
    contrib = tl.where(j == 7, gw1, contrib)
    contrib = tl.where(j == 8, gx2, contrib)
    contrib = tl.where(j == 9, gy2, contrib)
    contrib = tl.where(j == 11, gw2, contrib)
    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    i = 0
    while i < n:  # a while loop: runtime bound (minirast/_triton/common.py)
        tt = tl.load(bin_tri_ptr + start + i)
        hit = t == tt
        # Entries of triangles hidden in this tile skip the sums.
        if tl.max(hit.to(tl.int32)) > 0:
            row = tl.sum(tl.where(hit, contrib, 0.0), axis=0, keep_dims=True)
        else:
            row = tl.zeros([1, 16], tl.float32)
        tl.store(part_ptr + (start + i).to(tl.int64) * 12 + j, row, mask=j < 12)
        i += 1


# --------------------------------------------------------------------------- host


def bary_derivatives_forward(
    pos: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor, bary: torch.Tensor
) -> torch.Tensor:
    """``db [2,B,H,W,3]`` float32 (module docstring) from ``pos [B,V,4]`` float32,
    the rasterized ``faces [F,3]`` int32, ``tri_id [B,H,W]`` and ``bary [B,H,W,3]``."""
    B, H, W = tri_id.shape
    out = torch.empty((2, B, H, W, 3), dtype=torch.float32, device=pos.device)
    if out.numel() == 0:
        return out
    _db_fwd_kernel[(triton.cdiv(H * W, PIX_BLOCK), B)](
        nonempty(pos),
        nonempty(faces),
        tri_id,
        bary,
        out,
        pos.shape[1],
        H,
        W,
        B * H * W,
        BLOCK=PIX_BLOCK,
        num_warps=NUM_WARPS,
    )
    return out


def bary_derivatives_backward(
    grad_db: torch.Tensor,
    pos: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    bary: torch.Tensor,
    *,
    bins: RasterBins | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`bary_derivatives_forward` from ``grad_db [2,B,H,W,3]``
    (float32 contiguous): ``(grad_pos [B,V,4], grad_bary [B,H,W,3])``, float32,
    deterministic (bitwise repeatable). ``bins``: the rasterize op's, or None to build
    them from ``tri_id``."""
    B, H, W = tri_id.shape
    V, F = pos.shape[1], faces.shape[0]
    device = pos.device
    grad_bary = torch.zeros((B, H, W, 3), dtype=torch.float32, device=device)
    if B * V == 0 or F == 0 or H * W == 0:
        return torch.zeros((B, V, 4), dtype=torch.float32, device=device), grad_bary
    if bins is None:
        bins = bins_from_tri_id(tri_id, F)
    check_bins(bins, B, F, H, W)
    part = torch.empty((bins.num_entries, 12), dtype=torch.float32, device=device)
    _db_bwd_tile_kernel[(bins.tiles_x * bins.tiles_y, B)](
        grad_db,
        pos,
        faces,
        tri_id,
        bary,
        nonempty(bins.bin_tri),
        bins.tile_start,
        bins.tile_count,
        nonempty(part),
        grad_bary,
        V,
        H,
        W,
        bins.tiles_x,
        B * H * W,
        TILE_H=TILE_H,
        TILE_W=TILE_W,
        num_warps=BWD_TILE_WARPS,
    )
    return reduce_entries(part, bins, faces, V, 4), grad_bary


class BaryDerivativesFunction(torch.autograd.Function):
    """The kernels as an autograd Function of ``(pos, bary)``; ``tri_id``, the
    rasterized faces and the bins are held fixed."""

    @staticmethod
    def forward(ctx, pos, bary, tri_id, faces, bins):
        ctx.save_for_backward(pos, bary, tri_id, faces)
        ctx.bins = bins
        return bary_derivatives_forward(pos, faces, tri_id, bary)

    @staticmethod
    def backward(ctx, grad_db):
        pos, bary, tri_id, faces = ctx.saved_tensors
        grad_pos, grad_bary = bary_derivatives_backward(
            grad_db.float().contiguous(), pos, faces, tri_id, bary, bins=ctx.bins
        )
        return grad_pos, grad_bary, None, None, None


def bary_derivatives(fragments) -> torch.Tensor:
    """``db [2,B,H,W,3]`` of Triton :class:`minirast.Fragments` with at least one face,
    differentiable in ``fragments.pos_clip`` and ``fragments.bary``."""
    pos = fragments.pos_clip.float().contiguous()
    faces = fragments.faces.to(torch.int32).contiguous()
    return BaryDerivativesFunction.apply(
        pos, fragments.bary, fragments.tri_id, faces, fragments.bins
    )


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks."""
    return [
        kernel_spec(
            "bary_db_fwd",
            _db_fwd_kernel,
            ARG_TYPES,
            {"BLOCK": PIX_BLOCK},
            num_warps=NUM_WARPS,
        ),
        kernel_spec(
            "bary_db_bwd_tiles",
            _db_bwd_tile_kernel,
            ARG_TYPES,
            {"TILE_H": TILE_H, "TILE_W": TILE_W},
            num_warps=BWD_TILE_WARPS,
        ),
    ]
