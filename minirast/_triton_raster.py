"""Triton kernels of the rasterizer: tiled forward, analytic backward, interpolation.

Implements exactly the math of ``minirast/CONTRACT.md`` (NDC with y down, pixel
centres ``(2c+1)/W - 1``, screen-space edge functions normalised by the signed
area, nearest depth ``sum_i l_i z_i/w_i`` wins, exact ties to the lower triangle
id, perspective-correct barycentrics ``b_i = (l_i/w_i) / sum_j l_j/w_j``).
Inputs arrive validated from the public layer (``minirast/raster.py``):
contiguous float32 positions ``[B,V,4]``, int32 faces ``[F,3]`` with indices in
``[0, V)``, one device, batch already broadcast.

Forward (:func:`rasterize_triton`), three steps:

1. ``_setup_kernel``, one lane per (batch, triangle): screen vertices, signed
   area, validity (``w > eps_w`` for all three vertices, finite non-zero area,
   no two screen vertices equal, culling), a 24-float record (three edges,
   normalisers, ``z/w``, ``1/w``) and the range of 8x8 screen tiles that its
   pixel-centre bounding box touches.
2. Binning with torch ops: one entry per (batch, tile, triangle) pair, stably
   sorted by (batch, tile), so every tile's list is in ascending triangle id.
3. ``_raster_kernel``, one program per (tile, batch): loops over its tile's list
   in chunks of ``TB`` triangles, evaluates ``[pixels, TB]`` edge functions and
   depths in registers (reductions over the chunk stay inside a warp), keeps the
   nearest (ties: lower id), and finally writes id, depth and perspective-correct
   barycentrics of the winner.

Watertightness: each edge function is evaluated with its two end points in a
canonical order (lexicographic on the screen position), and its sign flipped
into the triangle's orientation afterwards. Two triangles sharing an edge thus
compute bit-identical edge values (even with fused multiply-adds on the GPU),
so a pixel centre on the shared edge is covered by both, and none falls through.

Backward, deterministic by default (no float atomics): a one-warp program per
(tile, batch) computes each covered pixel's contribution (12 clip-coordinate
gradients, or 3 corners x channels for interpolation) and, for each bin entry
(tile, triangle) in list order, sums the contributions of the pixels showing
that triangle (one ``[pixels, 16]`` reduction; entries hidden in the tile are
skipped); ``_entry_to_tri_kernel`` sums each triangle's entries in a fixed
order; ``_tri_to_vertex_kernel`` sums each vertex's incident (triangle, corner)
pairs through a vertex-to-corner index made with a stable sort of the faces.
``deterministic=False`` instead adds per-pixel contributions with
``tl.atomic_add`` (fewer kernels, run-to-run bit differences).

The bins of the forward (``rasterize_triton(..., return_bins=True)``) can be
passed to the backward functions; without them ``bary_backward_triton`` bins the
geometry again and ``interpolate_backward_triton`` bins the visible triangles
of ``tri_id`` (a sort of the covered pixels).
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

#: Screen tile (pixels) of the forward and backward kernels: one program per tile.
TILE_H = 8
TILE_W = 8
#: Triangles handled together in one chunk of a tile's list.
TB = 8
#: Float32 values per triangle record written by the setup kernel.
NREC = 24
#: Triangles per program of the setup kernel.
SETUP_BLOCK = 128
#: Pixels per program of the per-pixel kernels (interpolation, atomic backward).
PIX_BLOCK = 128
#: Rows (triangles / vertices) per program of the segmented-sum kernels.
SEG_BLOCK = 64
#: Number of warps of every kernel but the backward tile kernels.
NUM_WARPS = 4
#: Warps of the backward tile kernels: one, so that their per-entry sums over the tile's
#: pixels stay inside a warp (register adds and shuffles, no shared-memory barriers).
BWD_TILE_WARPS = 1
#: Pixel-centre bounding boxes are widened by this many pixels before binning, so a
#: centre exactly on a vertex or edge is never lost to rounding (binning is conservative;
#: coverage is decided by the edge functions alone).
BIN_PAD = 0.01
#: Channels per pass of the interpolation backward tile kernel (3 corners x 4 <= 16).
INTERP_TILE_CHANNELS = 4
#: Largest column blocks of the per-pixel and segmented-sum kernels (smaller widths use
#: the next power of two of the channel count).
MAX_BLOCK_C = 4
MAX_BLOCK_K = 16
MAX_BLOCK_D = 8

_INT_MAX = tl.constexpr(2147483647)


# --------------------------------------------------------------------------- helpers


@triton.jit
def _edge(ax, ay, bx, by, px, py):
    """Edge function of the directed edge a -> b at point p (twice a signed area)."""
    return (ax - px) * (by - py) - (bx - px) * (ay - py)


@triton.jit
def _canon(xa, ya, xb, yb):
    """End points of an edge in canonical (lexicographic) order, and the orientation sign."""
    swap = (xa > xb) | ((xa == xb) & (ya > yb))
    ax = tl.where(swap, xb, xa)
    ay = tl.where(swap, yb, ya)
    bx = tl.where(swap, xa, xb)
    by = tl.where(swap, ya, yb)
    sign = tl.where(swap, -1.0, 1.0)
    return ax, ay, bx, by, sign


@triton.jit
def _record_barycentrics(rp, m, px, py):
    """Screen-space barycentrics (l0, l1, l2) of pixel centres (px, py) in the triangles
    whose setup records start at ``rp`` (record slots 0-11: the three canonical edges,
    12-14: their signs over the area); masked lanes read zeros."""
    l0 = _edge(
        tl.load(rp + 0, mask=m, other=0.0),
        tl.load(rp + 1, mask=m, other=0.0),
        tl.load(rp + 2, mask=m, other=0.0),
        tl.load(rp + 3, mask=m, other=0.0),
        px,
        py,
    ) * tl.load(rp + 12, mask=m, other=0.0)
    l1 = _edge(
        tl.load(rp + 4, mask=m, other=0.0),
        tl.load(rp + 5, mask=m, other=0.0),
        tl.load(rp + 6, mask=m, other=0.0),
        tl.load(rp + 7, mask=m, other=0.0),
        px,
        py,
    ) * tl.load(rp + 13, mask=m, other=0.0)
    l2 = _edge(
        tl.load(rp + 8, mask=m, other=0.0),
        tl.load(rp + 9, mask=m, other=0.0),
        tl.load(rp + 10, mask=m, other=0.0),
        tl.load(rp + 11, mask=m, other=0.0),
        px,
        py,
    ) * tl.load(rp + 14, mask=m, other=0.0)
    return l0, l1, l2


@triton.jit
def _pixel_centres(r, c, H, W):
    """NDC centres of pixels (r, c), computed as in the contract (IEEE division)."""
    px = tl.math.div_rn((2 * c + 1).to(tl.float32), W.to(tl.float32)) - 1.0
    py = tl.math.div_rn((2 * r + 1).to(tl.float32), H.to(tl.float32)) - 1.0
    return px, py


# --------------------------------------------------------------------------- forward


@triton.jit
def _setup_kernel(
    pos_ptr,
    faces_ptr,
    rec_ptr,
    rng_ptr,
    cnt_ptr,
    V,
    F,
    H,
    W,
    eps_w,
    cull,
    bin_pad,
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
    NREC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Per (batch, triangle): validity, 24-float record, touched tile range and count."""
    b = tl.program_id(1).to(tl.int64)
    f = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    fm = f < F
    i0 = tl.load(faces_ptr + f * 3 + 0, mask=fm, other=0)
    i1 = tl.load(faces_ptr + f * 3 + 1, mask=fm, other=0)
    i2 = tl.load(faces_ptr + f * 3 + 2, mask=fm, other=0)
    pb = pos_ptr + b * V * 4
    x0 = tl.load(pb + i0 * 4 + 0, mask=fm, other=0.0)
    y0 = tl.load(pb + i0 * 4 + 1, mask=fm, other=0.0)
    z0 = tl.load(pb + i0 * 4 + 2, mask=fm, other=0.0)
    w0 = tl.load(pb + i0 * 4 + 3, mask=fm, other=1.0)
    x1 = tl.load(pb + i1 * 4 + 0, mask=fm, other=0.0)
    y1 = tl.load(pb + i1 * 4 + 1, mask=fm, other=0.0)
    z1 = tl.load(pb + i1 * 4 + 2, mask=fm, other=0.0)
    w1 = tl.load(pb + i1 * 4 + 3, mask=fm, other=1.0)
    x2 = tl.load(pb + i2 * 4 + 0, mask=fm, other=0.0)
    y2 = tl.load(pb + i2 * 4 + 1, mask=fm, other=0.0)
    z2 = tl.load(pb + i2 * 4 + 2, mask=fm, other=0.0)
    w2 = tl.load(pb + i2 * 4 + 3, mask=fm, other=1.0)
    valid = fm & (w0 > eps_w) & (w1 > eps_w) & (w2 > eps_w)
    one = tl.full([BLOCK], 1.0, tl.float32)
    q0 = tl.math.div_rn(one, tl.where(valid, w0, one))
    q1 = tl.math.div_rn(one, tl.where(valid, w1, one))
    q2 = tl.math.div_rn(one, tl.where(valid, w2, one))
    X0 = x0 * q0
    Y0 = y0 * q0
    X1 = x1 * q1
    Y1 = y1 * q1
    X2 = x2 * q2
    Y2 = y2 * q2
    area = (X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0)
    # Coincident screen vertices are degenerate even if a fused multiply-add leaves a
    # rounding residue in the area.
    same = ((X0 == X1) & (Y0 == Y1)) | ((X1 == X2) & (Y1 == Y2)) | ((X2 == X0) & (Y2 == Y0))
    valid = valid & ~same & (area != 0.0) & (tl.abs(area) < float("inf"))
    valid = valid & ~((cull == 1) & (area < 0.0)) & ~((cull == -1) & (area > 0.0))
    area = tl.where(valid, area, one)

    # Edge i is opposite vertex i: (v1, v2), (v2, v0), (v0, v1).
    ax0, ay0, bx0, by0, s0 = _canon(X1, Y1, X2, Y2)
    ax1, ay1, bx1, by1, s1 = _canon(X2, Y2, X0, Y0)
    ax2, ay2, bx2, by2, s2 = _canon(X0, Y0, X1, Y1)
    rp = rec_ptr + (b * F + f) * NREC
    tl.store(rp + 0, ax0, mask=fm)
    tl.store(rp + 1, ay0, mask=fm)
    tl.store(rp + 2, bx0, mask=fm)
    tl.store(rp + 3, by0, mask=fm)
    tl.store(rp + 4, ax1, mask=fm)
    tl.store(rp + 5, ay1, mask=fm)
    tl.store(rp + 6, bx1, mask=fm)
    tl.store(rp + 7, by1, mask=fm)
    tl.store(rp + 8, ax2, mask=fm)
    tl.store(rp + 9, ay2, mask=fm)
    tl.store(rp + 10, bx2, mask=fm)
    tl.store(rp + 11, by2, mask=fm)
    tl.store(rp + 12, tl.math.div_rn(s0, area), mask=fm)
    tl.store(rp + 13, tl.math.div_rn(s1, area), mask=fm)
    tl.store(rp + 14, tl.math.div_rn(s2, area), mask=fm)
    tl.store(rp + 15, z0 * q0, mask=fm)
    tl.store(rp + 16, z1 * q1, mask=fm)
    tl.store(rp + 17, z2 * q2, mask=fm)
    tl.store(rp + 18, q0, mask=fm)
    tl.store(rp + 19, q1, mask=fm)
    tl.store(rp + 20, q2, mask=fm)
    zero = tl.zeros([BLOCK], tl.float32)
    tl.store(rp + 21, zero, mask=fm)
    tl.store(rp + 22, zero, mask=fm)
    tl.store(rp + 23, zero, mask=fm)

    # Pixel-centre bounding box: column c has its centre at (2c+1)/W - 1.
    xmin = tl.where(valid, tl.minimum(tl.minimum(X0, X1), X2), 0.0)
    xmax = tl.where(valid, tl.maximum(tl.maximum(X0, X1), X2), 0.0)
    ymin = tl.where(valid, tl.minimum(tl.minimum(Y0, Y1), Y2), 0.0)
    ymax = tl.where(valid, tl.maximum(tl.maximum(Y0, Y1), Y2), 0.0)
    wf = W.to(tl.float32)
    hf = H.to(tl.float32)
    cmin = tl.ceil(tl.maximum((xmin + 1.0) * (0.5 * wf) - 0.5 - bin_pad, -1.0))
    cmax = tl.floor(tl.minimum((xmax + 1.0) * (0.5 * wf) - 0.5 + bin_pad, wf))
    rmin = tl.ceil(tl.maximum((ymin + 1.0) * (0.5 * hf) - 0.5 - bin_pad, -1.0))
    rmax = tl.floor(tl.minimum((ymax + 1.0) * (0.5 * hf) - 0.5 + bin_pad, hf))
    c0 = tl.maximum(cmin.to(tl.int32), 0)
    c1 = tl.minimum(cmax.to(tl.int32), W - 1)
    r0 = tl.maximum(rmin.to(tl.int32), 0)
    r1 = tl.minimum(rmax.to(tl.int32), H - 1)
    keep = valid & (c0 <= c1) & (r0 <= r1)
    tx0 = tl.where(keep, c0 // TILE_W, 0)
    tx1 = tl.where(keep, c1 // TILE_W, -1)
    ty0 = tl.where(keep, r0 // TILE_H, 0)
    ty1 = tl.where(keep, r1 // TILE_H, -1)
    gp = rng_ptr + (b * F + f) * 4
    tl.store(gp + 0, tx0, mask=fm)
    tl.store(gp + 1, tx1, mask=fm)
    tl.store(gp + 2, ty0, mask=fm)
    tl.store(gp + 3, ty1, mask=fm)
    tl.store(cnt_ptr + b * F + f, (tx1 - tx0 + 1) * (ty1 - ty0 + 1), mask=fm)


@triton.jit
def _raster_kernel(
    rec_ptr,
    bin_tri_ptr,
    tile_start_ptr,
    tile_count_ptr,
    tri_id_ptr,
    bary_ptr,
    depth_ptr,
    F,
    H,
    W,
    TX,
    bg_depth,
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
    NREC: tl.constexpr,
    TB: tl.constexpr,
):
    """Per (tile, batch): nearest covering triangle of every pixel of the tile.

    Everything is two-dimensional, pixels along axis 0 (``[P, 1]``) and the chunk's
    triangles along axis 1 (``[1, TB]``), so the per-chunk reductions over triangles
    stay inside a warp and the loop needs no layout conversions through shared memory.
    """
    tile = tl.program_id(0)
    bi = tl.program_id(1)
    b = bi.to(tl.int64)
    ntiles = tl.num_programs(0)
    ty = tile // TX
    tx = tile - ty * TX
    p = tl.arange(0, TILE_H * TILE_W)[:, None]
    r = ty * TILE_H + p // TILE_W
    c = tx * TILE_W + p % TILE_W
    pm = (r < H) & (c < W)
    px, py = _pixel_centres(r, c, H, W)

    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    rbase = rec_ptr + b * F * NREC
    # The running winner is kept broadcast over the chunk axis ([P, TB], all columns
    # equal) so that the loop-carried values share the layout of the chunk tensors.
    best_d = tl.full([TILE_H * TILE_W, TB], float("inf"), tl.float32)
    best_t = tl.full([TILE_H * TILE_W, TB], -1, tl.int32)
    for s in range(0, n, TB):
        e = s + tl.arange(0, TB)[None, :]
        em = e < n
        t = tl.load(bin_tri_ptr + start + e, mask=em, other=0)
        rp = rbase + t.to(tl.int64) * NREC
        l0, l1, l2 = _record_barycentrics(rp, em, px, py)
        inside = (l0 >= 0.0) & (l1 >= 0.0) & (l2 >= 0.0) & em
        d = (
            l0 * tl.load(rp + 15, mask=em, other=0.0)
            + l1 * tl.load(rp + 16, mask=em, other=0.0)
            + l2 * tl.load(rp + 17, mask=em, other=0.0)
        )
        d = tl.where(inside, d, float("inf"))
        dmin = tl.min(d, axis=1, keep_dims=True)
        cand = tl.where(inside & (d == dmin), t, _INT_MAX)
        tmin = tl.min(cand, axis=1, keep_dims=True)
        # The list is in ascending id order: a later chunk wins only if strictly nearer.
        upd = dmin < best_d
        best_d = tl.where(upd, dmin, best_d)
        best_t = tl.where(upd, tmin, best_t)
    best_d = tl.min(best_d, axis=1, keep_dims=True)
    best_t = tl.max(best_t, axis=1, keep_dims=True)

    cov = (best_t >= 0) & (best_t < F) & pm
    rp = rbase + tl.where(cov, best_t, 0).to(tl.int64) * NREC
    l0, l1, l2 = _record_barycentrics(rp, cov, px, py)
    u0 = l0 * tl.load(rp + 18, mask=cov, other=0.0)
    u1 = l1 * tl.load(rp + 19, mask=cov, other=0.0)
    u2 = l2 * tl.load(rp + 20, mask=cov, other=0.0)
    ssum = tl.where(cov, u0 + u1 + u2, 1.0)
    pix = (b * H + r) * W + c
    tl.store(tri_id_ptr + pix, tl.where(cov, best_t, -1), mask=pm)
    tl.store(depth_ptr + pix, tl.where(cov, best_d, bg_depth), mask=pm)
    tl.store(bary_ptr + pix * 3 + 0, tl.where(cov, u0 / ssum, 0.0), mask=pm)
    tl.store(bary_ptr + pix * 3 + 1, tl.where(cov, u1 / ssum, 0.0), mask=pm)
    tl.store(bary_ptr + pix * 3 + 2, tl.where(cov, u2 / ssum, 0.0), mask=pm)


# --------------------------------------------------------------------------- backward


@triton.jit
def _bary_pixel_grads(
    pos_ptr, faces_ptr, bary_ptr, gb_ptr, gd_ptr, b, V, pix, t, cov, HAS_GD: tl.constexpr
):
    """d(loss)/d(clip x, y, z, w) of the three corners of each covered pixel's triangle.

    Screen barycentrics are recovered from the perspective-correct ones as
    ``l_i = b_i w_i / sum_j b_j w_j``; with ``q = 1/w``, ``S = sum_j l_j q_j`` and
    ``h_j = (g_j - g.b) / S``: ``dL/dl_j = q_j h_j + gD Z_j``, ``dL/dq_j = l_j h_j``,
    ``dL/dZ_j = gD l_j``; moving vertex k by ``dV`` at a fixed pixel changes ``l`` by
    ``-l_k grad_p(l) . dV``, so ``dL/dV_k = -l_k G`` with ``G = sum_i dL/dl_i grad_p(l_i)``;
    then the chain through ``X = x q``, ``Y = y q``, ``Z = z q``, ``q = 1/w``.
    """
    ts = tl.where(cov, t, 0)
    i0 = tl.load(faces_ptr + ts * 3 + 0, mask=cov, other=0)
    i1 = tl.load(faces_ptr + ts * 3 + 1, mask=cov, other=0)
    i2 = tl.load(faces_ptr + ts * 3 + 2, mask=cov, other=0)
    pb = pos_ptr + b * V * 4
    x0 = tl.load(pb + i0 * 4 + 0, mask=cov, other=0.0)
    y0 = tl.load(pb + i0 * 4 + 1, mask=cov, other=0.0)
    z0 = tl.load(pb + i0 * 4 + 2, mask=cov, other=0.0)
    w0 = tl.load(pb + i0 * 4 + 3, mask=cov, other=1.0)
    x1 = tl.load(pb + i1 * 4 + 0, mask=cov, other=0.0)
    y1 = tl.load(pb + i1 * 4 + 1, mask=cov, other=0.0)
    z1 = tl.load(pb + i1 * 4 + 2, mask=cov, other=0.0)
    w1 = tl.load(pb + i1 * 4 + 3, mask=cov, other=1.0)
    x2 = tl.load(pb + i2 * 4 + 0, mask=cov, other=0.0)
    y2 = tl.load(pb + i2 * 4 + 1, mask=cov, other=0.0)
    z2 = tl.load(pb + i2 * 4 + 2, mask=cov, other=0.0)
    w2 = tl.load(pb + i2 * 4 + 3, mask=cov, other=1.0)
    q0 = 1.0 / w0
    q1 = 1.0 / w1
    q2 = 1.0 / w2
    X0 = x0 * q0
    Y0 = y0 * q0
    X1 = x1 * q1
    Y1 = y1 * q1
    X2 = x2 * q2
    Y2 = y2 * q2
    area = (X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0)
    inv_area = 1.0 / tl.where(cov, area, 1.0)

    bb0 = tl.load(bary_ptr + pix * 3 + 0, mask=cov, other=0.0)
    bb1 = tl.load(bary_ptr + pix * 3 + 1, mask=cov, other=0.0)
    bb2 = tl.load(bary_ptr + pix * 3 + 2, mask=cov, other=0.0)
    g0 = tl.load(gb_ptr + pix * 3 + 0, mask=cov, other=0.0)
    g1 = tl.load(gb_ptr + pix * 3 + 1, mask=cov, other=0.0)
    g2 = tl.load(gb_ptr + pix * 3 + 2, mask=cov, other=0.0)
    if HAS_GD:
        gd = tl.load(gd_ptr + pix, mask=cov, other=0.0)
    else:
        gd = tl.zeros_like(g0)

    bw0 = bb0 * w0
    bw1 = bb1 * w1
    bw2 = bb2 * w2
    sbw = tl.where(cov, bw0 + bw1 + bw2, 1.0)  # = 1 / S
    inv_sbw = 1.0 / sbw
    l0 = bw0 * inv_sbw
    l1 = bw1 * inv_sbw
    l2 = bw2 * inv_sbw
    gdotb = g0 * bb0 + g1 * bb1 + g2 * bb2
    h0 = (g0 - gdotb) * sbw
    h1 = (g1 - gdotb) * sbw
    h2 = (g2 - gdotb) * sbw
    gl0 = q0 * h0 + gd * (z0 * q0)
    gl1 = q1 * h1 + gd * (z1 * q1)
    gl2 = q2 * h2 + gd * (z2 * q2)
    gpx = (gl0 * (Y1 - Y2) + gl1 * (Y2 - Y0) + gl2 * (Y0 - Y1)) * inv_area
    gpy = (gl0 * (X2 - X1) + gl1 * (X0 - X2) + gl2 * (X1 - X0)) * inv_area

    gX0 = -l0 * gpx
    gY0 = -l0 * gpy
    gX1 = -l1 * gpx
    gY1 = -l1 * gpy
    gX2 = -l2 * gpx
    gY2 = -l2 * gpy
    gZ0 = gd * l0
    gZ1 = gd * l1
    gZ2 = gd * l2
    gw0 = -(l0 * h0 + gX0 * x0 + gY0 * y0 + gZ0 * z0) * (q0 * q0)
    gw1 = -(l1 * h1 + gX1 * x1 + gY1 * y1 + gZ1 * z1) * (q1 * q1)
    gw2 = -(l2 * h2 + gX2 * x2 + gY2 * y2 + gZ2 * z2) * (q2 * q2)
    return (
        tl.where(cov, gX0 * q0, 0.0),
        tl.where(cov, gY0 * q0, 0.0),
        tl.where(cov, gZ0 * q0, 0.0),
        tl.where(cov, gw0, 0.0),
        tl.where(cov, gX1 * q1, 0.0),
        tl.where(cov, gY1 * q1, 0.0),
        tl.where(cov, gZ1 * q1, 0.0),
        tl.where(cov, gw1, 0.0),
        tl.where(cov, gX2 * q2, 0.0),
        tl.where(cov, gY2 * q2, 0.0),
        tl.where(cov, gZ2 * q2, 0.0),
        tl.where(cov, gw2, 0.0),
        i0,
        i1,
        i2,
    )


@triton.jit
def _bary_bwd_tile_kernel(
    gb_ptr,
    gd_ptr,
    pos_ptr,
    faces_ptr,
    tri_id_ptr,
    bary_ptr,
    bin_tri_ptr,
    tile_start_ptr,
    tile_count_ptr,
    part_ptr,
    V,
    H,
    W,
    TX,
    HAS_GD: tl.constexpr,
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
):
    """Per (tile, batch): per bin entry, the summed 12 corner gradients of its pixels."""
    tile = tl.program_id(0)
    bi = tl.program_id(1)
    b = bi.to(tl.int64)
    ntiles = tl.num_programs(0)
    ty = tile // TX
    tx = tile - ty * TX
    p = tl.arange(0, TILE_H * TILE_W)[:, None]
    r = ty * TILE_H + p // TILE_W
    c = tx * TILE_W + p % TILE_W
    pm = (r < H) & (c < W)
    pix = (b * H + r) * W + c
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    t = tl.where(cov, t, -1)
    (gx0, gy0, gz0, gw0, gx1, gy1, gz1, gw1, gx2, gy2, gz2, gw2, _i0, _i1, _i2) = _bary_pixel_grads(
        pos_ptr, faces_ptr, bary_ptr, gb_ptr, gd_ptr, b, V, pix, t, cov, HAS_GD
    )
    # The 12 corner gradients as the columns of one [P, 16] tensor (4 columns unused).
    j = tl.arange(0, 16)[None, :]
    contrib = tl.where(j == 0, gx0, 0.0)
    contrib = tl.where(j == 1, gy0, contrib)
    contrib = tl.where(j == 2, gz0, contrib)
    contrib = tl.where(j == 3, gw0, contrib)
    contrib = tl.where(j == 4, gx1, contrib)
    contrib = tl.where(j == 5, gy1, contrib)
    contrib = tl.where(j == 6, gz1, contrib)
    contrib = tl.where(j == 7, gw1, contrib)
    contrib = tl.where(j == 8, gx2, contrib)
    contrib = tl.where(j == 9, gy2, contrib)
    contrib = tl.where(j == 10, gz2, contrib)
    contrib = tl.where(j == 11, gw2, contrib)
    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    for i in range(0, n):
        tt = tl.load(bin_tri_ptr + start + i)
        hit = t == tt
        # Entries of triangles hidden in this tile (about half of them) skip the sums.
        if tl.max(hit.to(tl.int32)) > 0:
            row = tl.sum(tl.where(hit, contrib, 0.0), axis=0, keep_dims=True)
        else:
            row = tl.zeros([1, 16], tl.float32)
        tl.store(part_ptr + (start + i).to(tl.int64) * 12 + j, row, mask=j < 12)


@triton.jit
def _bary_bwd_atomic_kernel(
    gb_ptr,
    gd_ptr,
    pos_ptr,
    faces_ptr,
    tri_id_ptr,
    bary_ptr,
    grad_ptr,
    V,
    HW,
    HAS_GD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Per pixel block: corner gradients added straight into grad_pos (float atomics)."""
    b = tl.program_id(1).to(tl.int64)
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    pm = q < HW
    pix = b * HW + q
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    (gx0, gy0, gz0, gw0, gx1, gy1, gz1, gw1, gx2, gy2, gz2, gw2, i0, i1, i2) = _bary_pixel_grads(
        pos_ptr, faces_ptr, bary_ptr, gb_ptr, gd_ptr, b, V, pix, t, cov, HAS_GD
    )
    g0 = grad_ptr + (b * V + i0) * 4
    g1 = grad_ptr + (b * V + i1) * 4
    g2 = grad_ptr + (b * V + i2) * 4
    tl.atomic_add(g0 + 0, gx0, mask=cov)
    tl.atomic_add(g0 + 1, gy0, mask=cov)
    tl.atomic_add(g0 + 2, gz0, mask=cov)
    tl.atomic_add(g0 + 3, gw0, mask=cov)
    tl.atomic_add(g1 + 0, gx1, mask=cov)
    tl.atomic_add(g1 + 1, gy1, mask=cov)
    tl.atomic_add(g1 + 2, gz1, mask=cov)
    tl.atomic_add(g1 + 3, gw1, mask=cov)
    tl.atomic_add(g2 + 0, gx2, mask=cov)
    tl.atomic_add(g2 + 1, gy2, mask=cov)
    tl.atomic_add(g2 + 2, gz2, mask=cov)
    tl.atomic_add(g2 + 3, gw2, mask=cov)


@triton.jit
def _entry_to_tri_kernel(
    part_ptr,
    tri_entries_ptr,
    tri_start_ptr,
    tri_count_ptr,
    out_ptr,
    NROWS,
    K,
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """out[row, :K] = sum over i of part[tri_entries[tri_start[row] + i], :K], i ascending."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    rm = rows < NROWS
    cm = cols < K
    start = tl.load(tri_start_ptr + rows, mask=rm, other=0)
    cnt = tl.load(tri_count_ptr + rows, mask=rm, other=0)
    acc = tl.zeros([BLOCK_R, BLOCK_K], tl.float32)
    for i in range(0, tl.max(cnt, axis=0)):
        m = rm & (i < cnt)
        e = tl.load(tri_entries_ptr + start + i, mask=m, other=0).to(tl.int64)
        acc += tl.load(
            part_ptr + e[:, None] * K + cols[None, :], mask=m[:, None] & cm[None, :], other=0.0
        )
    tl.store(
        out_ptr + rows.to(tl.int64)[:, None] * K + cols[None, :],
        acc,
        mask=rm[:, None] & cm[None, :],
    )


@triton.jit
def _tri_to_vertex_kernel(
    tri_ptr,
    corners_ptr,
    vstart_ptr,
    vcount_ptr,
    out_ptr,
    V,
    F,
    D,
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[b, v, :D] = sum over the corners (f, k) of vertex v (ascending f) of tri[b, f, k, :D]."""
    b = tl.program_id(1).to(tl.int64)
    v = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    d = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
    vm = v < V
    dm = d < D
    start = tl.load(vstart_ptr + v, mask=vm, other=0)
    cnt = tl.load(vcount_ptr + v, mask=vm, other=0)
    acc = tl.zeros([BLOCK_V, BLOCK_D], tl.float32)
    for i in range(0, tl.max(cnt, axis=0)):
        m = vm & (i < cnt)
        corner = tl.load(corners_ptr + start + i, mask=m, other=0).to(tl.int64)
        src = tri_ptr + (b * F * 3 + corner)[:, None] * D + d[None, :]
        acc += tl.load(src, mask=m[:, None] & dm[None, :], other=0.0)
    tl.store(out_ptr + (b * V + v)[:, None] * D + d[None, :], acc, mask=vm[:, None] & dm[None, :])


# --------------------------------------------------------------------------- interpolation


@triton.jit
def _interp_fwd_kernel(
    attr_ptr,
    faces_ptr,
    tri_id_ptr,
    bary_ptr,
    out_ptr,
    V,
    HW,
    C,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """out[b, pixel, c] = sum_k bary_k attr[b, face[tri, k], c]; zeros on background."""
    b = tl.program_id(1).to(tl.int64)
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    cc = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)
    pm = q < HW
    cm = cc < C
    pix = b * HW + q
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    ts = tl.where(cov, t, 0)
    i0 = tl.load(faces_ptr + ts * 3 + 0, mask=cov, other=0)
    i1 = tl.load(faces_ptr + ts * 3 + 1, mask=cov, other=0)
    i2 = tl.load(faces_ptr + ts * 3 + 2, mask=cov, other=0)
    b0 = tl.load(bary_ptr + pix * 3 + 0, mask=cov, other=0.0)
    b1 = tl.load(bary_ptr + pix * 3 + 1, mask=cov, other=0.0)
    b2 = tl.load(bary_ptr + pix * 3 + 2, mask=cov, other=0.0)
    m2 = cov[:, None] & cm[None, :]
    ab = attr_ptr + b * V * C
    a0 = tl.load(ab + i0.to(tl.int64)[:, None] * C + cc[None, :], mask=m2, other=0.0)
    a1 = tl.load(ab + i1.to(tl.int64)[:, None] * C + cc[None, :], mask=m2, other=0.0)
    a2 = tl.load(ab + i2.to(tl.int64)[:, None] * C + cc[None, :], mask=m2, other=0.0)
    out = b0[:, None] * a0 + b1[:, None] * a1 + b2[:, None] * a2
    tl.store(out_ptr + pix[:, None] * C + cc[None, :], out, mask=pm[:, None] & cm[None, :])


@triton.jit
def _interp_grad_bary(
    go_ptr, attr_ptr, b, V, C, pix, cov, i0, i1, i2, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr
):
    """grad_bary_k = sum_c grad_out[pixel, c] attr[face k, c] for ``[BLOCK, 1]`` pixels,
    channel blocks in order; returns three ``[BLOCK, 1]`` tensors."""
    gb0 = tl.zeros([BLOCK, 1], tl.float32)
    gb1 = tl.zeros([BLOCK, 1], tl.float32)
    gb2 = tl.zeros([BLOCK, 1], tl.float32)
    ab = attr_ptr + b * V * C
    for c0 in range(0, C, BLOCK_C):
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        m2 = cov & (cc < C)
        g = tl.load(go_ptr + pix * C + cc, mask=m2, other=0.0)
        a0 = tl.load(ab + i0.to(tl.int64) * C + cc, mask=m2, other=0.0)
        a1 = tl.load(ab + i1.to(tl.int64) * C + cc, mask=m2, other=0.0)
        a2 = tl.load(ab + i2.to(tl.int64) * C + cc, mask=m2, other=0.0)
        gb0 += tl.sum(g * a0, axis=1, keep_dims=True)
        gb1 += tl.sum(g * a1, axis=1, keep_dims=True)
        gb2 += tl.sum(g * a2, axis=1, keep_dims=True)
    return gb0, gb1, gb2


@triton.jit
def _interp_bwd_tile_kernel(
    go_ptr,
    attr_ptr,
    faces_ptr,
    tri_id_ptr,
    bary_ptr,
    bin_tri_ptr,
    tile_start_ptr,
    tile_count_ptr,
    part_ptr,
    gbary_ptr,
    V,
    H,
    W,
    TX,
    C,
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Per (tile, batch): grad_bary of its pixels, and per bin entry and corner k the sums
    ``sum_pixels bary_k grad_out[:, c]`` (entry row layout ``[3, C]``).

    Channels go in passes of ``BLOCK_C`` (at most 5); within a pass the three corners'
    values are the columns ``k * BLOCK_C + c`` of one ``[P, 16]`` tensor, so each entry
    needs one reduction over the tile's pixels.
    """
    tile = tl.program_id(0)
    bi = tl.program_id(1)
    b = bi.to(tl.int64)
    ntiles = tl.num_programs(0)
    ty = tile // TX
    tx = tile - ty * TX
    p = tl.arange(0, TILE_H * TILE_W)[:, None]
    r = ty * TILE_H + p // TILE_W
    c = tx * TILE_W + p % TILE_W
    pm = (r < H) & (c < W)
    pix = (b * H + r) * W + c
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    t = tl.where(cov, t, -1)
    ts = tl.where(cov, t, 0)
    i0 = tl.load(faces_ptr + ts * 3 + 0, mask=cov, other=0)
    i1 = tl.load(faces_ptr + ts * 3 + 1, mask=cov, other=0)
    i2 = tl.load(faces_ptr + ts * 3 + 2, mask=cov, other=0)
    b0 = tl.load(bary_ptr + pix * 3 + 0, mask=cov, other=0.0)
    b1 = tl.load(bary_ptr + pix * 3 + 1, mask=cov, other=0.0)
    b2 = tl.load(bary_ptr + pix * 3 + 2, mask=cov, other=0.0)
    j = tl.arange(0, 16)[None, :]
    k = j // BLOCK_C
    ch_of_j = j - k * BLOCK_C
    ab = attr_ptr + b * V * C
    gb0 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    gb1 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    gb2 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    for c0 in range(0, C, BLOCK_C):
        cm = (k < 3) & (c0 + ch_of_j < C)
        v = tl.zeros([TILE_H * TILE_W, 16], tl.float32)
        for cq in tl.static_range(BLOCK_C):
            m = cov & ((tl.zeros_like(t) + (c0 + cq)) < C)
            g = tl.load(go_ptr + pix * C + c0 + cq, mask=m, other=0.0)
            gb0 += g * tl.load(ab + i0 * C + c0 + cq, mask=m, other=0.0)
            gb1 += g * tl.load(ab + i1 * C + c0 + cq, mask=m, other=0.0)
            gb2 += g * tl.load(ab + i2 * C + c0 + cq, mask=m, other=0.0)
            v = tl.where(j == cq, b0 * g, v)
            v = tl.where(j == BLOCK_C + cq, b1 * g, v)
            v = tl.where(j == 2 * BLOCK_C + cq, b2 * g, v)
        ch = c0 + ch_of_j
        for i in range(0, n):
            tt = tl.load(bin_tri_ptr + start + i)
            hit = t == tt
            # Entries of triangles hidden in this tile (about half of them) skip the sum.
            if tl.max(hit.to(tl.int32)) > 0:
                row = tl.sum(tl.where(hit, v, 0.0), axis=0, keep_dims=True)
            else:
                row = tl.zeros([1, 16], tl.float32)
            tl.store(part_ptr + (start + i).to(tl.int64) * (3 * C) + k * C + ch, row, mask=cm)
    tl.store(gbary_ptr + pix * 3 + 0, gb0, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 1, gb1, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 2, gb2, mask=pm)


@triton.jit
def _interp_bwd_atomic_kernel(
    go_ptr,
    attr_ptr,
    faces_ptr,
    tri_id_ptr,
    bary_ptr,
    gattr_ptr,
    gbary_ptr,
    V,
    HW,
    C,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Per pixel block: grad_bary, and grad_attr added with float atomics."""
    b = tl.program_id(1).to(tl.int64)
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[:, None]
    pm = q < HW
    pix = b * HW + q
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    ts = tl.where(cov, t, 0)
    i0 = tl.load(faces_ptr + ts * 3 + 0, mask=cov, other=0)
    i1 = tl.load(faces_ptr + ts * 3 + 1, mask=cov, other=0)
    i2 = tl.load(faces_ptr + ts * 3 + 2, mask=cov, other=0)
    b0 = tl.load(bary_ptr + pix * 3 + 0, mask=cov, other=0.0)
    b1 = tl.load(bary_ptr + pix * 3 + 1, mask=cov, other=0.0)
    b2 = tl.load(bary_ptr + pix * 3 + 2, mask=cov, other=0.0)
    gb0, gb1, gb2 = _interp_grad_bary(
        go_ptr, attr_ptr, b, V, C, pix, cov, i0, i1, i2, BLOCK, BLOCK_C
    )
    tl.store(gbary_ptr + pix * 3 + 0, gb0, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 1, gb1, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 2, gb2, mask=pm)
    gb = gattr_ptr + b * V * C
    for c0 in range(0, C, BLOCK_C):
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        m2 = cov & (cc < C)
        g = tl.load(go_ptr + pix * C + cc, mask=m2, other=0.0)
        tl.atomic_add(gb + i0.to(tl.int64) * C + cc, b0 * g, mask=m2)
        tl.atomic_add(gb + i1.to(tl.int64) * C + cc, b1 * g, mask=m2)
        tl.atomic_add(gb + i2.to(tl.int64) * C + cc, b2 * g, mask=m2)


# --------------------------------------------------------------------------- host side


@dataclasses.dataclass(frozen=True)
class RasterBins:
    """Per-tile triangle lists of one rasterization (batch ``B``, ``F`` faces).

    Entries are (batch, tile, triangle) triples, sorted by (batch, tile) and, within a
    tile, by ascending triangle id. ``bin_tri[tile_start[b*T+t] : +tile_count[b*T+t]]``
    are the triangle ids of tile ``t`` of image ``b`` (``T = tiles_x * tiles_y``,
    tiles of ``tile_h x tile_w`` pixels, row-major). ``tri_entries[tri_start[b*F+f] :
    +tri_count[b*F+f]]`` are the entry positions of triangle ``f`` of image ``b``.
    """

    batch: int
    num_faces: int
    height: int
    width: int
    tile_h: int
    tile_w: int
    tiles_x: int
    tiles_y: int
    bin_tri: torch.Tensor
    tile_start: torch.Tensor
    tile_count: torch.Tensor
    tri_entries: torch.Tensor
    tri_start: torch.Tensor
    tri_count: torch.Tensor

    @property
    def num_entries(self) -> int:
        return int(self.bin_tri.shape[0])


def _grid_tiles(height: int, width: int) -> tuple[int, int]:
    return triton.cdiv(width, TILE_W), triton.cdiv(height, TILE_H)


def _nonempty(t: torch.Tensor) -> torch.Tensor:
    """A kernel argument that is never a zero-size tensor (its pointer is never read)."""
    return t if t.numel() > 0 else torch.zeros(1, dtype=t.dtype, device=t.device)


def _bins_from_pairs(
    key: torch.Tensor,
    tri: torch.Tensor,
    batch_tri: torch.Tensor,
    B: int,
    F: int,
    T: int,
    *,
    grouped: bool,
) -> tuple[torch.Tensor, ...]:
    """Sort (tile key, triangle) entries and build the tile and triangle indices.

    ``key = b*T + tile`` per entry, ``tri`` its triangle id and ``batch_tri = b*F + tri``.
    ``grouped``: the entries are already in ascending ``batch_tri`` order (as the
    geometric binning makes them), so the per-triangle index is the inverse of the
    tile sort's permutation instead of a second sort.
    """
    n = key.shape[0]
    small = torch.int32 if B * T < 2**31 else torch.int64
    _, order = torch.sort(key.to(small), stable=True)
    sorted_key = key[order]
    bin_tri = tri[order].to(torch.int32)
    tile_count = torch.bincount(sorted_key, minlength=B * T)
    tile_start = torch.cumsum(tile_count, 0) - tile_count
    if grouped:
        tri_entries = torch.empty_like(order)
        tri_entries[order] = torch.arange(n, device=key.device)
        tri_count = torch.bincount(batch_tri, minlength=B * F)
    else:
        sorted_bt = batch_tri[order]
        _, tri_entries = torch.sort(sorted_bt, stable=True)
        tri_count = torch.bincount(sorted_bt, minlength=B * F)
    tri_start = torch.cumsum(tri_count, 0) - tri_count
    return (
        bin_tri,
        tile_start.to(torch.int32),
        tile_count.to(torch.int32),
        tri_entries.to(torch.int32),
        tri_start.to(torch.int32),
        tri_count.to(torch.int32),
    )


def _setup_and_bin(
    pos_clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, eps_w: float, cull: int
) -> tuple[torch.Tensor, RasterBins]:
    """Run the setup kernel and bin the valid triangles to tiles (geometric bins)."""
    B, V = pos_clip.shape[0], pos_clip.shape[1]
    F = faces.shape[0]
    device = pos_clip.device
    TX, TY = _grid_tiles(height, width)
    T = TX * TY
    rec = torch.empty((B, F, NREC), dtype=torch.float32, device=device)
    rng = torch.empty((B, F, 4), dtype=torch.int32, device=device)
    cnt = torch.zeros((B, F), dtype=torch.int32, device=device)
    if B * F > 0:
        _setup_kernel[(triton.cdiv(F, SETUP_BLOCK), B)](
            pos_clip,
            faces,
            rec,
            rng,
            cnt,
            V,
            F,
            height,
            width,
            float(eps_w),
            int(cull),
            BIN_PAD,
            TILE_H=TILE_H,
            TILE_W=TILE_W,
            NREC=NREC,
            BLOCK=SETUP_BLOCK,
            num_warps=NUM_WARPS,
        )
    counts = cnt.view(-1).to(torch.int64)
    total = int(counts.sum()) if counts.numel() else 0
    if total >= 2**31 - 1:
        raise RuntimeError(
            f"the mesh touches {total} (tile, triangle) pairs, more than the 2**31 - 1 the "
            "Triton rasterizer indexes; render a smaller batch or resolution"
        )
    bt = torch.repeat_interleave(torch.arange(B * F, device=device), counts, output_size=total)
    first = torch.cumsum(counts, 0) - counts
    j = torch.arange(total, device=device) - first[bt]
    rg = rng.view(-1, 4)[bt].to(torch.int64)
    nx = rg[:, 1] - rg[:, 0] + 1
    tx = rg[:, 0] + j % nx
    ty = rg[:, 2] + torch.div(j, nx, rounding_mode="floor")
    key = (torch.div(bt, F, rounding_mode="floor") * TY + ty) * TX + tx if F > 0 else bt
    tri = bt % F if F > 0 else bt
    parts = _bins_from_pairs(key, tri, bt, B, F, T, grouped=True)
    bins = RasterBins(B, F, height, width, TILE_H, TILE_W, TX, TY, *parts)
    return rec, bins


def bins_from_tri_id(tri_id: torch.Tensor, num_faces: int) -> RasterBins:
    """Bins holding, per tile, exactly the triangles visible in it (from a tri_id map).

    Used by the backward functions when the forward's bins are not passed in; it costs
    a sort of the covered pixels.
    """
    B, H, W = tri_id.shape
    F = int(num_faces)
    TX, TY = _grid_tiles(H, W)
    T = TX * TY
    device = tri_id.device
    rows = torch.arange(H, device=device) // TILE_H
    cols = torch.arange(W, device=device) // TILE_W
    tile = (rows[:, None] * TX + cols[None, :]).to(torch.int64)
    bidx = torch.arange(B, device=device, dtype=torch.int64)[:, None, None]
    t = tri_id.to(torch.int64)
    keys = ((bidx * T + tile[None]) * max(F, 1) + t)[t >= 0]
    pairs = torch.unique(keys)
    key = torch.div(pairs, max(F, 1), rounding_mode="floor")
    tri = pairs % max(F, 1)
    bt = torch.div(key, T, rounding_mode="floor") * F + tri
    parts = _bins_from_pairs(key, tri, bt, B, F, T, grouped=False)
    return RasterBins(B, F, H, W, TILE_H, TILE_W, TX, TY, *parts)


def _check_bins(bins: RasterBins, B: int, F: int, H: int, W: int) -> None:
    if not isinstance(bins, RasterBins):
        raise TypeError(f"bins must be a RasterBins from rasterize_triton, got {type(bins)}")
    got = (bins.batch, bins.num_faces, bins.height, bins.width, bins.tile_h, bins.tile_w)
    want = (B, F, H, W, TILE_H, TILE_W)
    if got != want:
        raise ValueError(
            f"bins were made for (B, F, H, W, tile_h, tile_w) = {got}, these inputs need {want}"
        )


def rasterize_triton(
    pos_clip: torch.Tensor,
    faces: torch.Tensor,
    height: int,
    width: int,
    eps_w: float,
    cull: int,
    *,
    background_depth: float = 0.0,
    return_bins: bool = False,
):
    """Rasterize ``pos_clip [B,V,4]`` (float32) with ``faces [F,3]`` (int32).

    Returns ``(tri_id [B,H,W] int32 (-1 background), bary [B,H,W,3] float32
    (perspective-correct, zeros on background), depth [B,H,W] float32 (z/w of the
    nearest triangle, ``background_depth`` on background))``, plus the
    :class:`RasterBins` when ``return_bins`` (pass them to the backward functions to
    skip rebuilding them). ``cull``: 0 none, 1 drop signed NDC area < 0, -1 drop > 0.
    Deterministic: the same inputs give bitwise the same outputs.
    """
    B = pos_clip.shape[0]
    device = pos_clip.device
    tri_id = torch.empty((B, height, width), dtype=torch.int32, device=device)
    bary = torch.empty((B, height, width, 3), dtype=torch.float32, device=device)
    depth = torch.empty((B, height, width), dtype=torch.float32, device=device)
    rec, bins = _setup_and_bin(pos_clip, faces, height, width, eps_w, cull)
    if B * height * width > 0:
        _raster_kernel[(bins.tiles_x * bins.tiles_y, B)](
            _nonempty(rec),
            _nonempty(bins.bin_tri),
            bins.tile_start,
            bins.tile_count,
            tri_id,
            bary,
            depth,
            faces.shape[0],
            height,
            width,
            bins.tiles_x,
            float(background_depth),
            TILE_H=TILE_H,
            TILE_W=TILE_W,
            NREC=NREC,
            TB=TB,
            num_warps=NUM_WARPS,
        )
    if return_bins:
        return tri_id, bary, depth, bins
    return tri_id, bary, depth


def _vertex_corners(faces: torch.Tensor, V: int) -> tuple[torch.Tensor, ...]:
    """Corners (f*3 + k) of every vertex, ascending, as (corners, start, count) int32."""
    vid = faces.reshape(-1).to(torch.int64)
    _, corners = torch.sort(vid, stable=True)
    count = torch.bincount(vid, minlength=V)
    start = torch.cumsum(count, 0) - count
    return corners.to(torch.int32), start.to(torch.int32), count.to(torch.int32)


def _reduce_entries(part: torch.Tensor, bins: RasterBins, faces: torch.Tensor, V: int, D: int):
    """Sum per-entry rows ``[N, 3, D]`` per triangle, then per vertex: ``[B, V, D]``."""
    B, F = bins.batch, bins.num_faces
    K = 3 * D
    device = part.device
    tri = torch.empty((B * F, K), dtype=torch.float32, device=device)
    block_k = min(triton.next_power_of_2(K), MAX_BLOCK_K)
    _entry_to_tri_kernel[(triton.cdiv(B * F, SEG_BLOCK), triton.cdiv(K, block_k))](
        _nonempty(part),
        _nonempty(bins.tri_entries),
        bins.tri_start,
        bins.tri_count,
        tri,
        B * F,
        K,
        BLOCK_R=SEG_BLOCK,
        BLOCK_K=block_k,
        num_warps=NUM_WARPS,
    )
    corners, vstart, vcount = _vertex_corners(faces, V)
    out = torch.empty((B, V, D), dtype=torch.float32, device=device)
    block_d = min(triton.next_power_of_2(D), MAX_BLOCK_D)
    _tri_to_vertex_kernel[(triton.cdiv(V, SEG_BLOCK), B, triton.cdiv(D, block_d))](
        tri,
        corners,
        vstart,
        vcount,
        out,
        V,
        F,
        D,
        BLOCK_V=SEG_BLOCK,
        BLOCK_D=block_d,
        num_warps=NUM_WARPS,
    )
    return out


def bary_backward_triton(
    grad_bary: torch.Tensor,
    grad_depth: torch.Tensor | None,
    pos_clip: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    bary: torch.Tensor,
    *,
    bins: RasterBins | None = None,
    deterministic: bool = True,
) -> torch.Tensor:
    """Gradient of a loss w.r.t. ``pos_clip [B,V,4]`` through ``bary`` (and ``depth``).

    ``grad_bary [B,H,W,3]`` and ``grad_depth [B,H,W]`` (or None) are the upstream
    gradients; ``tri_id``/``bary`` the forward outputs (tri_id held fixed, pixel
    centres fixed). Background pixels contribute nothing. Deterministic (bitwise
    repeatable) unless ``deterministic=False``, which uses float atomics. ``bins``:
    the forward's :class:`RasterBins` (rebuilt from the geometry when None).
    """
    B, V = pos_clip.shape[0], pos_clip.shape[1]
    H, W = tri_id.shape[1], tri_id.shape[2]
    F = faces.shape[0]
    device = pos_clip.device
    has_gd = grad_depth is not None
    gd = grad_depth if has_gd else grad_bary
    if B * V == 0 or F == 0 or H * W == 0:
        return torch.zeros((B, V, 4), dtype=torch.float32, device=device)
    if not deterministic:
        grad = torch.zeros((B, V, 4), dtype=torch.float32, device=device)
        _bary_bwd_atomic_kernel[(triton.cdiv(H * W, PIX_BLOCK), B)](
            grad_bary,
            gd,
            pos_clip,
            faces,
            tri_id,
            bary,
            grad,
            V,
            H * W,
            HAS_GD=has_gd,
            BLOCK=PIX_BLOCK,
            num_warps=NUM_WARPS,
        )
        return grad
    if bins is None:
        # Any eps_w / cull gives a superset of the visible (tile, triangle) pairs needed.
        _, bins = _setup_and_bin(pos_clip, faces, H, W, 0.0, 0)
    _check_bins(bins, B, F, H, W)
    part = torch.empty((bins.num_entries, 12), dtype=torch.float32, device=device)
    _bary_bwd_tile_kernel[(bins.tiles_x * bins.tiles_y, B)](
        grad_bary,
        gd,
        pos_clip,
        faces,
        tri_id,
        bary,
        _nonempty(bins.bin_tri),
        bins.tile_start,
        bins.tile_count,
        _nonempty(part),
        V,
        H,
        W,
        bins.tiles_x,
        HAS_GD=has_gd,
        TILE_H=TILE_H,
        TILE_W=TILE_W,
        num_warps=BWD_TILE_WARPS,
    )
    return _reduce_entries(part, bins, faces, V, 4)


def interpolate_forward_triton(
    attr: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor, bary: torch.Tensor
) -> torch.Tensor:
    """``out[b,h,w,:] = sum_k bary[b,h,w,k] attr[b, faces[tri_id, k], :]``; zeros on
    background. ``attr [B,V,C]`` float32, returns ``[B,H,W,C]`` float32."""
    B, V, C = attr.shape
    H, W = tri_id.shape[1], tri_id.shape[2]
    out = torch.empty((B, H, W, C), dtype=torch.float32, device=attr.device)
    if out.numel() == 0:
        return out
    block_c = min(triton.next_power_of_2(C), MAX_BLOCK_C)
    _interp_fwd_kernel[(triton.cdiv(H * W, PIX_BLOCK), B, triton.cdiv(C, block_c))](
        _nonempty(attr),
        _nonempty(faces),
        tri_id,
        bary,
        out,
        V,
        H * W,
        C,
        BLOCK=PIX_BLOCK,
        BLOCK_C=block_c,
        num_warps=NUM_WARPS,
    )
    return out


def interpolate_backward_triton(
    grad_out: torch.Tensor,
    attr: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    bary: torch.Tensor,
    *,
    bins: RasterBins | None = None,
    deterministic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`interpolate_forward_triton`: ``(grad_attr [B,V,C],
    grad_bary [B,H,W,3])``, both float32, zero on background. Deterministic unless
    ``deterministic=False`` (float atomics). ``bins``: the forward's
    :class:`RasterBins`; when None they are built from ``tri_id`` (a sort of the
    covered pixels)."""
    B, V, C = attr.shape
    H, W = tri_id.shape[1], tri_id.shape[2]
    F = faces.shape[0]
    device = attr.device
    grad_bary = torch.zeros((B, H, W, 3), dtype=torch.float32, device=device)
    if B * V * C == 0 or F == 0 or H * W == 0:
        return torch.zeros((B, V, C), dtype=torch.float32, device=device), grad_bary
    block_c = min(triton.next_power_of_2(C), MAX_BLOCK_C)
    if not deterministic:
        grad_attr = torch.zeros((B, V, C), dtype=torch.float32, device=device)
        _interp_bwd_atomic_kernel[(triton.cdiv(H * W, PIX_BLOCK), B)](
            grad_out,
            attr,
            faces,
            tri_id,
            bary,
            grad_attr,
            grad_bary,
            V,
            H * W,
            C,
            BLOCK=PIX_BLOCK,
            BLOCK_C=block_c,
            num_warps=NUM_WARPS,
        )
        return grad_attr, grad_bary
    if V * C >= 2**31:
        raise ValueError(
            f"attr has V * C = {V * C} values per image; at most 2**31 - 1 are supported"
        )
    if bins is None:
        bins = bins_from_tri_id(tri_id, F)
    _check_bins(bins, B, F, H, W)
    part = torch.empty((bins.num_entries, 3 * C), dtype=torch.float32, device=device)
    _interp_bwd_tile_kernel[(bins.tiles_x * bins.tiles_y, B)](
        grad_out,
        attr,
        faces,
        tri_id,
        bary,
        _nonempty(bins.bin_tri),
        bins.tile_start,
        bins.tile_count,
        _nonempty(part),
        grad_bary,
        V,
        H,
        W,
        bins.tiles_x,
        C,
        TILE_H=TILE_H,
        TILE_W=TILE_W,
        BLOCK_C=INTERP_TILE_CHANNELS,
        num_warps=BWD_TILE_WARPS,
    )
    return _reduce_entries(part, bins, faces, V, C), grad_bary


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks
    (``bench.kernel_resources.module_resources("minirast._triton_raster")``)."""
    tile = {"TILE_H": TILE_H, "TILE_W": TILE_W}
    specs = [
        dict(
            name="raster_setup",
            fn=_setup_kernel,
            signature={
                "pos_ptr": "*fp32",
                "faces_ptr": "*i32",
                "rec_ptr": "*fp32",
                "rng_ptr": "*i32",
                "cnt_ptr": "*i32",
                "V": "i32",
                "F": "i32",
                "H": "i32",
                "W": "i32",
                "eps_w": "fp32",
                "cull": "i32",
                "bin_pad": "fp32",
                "TILE_H": "constexpr",
                "TILE_W": "constexpr",
                "NREC": "constexpr",
                "BLOCK": "constexpr",
            },
            constexprs={**tile, "NREC": NREC, "BLOCK": SETUP_BLOCK},
        ),
        dict(
            name="raster_tiles",
            fn=_raster_kernel,
            signature={
                "rec_ptr": "*fp32",
                "bin_tri_ptr": "*i32",
                "tile_start_ptr": "*i32",
                "tile_count_ptr": "*i32",
                "tri_id_ptr": "*i32",
                "bary_ptr": "*fp32",
                "depth_ptr": "*fp32",
                "F": "i32",
                "H": "i32",
                "W": "i32",
                "TX": "i32",
                "bg_depth": "fp32",
                "TILE_H": "constexpr",
                "TILE_W": "constexpr",
                "NREC": "constexpr",
                "TB": "constexpr",
            },
            constexprs={**tile, "NREC": NREC, "TB": TB},
        ),
        dict(
            name="entry_to_tri",
            fn=_entry_to_tri_kernel,
            signature={
                "part_ptr": "*fp32",
                "tri_entries_ptr": "*i32",
                "tri_start_ptr": "*i32",
                "tri_count_ptr": "*i32",
                "out_ptr": "*fp32",
                "NROWS": "i32",
                "K": "i32",
                "BLOCK_R": "constexpr",
                "BLOCK_K": "constexpr",
            },
            constexprs={"BLOCK_R": SEG_BLOCK, "BLOCK_K": 16},
        ),
        dict(
            name="tri_to_vertex",
            fn=_tri_to_vertex_kernel,
            signature={
                "tri_ptr": "*fp32",
                "corners_ptr": "*i32",
                "vstart_ptr": "*i32",
                "vcount_ptr": "*i32",
                "out_ptr": "*fp32",
                "V": "i32",
                "F": "i32",
                "D": "i32",
                "BLOCK_V": "constexpr",
                "BLOCK_D": "constexpr",
            },
            constexprs={"BLOCK_V": SEG_BLOCK, "BLOCK_D": 4},
        ),
        dict(
            name="interp_fwd",
            fn=_interp_fwd_kernel,
            signature={
                "attr_ptr": "*fp32",
                "faces_ptr": "*i32",
                "tri_id_ptr": "*i32",
                "bary_ptr": "*fp32",
                "out_ptr": "*fp32",
                "V": "i32",
                "HW": "i32",
                "C": "i32",
                "BLOCK": "constexpr",
                "BLOCK_C": "constexpr",
            },
            constexprs={"BLOCK": PIX_BLOCK, "BLOCK_C": 4},
        ),
    ]
    for has_gd in (True, False):
        specs.append(
            dict(
                name=f"bary_bwd_tiles[gd={int(has_gd)}]",
                fn=_bary_bwd_tile_kernel,
                signature={
                    "gb_ptr": "*fp32",
                    "gd_ptr": "*fp32",
                    "pos_ptr": "*fp32",
                    "faces_ptr": "*i32",
                    "tri_id_ptr": "*i32",
                    "bary_ptr": "*fp32",
                    "bin_tri_ptr": "*i32",
                    "tile_start_ptr": "*i32",
                    "tile_count_ptr": "*i32",
                    "part_ptr": "*fp32",
                    "V": "i32",
                    "H": "i32",
                    "W": "i32",
                    "TX": "i32",
                    "HAS_GD": "constexpr",
                    "TILE_H": "constexpr",
                    "TILE_W": "constexpr",
                },
                constexprs={**tile, "HAS_GD": has_gd},
            )
        )
        specs.append(
            dict(
                name=f"bary_bwd_atomic[gd={int(has_gd)}]",
                fn=_bary_bwd_atomic_kernel,
                signature={
                    "gb_ptr": "*fp32",
                    "gd_ptr": "*fp32",
                    "pos_ptr": "*fp32",
                    "faces_ptr": "*i32",
                    "tri_id_ptr": "*i32",
                    "bary_ptr": "*fp32",
                    "grad_ptr": "*fp32",
                    "V": "i32",
                    "HW": "i32",
                    "HAS_GD": "constexpr",
                    "BLOCK": "constexpr",
                },
                constexprs={"HAS_GD": has_gd, "BLOCK": PIX_BLOCK},
            )
        )
    specs.append(
        dict(
            name="interp_bwd_tiles",
            fn=_interp_bwd_tile_kernel,
            signature={
                "go_ptr": "*fp32",
                "attr_ptr": "*fp32",
                "faces_ptr": "*i32",
                "tri_id_ptr": "*i32",
                "bary_ptr": "*fp32",
                "bin_tri_ptr": "*i32",
                "tile_start_ptr": "*i32",
                "tile_count_ptr": "*i32",
                "part_ptr": "*fp32",
                "gbary_ptr": "*fp32",
                "V": "i32",
                "H": "i32",
                "W": "i32",
                "TX": "i32",
                "C": "i32",
                "TILE_H": "constexpr",
                "TILE_W": "constexpr",
                "BLOCK_C": "constexpr",
            },
            constexprs={**tile, "BLOCK_C": INTERP_TILE_CHANNELS},
        )
    )
    specs.append(
        dict(
            name="interp_bwd_atomic",
            fn=_interp_bwd_atomic_kernel,
            signature={
                "go_ptr": "*fp32",
                "attr_ptr": "*fp32",
                "faces_ptr": "*i32",
                "tri_id_ptr": "*i32",
                "bary_ptr": "*fp32",
                "gattr_ptr": "*fp32",
                "gbary_ptr": "*fp32",
                "V": "i32",
                "HW": "i32",
                "C": "i32",
                "BLOCK": "constexpr",
                "BLOCK_C": "constexpr",
            },
            constexprs={"BLOCK": PIX_BLOCK, "BLOCK_C": 4},
        )
    )
    # Column-block widths chosen at launch from the channel count: the smallest, a
    # typical one and the largest (register use grows with the width).
    widths = {
        "entry_to_tri": ("BLOCK_K", (1, 4, MAX_BLOCK_K)),
        "tri_to_vertex": ("BLOCK_D", (1, 4, MAX_BLOCK_D)),
        "interp_fwd": ("BLOCK_C", (1, 2, MAX_BLOCK_C)),
        "interp_bwd_atomic": ("BLOCK_C", (1, 2, MAX_BLOCK_C)),
    }
    out = []
    for spec in specs:
        tiled_bwd = spec["fn"] in (_bary_bwd_tile_kernel, _interp_bwd_tile_kernel)
        spec["num_warps"] = BWD_TILE_WARPS if tiled_bwd else NUM_WARPS
        if spec["name"] not in widths:
            out.append(spec)
            continue
        key, values = widths[spec["name"]]
        for value in values:
            out.append(
                {
                    **spec,
                    "name": f"{spec['name']}[{key}={value}]",
                    "constexprs": {**spec["constexprs"], key: value},
                }
            )
    return out
