"""Triton kernels of the rasterize op; the host functions that launch them, the
autograd Function and the algorithm's description are in
:mod:`minirast._triton.rasterize`.

- ``_setup_kernel``: one lane per (batch, triangle): screen vertices, validity, the
  ``NREC``-float setup record and the range of screen tiles it touches;
- ``_raster_kernel``: one program per (tile, batch): the nearest triangle of the
  tile's list per pixel, its depth and perspective-correct barycentrics;
- ``_bary_bwd_tile_kernel`` (deterministic: per bin entry sums in list order) and
  ``_bary_bwd_atomic_kernel`` (``tl.atomic_add`` per pixel): the gradients of
  barycentrics and depth to the 12 clip coordinates of each pixel's triangle;
- jit helpers: ``_store_edge`` (setup record slots), ``_bary_pixel_grads`` (one
  pixel's 12 gradients, shared by both backward kernels).

Watertightness: each edge function is evaluated with its two end points in a
canonical order (lexicographic on the screen position), and its sign flipped
into the triangle's orientation afterwards. Two triangles sharing an edge thus
compute bit-identical edge values (even with fused multiply-adds on the GPU),
so a pixel centre on the shared edge is covered by both, and none falls through.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .common import (
    _INT_MAX,
    REC_EDGE0,
    REC_EDGE1,
    REC_EDGE2,
    REC_EDGE_SCALE,
    REC_PAD,
    REC_Q,
    REC_Z,
    canonical_edge,
    load_face,
    load_pixel3,
    load_vertex,
    load_visible_face,
    pixel_centres,
    record_barycentrics,
    screen_corners,
    tile_pixels,
)

# --------------------------------------------------------------------------- kernels


@triton.jit
def _store_edge(rp, EDGE: tl.constexpr, ax, ay, bx, by, m):
    """Write an edge's canonical end points to the record slots ``EDGE .. EDGE + 3``."""
    tl.store(rp + (EDGE + 0), ax, mask=m)
    tl.store(rp + (EDGE + 1), ay, mask=m)
    tl.store(rp + (EDGE + 2), bx, mask=m)
    tl.store(rp + (EDGE + 3), by, mask=m)


@triton.jit
def _setup_kernel(
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3]
    rec_ptr,  # [B,F,NREC] out: setup records
    rng_ptr,  # [B,F,4] out: touched tiles (tx0, tx1, ty0, ty1), empty range when dropped
    cnt_ptr,  # [B,F] out: number of touched tiles
    V,
    F,
    H,
    W,
    eps_w,  # drop a triangle with a vertex w <= eps_w
    degenerate_area,  # drop |area| <= this times its two products' magnitudes
    cull,  # 0 none, 1 drop signed area < 0, -1 drop > 0
    bin_pad,  # widening of the pixel-centre bounding box (pixels)
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
    NREC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    """Per (batch, triangle): validity, setup record, touched tile range and count."""
    b = tl.program_id(1).to(tl.int64)
    f = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    fm = f < F
    i0, i1, i2 = load_face(faces_ptr, f, fm)
    pb = pos_ptr + b * V * 4
    x0, y0, z0, w0 = load_vertex(pb, i0, fm)
    x1, y1, z1, w1 = load_vertex(pb, i1, fm)
    x2, y2, z2, w2 = load_vertex(pb, i2, fm)
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
    first = (X1 - X0) * (Y2 - Y0)
    second = (X2 - X0) * (Y1 - Y0)
    area = first - second
    # zero up to rounding (a fused multiply-add or the reciprocal 1/w leaves a residue)
    flat_enough = tl.abs(area) <= degenerate_area * (tl.abs(first) + tl.abs(second))
    valid = valid & ~flat_enough & (tl.abs(area) < float("inf"))
    valid = valid & ~((cull == 1) & (area < 0.0)) & ~((cull == -1) & (area > 0.0))
    area = tl.where(valid, area, one)

    # Edge i is opposite vertex i: (v1, v2), (v2, v0), (v0, v1).
    ax0, ay0, bx0, by0, s0 = canonical_edge(X1, Y1, X2, Y2)
    ax1, ay1, bx1, by1, s1 = canonical_edge(X2, Y2, X0, Y0)
    ax2, ay2, bx2, by2, s2 = canonical_edge(X0, Y0, X1, Y1)
    rp = rec_ptr + (b * F + f) * NREC
    _store_edge(rp, REC_EDGE0, ax0, ay0, bx0, by0, fm)
    _store_edge(rp, REC_EDGE1, ax1, ay1, bx1, by1, fm)
    _store_edge(rp, REC_EDGE2, ax2, ay2, bx2, by2, fm)
    tl.store(rp + (REC_EDGE_SCALE + 0), tl.math.div_rn(s0, area), mask=fm)
    tl.store(rp + (REC_EDGE_SCALE + 1), tl.math.div_rn(s1, area), mask=fm)
    tl.store(rp + (REC_EDGE_SCALE + 2), tl.math.div_rn(s2, area), mask=fm)
    tl.store(rp + (REC_Z + 0), z0 * q0, mask=fm)
    tl.store(rp + (REC_Z + 1), z1 * q1, mask=fm)
    tl.store(rp + (REC_Z + 2), z2 * q2, mask=fm)
    tl.store(rp + (REC_Q + 0), q0, mask=fm)
    tl.store(rp + (REC_Q + 1), q1, mask=fm)
    tl.store(rp + (REC_Q + 2), q2, mask=fm)
    zero = tl.zeros([BLOCK], tl.float32)
    tl.store(rp + (REC_PAD + 0), zero, mask=fm)
    tl.store(rp + (REC_PAD + 1), zero, mask=fm)
    tl.store(rp + (REC_PAD + 2), zero, mask=fm)

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
    rec_ptr,  # [B,F,NREC] setup records
    bin_tri_ptr,  # [N] triangle ids of the bin entries, per tile ascending
    tile_start_ptr,  # [B*T] first entry of each tile
    tile_count_ptr,  # [B*T] entries of each tile
    tri_id_ptr,  # [B,H,W] out: visible triangle, -1 background
    bary_ptr,  # [B,H,W,3] out: perspective-correct barycentrics
    depth_ptr,  # [B,H,W] out: z/w of the visible triangle
    F,
    H,
    W,
    TX,  # tiles per row
    bg_depth,  # depth written to background pixels
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
    r, c, pm = tile_pixels(tile, TX, H, W, TILE_H, TILE_W)
    px, py = pixel_centres(r, c, H, W)

    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    rbase = rec_ptr + b * F * NREC
    # The running winner is kept broadcast over the chunk axis ([P, TB], all columns
    # equal) so that the loop-carried values share the layout of the chunk tensors.
    best_d = tl.full([TILE_H * TILE_W, TB], float("inf"), tl.float32)
    best_t = tl.full([TILE_H * TILE_W, TB], -1, tl.int32)
    s = 0
    while s < n:  # a while loop: runtime bound (minirast/_triton/common.py)
        e = s + tl.arange(0, TB)[None, :]
        em = e < n
        t = tl.load(bin_tri_ptr + start + e, mask=em, other=0)
        rp = rbase + t.to(tl.int64) * NREC
        l0, l1, l2 = record_barycentrics(rp, em, px, py)
        inside = (l0 >= 0.0) & (l1 >= 0.0) & (l2 >= 0.0) & em
        d = (
            l0 * tl.load(rp + (REC_Z + 0), mask=em, other=0.0)
            + l1 * tl.load(rp + (REC_Z + 1), mask=em, other=0.0)
            + l2 * tl.load(rp + (REC_Z + 2), mask=em, other=0.0)
        )
        d = tl.where(inside, d, float("inf"))
        dmin = tl.min(d, axis=1, keep_dims=True)
        cand = tl.where(inside & (d == dmin), t, _INT_MAX)
        tmin = tl.min(cand, axis=1, keep_dims=True)
        # The list is in ascending id order: a later chunk wins only if strictly nearer.
        upd = dmin < best_d
        best_d = tl.where(upd, dmin, best_d)
        best_t = tl.where(upd, tmin, best_t)
        s += TB
    best_d = tl.min(best_d, axis=1, keep_dims=True)
    best_t = tl.max(best_t, axis=1, keep_dims=True)

    cov = (best_t >= 0) & (best_t < F) & pm
    rp = rbase + tl.where(cov, best_t, 0).to(tl.int64) * NREC
    l0, l1, l2 = record_barycentrics(rp, cov, px, py)
    u0 = l0 * tl.load(rp + (REC_Q + 0), mask=cov, other=0.0)
    u1 = l1 * tl.load(rp + (REC_Q + 1), mask=cov, other=0.0)
    u2 = l2 * tl.load(rp + (REC_Q + 2), mask=cov, other=0.0)
    ssum = tl.where(cov, u0 + u1 + u2, 1.0)
    pix = (b * H + r) * W + c
    tl.store(tri_id_ptr + pix, tl.where(cov, best_t, -1), mask=pm)
    tl.store(depth_ptr + pix, tl.where(cov, best_d, bg_depth), mask=pm)
    tl.store(bary_ptr + pix * 3 + 0, tl.where(cov, u0 / ssum, 0.0), mask=pm)
    tl.store(bary_ptr + pix * 3 + 1, tl.where(cov, u1 / ssum, 0.0), mask=pm)
    tl.store(bary_ptr + pix * 3 + 2, tl.where(cov, u2 / ssum, 0.0), mask=pm)


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
    (i0, i1, i2, x0, y0, z0, w0, x1, y1, z1, w1, x2, y2, z2, w2) = load_visible_face(
        pos_ptr, faces_ptr, b, V, t, cov
    )  # fmt: skip
    q0, q1, q2, X0, Y0, X1, Y1, X2, Y2, inv_area = screen_corners(
        x0, y0, w0, x1, y1, w1, x2, y2, w2, cov
    )

    bb0, bb1, bb2 = load_pixel3(bary_ptr, pix, cov)
    g0, g1, g2 = load_pixel3(gb_ptr, pix, cov)
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
    gb_ptr,  # [B,H,W,3] upstream gradient of bary
    gd_ptr,  # [B,H,W] upstream gradient of depth (read only when HAS_GD)
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] forward output
    bary_ptr,  # [B,H,W,3] forward output
    bin_tri_ptr,  # [N] triangle ids of the bin entries
    tile_start_ptr,  # [B*T] first entry of each tile
    tile_count_ptr,  # [B*T] entries of each tile
    part_ptr,  # [N,12] out: per-entry sums of the 12 corner gradients
    V,
    H,
    W,
    TX,  # tiles per row
    HAS_GD: tl.constexpr,
    TILE_H: tl.constexpr,
    TILE_W: tl.constexpr,
):
    """Per (tile, batch): per bin entry, the summed 12 corner gradients of its pixels."""
    tile = tl.program_id(0)
    bi = tl.program_id(1)
    b = bi.to(tl.int64)
    ntiles = tl.num_programs(0)
    r, c, pm = tile_pixels(tile, TX, H, W, TILE_H, TILE_W)
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
    i = 0
    while i < n:  # a while loop: runtime bound (minirast/_triton/common.py)
        tt = tl.load(bin_tri_ptr + start + i)
        hit = t == tt
        # Entries of triangles hidden in this tile (about half of them) skip the sums.
        if tl.max(hit.to(tl.int32)) > 0:
            row = tl.sum(tl.where(hit, contrib, 0.0), axis=0, keep_dims=True)
        else:
            row = tl.zeros([1, 16], tl.float32)
        tl.store(part_ptr + (start + i).to(tl.int64) * 12 + j, row, mask=j < 12)
        i += 1


@triton.jit
def _bary_bwd_atomic_kernel(
    gb_ptr,  # [B,H,W,3] upstream gradient of bary
    gd_ptr,  # [B,H,W] upstream gradient of depth (read only when HAS_GD)
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] forward output
    bary_ptr,  # [B,H,W,3] forward output
    grad_ptr,  # [B,V,4] out (zero-initialised): gradient of the clip positions
    V,
    HW,  # pixels per image
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
