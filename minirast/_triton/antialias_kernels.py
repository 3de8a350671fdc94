"""Triton kernels of the antialias op; the host functions that launch them and the
autograd Function are in :mod:`minirast._triton.antialias`, whose docstring states
the method.

Kernels (one 128-lane block of pixels or pairs per program, float32):

1. ``_aa_pair_kernel``, grid ``(pixel blocks, B, 2 axes)``: per pair starting at a
   pixel (its right neighbour for axis 0, the one below for axis 1) the crossing
   fraction ``s`` and a code: ``-1`` (no blend) or ``k + 4 * (the nearer pixel is the
   second one)``, into ``[B, 2, H, W]`` buffers that the forward saves for the backward.
2. ``_aa_fwd_kernel``, grid ``(pixel blocks, B, channel blocks)``: every pixel gathers
   the blends of its (at most four) pairs, in a fixed order (left, right, up, down).
3. ``_aa_bwd_color_kernel``, same grid: ``grad_color`` of a pixel, gathered the same way
   from the upstream gradient of its pairs' targets.
4. ``_aa_bwd_pos_kernel``, one lane per blending pair (the pairs with code >= 0, listed
   in ascending pair order by ``torch.nonzero``): ``dL/ds`` (a sum over channels), then
   ``ds`` by the clip ``(x, y, w)`` of the edge's two vertices, one row per (pair,
   vertex); a stable sort of the rows by vertex and the segmented sum of
   :mod:`minirast._triton.common` (rows in ascending order) give ``grad_pos``.

Jit helpers: ``_pair_centres``, ``_screen_uv`` and ``_cross`` (a pair's geometry and
an edge's crossing), ``_pair_role``, ``_pixel_block``, ``_blend_term`` and
``_color_grad_term`` (the per-pixel gathers), ``_vertex_grad`` (``ds`` to clip
coordinates).
"""

from __future__ import annotations

import triton
import triton.language as tl

from .common import load_vertex, pixel_centres

# --------------------------------------------------------------------------- kernels


@triton.jit
def _pair_centres(r, c, axis, near_second, H, W):
    """Centres of the pair starting at pixel (r, c) along ``axis`` (0: with (r, c+1), 1:
    with (r+1, c)): the along-axis coordinate of the nearer and the farther centre and the
    across-axis coordinate of both (NDC, as the contract computes pixel centres)."""
    hz = 1 - axis
    first_near = 1 - near_second
    pxn, pyn = pixel_centres(r + axis * near_second, c + hz * near_second, H, W)
    pxf, pyf = pixel_centres(r + axis * first_near, c + hz * first_near, H, W)
    horiz = axis == 0
    a_near = tl.where(horiz, pxn, pyn)
    a_far = tl.where(horiz, pxf, pyf)
    across = tl.where(horiz, pyn, pxn)
    return a_near, a_far, across


@triton.jit
def _screen_uv(x, y, w, horiz):
    """Along (u) and across (v) screen coordinates of a clip vertex, and ``1 / w``."""
    inv = tl.math.div_rn(tl.zeros_like(w) + 1.0, w)
    X = x * inv
    Y = y * inv
    return tl.where(horiz, X, Y), tl.where(horiz, Y, X), inv


@triton.jit
def _cross(ua, va, ub, vb, across, a_near, span):
    """Where edge a -> b crosses the line ``v = across``, as the fraction ``s`` of the
    segment from ``a_near`` (span ``span``), and whether it does so inside it."""
    da = va - across
    db = vb - across
    crosses = (da * db <= 0.0) & (da != db)
    denom = tl.where(crosses, vb - va, 1.0)
    u_cross = ua - tl.math.div_rn(da * (ub - ua), denom)
    s = tl.math.div_rn(u_cross - a_near, span)
    valid = crosses & (s >= 0.0) & (s <= 1.0)
    return s, valid


@triton.jit
def _aa_pair_kernel(
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] visible triangle, -1 background
    depth_ptr,  # [B,H,W] depth of the visible triangle
    sil_ptr,  # [B,F*3] int8: face-edge f*3+k is a silhouette edge in this view
    pair_s_ptr,  # [B,2,H,W] out: crossing fraction s of the pair starting at each pixel
    pair_code_ptr,  # [B,2,H,W] out: -1 no blend, else k + 4 * (nearer pixel is the second)
    V,
    F,
    H,
    W,
    BLOCK: tl.constexpr,
):
    """Per pair (pixel, its right / lower neighbour): blend or not, edge k and s."""
    b = tl.program_id(1).to(tl.int64)
    axis = tl.program_id(2)  # 0: horizontal pairs, 1: vertical pairs
    HW = H * W
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    r = q // W
    c = q - r * W
    qm = q < HW
    has = qm & (c + (1 - axis) < W) & (r + axis < H)  # the pair's second pixel exists
    p0 = b * HW + q
    p1 = p0 + (1 + axis * (W - 1))
    t0 = tl.load(tri_id_ptr + p0, mask=has, other=-1)
    t1 = tl.load(tri_id_ptr + p1, mask=has, other=-1)
    d0 = tl.load(depth_ptr + p0, mask=has, other=0.0)
    d1 = tl.load(depth_ptr + p1, mask=has, other=0.0)
    pair = has & (t0 != t1) & ((t0 >= 0) | (t1 >= 0))
    first_near = (t1 < 0) | ((t0 >= 0) & (d0 <= d1))
    near_second = tl.where(first_near, 0, 1)
    t = tl.where(pair, tl.where(first_near, t0, t1), 0)
    a_near, a_far, across = _pair_centres(r, c, axis, near_second, H, W)
    span = a_far - a_near

    horiz = axis == 0
    i0 = tl.load(faces_ptr + t * 3 + 0, mask=pair, other=0)
    i1 = tl.load(faces_ptr + t * 3 + 1, mask=pair, other=0)
    i2 = tl.load(faces_ptr + t * 3 + 2, mask=pair, other=0)
    pb = pos_ptr + b * V * 4
    x0, y0, _z0, w0 = load_vertex(pb, i0, pair)
    x1, y1, _z1, w1 = load_vertex(pb, i1, pair)
    x2, y2, _z2, w2 = load_vertex(pb, i2, pair)
    u0, v0, _q0 = _screen_uv(x0, y0, w0, horiz)
    u1, v1, _q1 = _screen_uv(x1, y1, w1, horiz)
    u2, v2, _q2 = _screen_uv(x2, y2, w2, horiz)
    s0, ok0 = _cross(u0, v0, u1, v1, across, a_near, span)
    s1, ok1 = _cross(u1, v1, u2, v2, across, a_near, span)
    s2, ok2 = _cross(u2, v2, u0, v0, across, a_near, span)
    # The valid crossing nearest the nearer centre; ties to the lower edge index.
    inf = float("inf")
    key0 = tl.where(ok0, s0, inf)
    key1 = tl.where(ok1, s1, inf)
    key2 = tl.where(ok2, s2, inf)
    k = tl.zeros_like(t)
    s = s0
    ok = ok0
    du = u1 - u0
    dv = v1 - v0
    best = key0
    take1 = key1 < best
    k = tl.where(take1, 1, k)
    s = tl.where(take1, s1, s)
    ok = tl.where(take1, ok1, ok)
    du = tl.where(take1, u2 - u1, du)
    dv = tl.where(take1, v2 - v1, dv)
    best = tl.where(take1, key1, best)
    take2 = key2 < best
    k = tl.where(take2, 2, k)
    s = tl.where(take2, s2, s)
    ok = tl.where(take2, ok2, ok)
    du = tl.where(take2, u0 - u2, du)
    dv = tl.where(take2, v0 - v2, dv)
    keep = pair & ok
    sil = tl.load(sil_ptr + b * F * 3 + t * 3 + k, mask=keep, other=0)
    keep = keep & (sil != 0)
    # Direction rule: the pair direction more perpendicular to the edge, in pixels.
    scale_along = (W * (1 - axis) + H * axis).to(tl.float32)
    scale_across = (H * (1 - axis) + W * axis).to(tl.float32)
    d_along = tl.abs(du * scale_along)
    d_across = tl.abs(dv * scale_across)
    keep = keep & tl.where(horiz, d_across >= d_along, d_across > d_along)
    e = (b * 2 + axis) * HW + q
    tl.store(pair_s_ptr + e, tl.where(keep, s, 0.0), mask=qm)
    tl.store(pair_code_ptr + e, tl.where(keep, k + 4 * near_second, -1), mask=qm)


@triton.jit
def _pair_role(pair_s_ptr, pair_code_ptr, e, m, P_SECOND: tl.constexpr):
    """For a pixel that is the first (``P_SECOND`` 0) or second pixel of pairs ``e``:
    the blend weight ``|s - 1/2|``, and whether the pixel is the pair's target (its
    colour moves towards the other's) or its source (the other pixel's moves)."""
    code = tl.load(pair_code_ptr + e, mask=m, other=-1)
    s = tl.load(pair_s_ptr + e, mask=m, other=0.0)
    kept = code >= 0
    p_near = ((code >> 2) & 1) == P_SECOND
    reach = s > 0.5  # the near face reaches into the far pixel: the far one is the target
    alpha = tl.where(reach, s - 0.5, 0.5 - s)
    is_tgt = kept & (reach != p_near)
    is_src = kept & (reach == p_near)
    return alpha, is_tgt, is_src


@triton.jit
def _aa_fwd_kernel(
    color_ptr,  # [B,H,W,C] input colours
    pair_s_ptr,  # [B,2,H,W] crossing fractions (pair kernel)
    pair_code_ptr,  # [B,2,H,W] pair codes (pair kernel)
    out_ptr,  # [B,H,W,C] out: antialiased colours
    H,
    W,
    C,  # channels
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """out = colour + the blends of the pixel's pairs (left, right, up, down, in order)."""
    pix, cc, pm, m2, left, right, up, down, eh, ev = _pixel_block(H, W, C, BLOCK, BLOCK_C)
    cp = tl.load(color_ptr + pix * C + cc, mask=m2, other=0.0)
    out = cp
    out += _blend_term(color_ptr, cp, pair_s_ptr, pair_code_ptr, eh - 1, pm & left, pix - 1, cc,
                       m2, C, 1)  # fmt: skip
    out += _blend_term(color_ptr, cp, pair_s_ptr, pair_code_ptr, eh, pm & right, pix + 1, cc,
                       m2, C, 0)  # fmt: skip
    out += _blend_term(color_ptr, cp, pair_s_ptr, pair_code_ptr, ev - W, pm & up, pix - W, cc,
                       m2, C, 1)  # fmt: skip
    out += _blend_term(color_ptr, cp, pair_s_ptr, pair_code_ptr, ev, pm & down, pix + W, cc,
                       m2, C, 0)  # fmt: skip
    tl.store(out_ptr + pix * C + cc, out, mask=m2)


@triton.jit
def _pixel_block(H, W, C, BLOCK: tl.constexpr, BLOCK_C: tl.constexpr):
    """This program's ``[BLOCK, BLOCK_C]`` block of pixels and channels: flat pixel index,
    channels, pixel and element masks, which neighbours exist (left, right, up, down), and
    the indices of the horizontal and vertical pairs that start at each pixel."""
    b = tl.program_id(1).to(tl.int64)
    HW = H * W
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[:, None]
    cc = tl.program_id(2) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    r = q // W
    c = q - r * W
    pm = q < HW
    m2 = pm & (cc < C)
    eh = (b * 2) * HW + q  # horizontal pair starting here
    ev = (b * 2 + 1) * HW + q  # vertical pair starting here
    return b * HW + q, cc, pm, m2, c > 0, c + 1 < W, r > 0, r + 1 < H, eh, ev


@triton.jit
def _blend_term(color_ptr, cp, pair_s_ptr, pair_code_ptr, e, m, other, cc, m2, C,
                P_SECOND: tl.constexpr):  # fmt: skip
    """A pair's blend of a pixel: ``alpha (c_other - c_pixel)`` when the pixel is the
    pair's target, else zero."""
    alpha, tgt, _src = _pair_role(pair_s_ptr, pair_code_ptr, e, m, P_SECOND)
    co = tl.load(color_ptr + other * C + cc, mask=m2 & tgt, other=0.0)
    return tl.where(tgt, alpha * (co - cp), 0.0)


@triton.jit
def _color_grad_term(
    go_ptr, gp, pair_s_ptr, pair_code_ptr, e, m, other, cc, m2, C, P_SECOND: tl.constexpr
):
    """A pair's share of a pixel's colour gradient: ``-alpha g_pixel`` when the pixel is
    the target, ``alpha g_other`` when it is the source, else zero."""
    alpha, tgt, src = _pair_role(pair_s_ptr, pair_code_ptr, e, m, P_SECOND)
    go = tl.load(go_ptr + other * C + cc, mask=m2 & src, other=0.0)
    return tl.where(tgt, -(alpha * gp), tl.where(src, alpha * go, 0.0))


@triton.jit
def _aa_bwd_color_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    pair_s_ptr,  # [B,2,H,W] crossing fractions (pair kernel)
    pair_code_ptr,  # [B,2,H,W] pair codes (pair kernel)
    gcolor_ptr,  # [B,H,W,C] out: gradient of the input colours
    H,
    W,
    C,  # channels
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """grad_color = upstream + each pair's share (left, right, up, down, in order)."""
    pix, cc, pm, m2, left, right, up, down, eh, ev = _pixel_block(H, W, C, BLOCK, BLOCK_C)
    gp = tl.load(go_ptr + pix * C + cc, mask=m2, other=0.0)
    acc = gp
    acc += _color_grad_term(go_ptr, gp, pair_s_ptr, pair_code_ptr, eh - 1, pm & left, pix - 1,
                            cc, m2, C, 1)  # fmt: skip
    acc += _color_grad_term(go_ptr, gp, pair_s_ptr, pair_code_ptr, eh, pm & right, pix + 1, cc,
                            m2, C, 0)  # fmt: skip
    acc += _color_grad_term(go_ptr, gp, pair_s_ptr, pair_code_ptr, ev - W, pm & up, pix - W, cc,
                            m2, C, 1)  # fmt: skip
    acc += _color_grad_term(go_ptr, gp, pair_s_ptr, pair_code_ptr, ev, pm & down, pix + W, cc,
                            m2, C, 0)  # fmt: skip
    tl.store(gcolor_ptr + pix * C + cc, acc, mask=m2)


@triton.jit
def _vertex_grad(gu, gv, x, y, inv, horiz):
    """Clip-space (x, y, w) gradient of a vertex from its along / across gradients."""
    gX = tl.where(horiz, gu, gv)
    gY = tl.where(horiz, gv, gu)
    return gX * inv, gY * inv, -(gX * x + gY * y) * (inv * inv)


@triton.jit
def _aa_bwd_pos_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    color_ptr,  # [B,H,W,C] input colours
    pos_ptr,  # [B,V,4] clip positions
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] visible triangle
    pair_s_ptr,  # [B,2,H,W] crossing fractions (pair kernel)
    pair_code_ptr,  # [B,2,H,W] pair codes (pair kernel)
    pair_idx_ptr,  # [N] int64 flat indices into the pair buffers of the blending pairs
    part_ptr,  # [N,2,4] out: per (pair, edge vertex) gradient of (x, y, z, w); z is 0
    vid_ptr,  # [N,2] out: the edge's vertex indices (vertex k, then vertex k+1 mod 3)
    V,
    H,
    W,
    C,  # channels
    N,  # blending pairs
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Per blending pair: dL/ds = g_target . (c_near - c_far), then by the chain rule
    through ``s`` the gradients of the crossed edge's two vertices."""
    i = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    im = i < N
    HW = H * W
    e = tl.load(pair_idx_ptr + i, mask=im, other=0)
    b = e // (2 * HW)
    rem = e - b * (2 * HW)
    axis = (rem // HW).to(tl.int32)
    q = (rem - axis * HW).to(tl.int32)
    r = q // W
    c = q - r * W
    code = tl.load(pair_code_ptr + e, mask=im, other=0)
    s = tl.load(pair_s_ptr + e, mask=im, other=0.0)
    k = code & 3
    near_second = (code >> 2) & 1
    p0 = b * HW + q
    p1 = p0 + (1 + axis * (W - 1))
    near = tl.where(near_second == 1, p1, p0)
    far = tl.where(near_second == 1, p0, p1)
    tgt = tl.where(s > 0.5, far, near)

    # dL/ds, summed over channels in blocks (in order).
    gs2 = tl.zeros([BLOCK, BLOCK_C], tl.float32)
    c0 = 0
    while c0 < C:  # a while loop: runtime bound (minirast/_triton/common.py)
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        m2 = im[:, None] & (cc < C)
        g = tl.load(go_ptr + tgt[:, None] * C + cc, mask=m2, other=0.0)
        cn = tl.load(color_ptr + near[:, None] * C + cc, mask=m2, other=0.0)
        cf = tl.load(color_ptr + far[:, None] * C + cc, mask=m2, other=0.0)
        gs2 += g * (cn - cf)
        c0 += BLOCK_C
    gs = tl.sum(gs2, axis=1)

    t = tl.load(tri_id_ptr + near, mask=im, other=0)
    t = tl.where(im, t, 0)
    ka = tl.load(faces_ptr + t * 3 + k, mask=im, other=0)
    kb = tl.load(faces_ptr + t * 3 + tl.where(k == 2, 0, k + 1), mask=im, other=0)
    pb = pos_ptr + b * V * 4
    xa, ya, _za, wa = load_vertex(pb, ka, im)
    xb, yb, _zb, wb = load_vertex(pb, kb, im)
    horiz = axis == 0
    ua, va, qa = _screen_uv(xa, ya, wa, horiz)
    ub, vb, qb = _screen_uv(xb, yb, wb, horiz)
    a_near, a_far, across = _pair_centres(r, c, axis, near_second, H, W)
    # s = (u_cross - a_near) / span, u_cross = ua - f (ub - ua), f = (va - across) / (vb - va)
    denom = tl.where(im, vb - va, 1.0)
    f = tl.math.div_rn(va - across, denom)
    slope = tl.math.div_rn(ub - ua, denom)
    gu = tl.math.div_rn(gs, tl.where(im, a_far - a_near, 1.0))
    gua = gu * (1.0 + f)
    gub = -(gu * f)
    gva = -(gua * slope)
    gvb = -(gub * slope)
    gxa, gya, gwa = _vertex_grad(gua, gva, xa, ya, qa, horiz)
    gxb, gyb, gwb = _vertex_grad(gub, gvb, xb, yb, qb, horiz)
    row = part_ptr + i.to(tl.int64) * 8
    tl.store(row + 0, gxa, mask=im)
    tl.store(row + 1, gya, mask=im)
    tl.store(row + 2, tl.zeros_like(gxa), mask=im)
    tl.store(row + 3, gwa, mask=im)
    tl.store(row + 4, gxb, mask=im)
    tl.store(row + 5, gyb, mask=im)
    tl.store(row + 6, tl.zeros_like(gxb), mask=im)
    tl.store(row + 7, gwb, mask=im)
    tl.store(vid_ptr + i.to(tl.int64) * 2 + 0, ka, mask=im)
    tl.store(vid_ptr + i.to(tl.int64) * 2 + 1, kb, mask=im)
