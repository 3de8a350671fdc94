"""Triton kernels of the texture op (``@triton.jit`` code only; host code and the
autograd Function: :mod:`minirast._triton.texture`).

The texture and its mip levels arrive as one stack per image, ``tex [Bt, S, C]``
(level ``l`` row-major at texel offset ``off_l``), described by the level table
``lvl [L+1, 4]`` int32 = ``(w_l, h_l, off_l, aoff_l)``; ``aoff_l`` is the offset of the
level's anchor grid, ``(h_l + 1) x (w_l + 1)`` cells for the top-left taps
``(y0, x0)`` in ``[-1, h_l - 1] x [-1, w_l - 1]`` (``NA`` cells per image in all).

- ``_tex_fwd_kernel``: one program per ``BLOCK`` pixels, channels in blocks of
  ``BLOCK_C``; the math of ``minirast/CONTRACT.md`` ("Texture"), as nvdiffrast's
  ``TextureFwdKernel``.
- ``_tex_bwd_pixel_kernel``: per pixel the gradients of ``uv`` and ``uv_da``, and for
  the texture either (``ATOMIC=False``) one entry per sampled level, its anchor key
  and the four tap weights times the level weight, or (``ATOMIC=True``) float atomics.
- ``_tex_gather_kernel``: per texel, the sum over its four corners (fixed order) and
  over the entries of the anchor that reaches it through that corner, in sorted
  order: the deterministic texture gradient.
"""

from __future__ import annotations

import triton
import triton.language as tl

from .common import ARG_TYPES

#: Filter and boundary codes (``TEXTURE_FILTERS`` / ``TEXTURE_BOUNDARIES`` order).
NEAREST = tl.constexpr(0)
LINEAR = tl.constexpr(1)
MIP_NEAREST = tl.constexpr(2)
MIP_LINEAR = tl.constexpr(3)
WRAP = tl.constexpr(0)
CLAMP = tl.constexpr(1)
ZERO = tl.constexpr(2)

#: 0.5 / ln(2), nvdiffrast's constant of the level-of-detail gradient.
_LOD_SCALE = tl.constexpr(0.72134752)
_FLT_MAX = tl.constexpr(3.4028234663852886e38)

#: Triton types of the texture kernels' arguments (the rasterizer's map plus these).
TEXTURE_ARG_TYPES = {
    **ARG_TYPES,
    **dict.fromkeys(
        ("tex_ptr", "uv_ptr", "da_ptr", "guv_ptr", "gda_ptr", "wt_ptr", "gtex_ptr"), "*fp32"
    ),
    **dict.fromkeys(("lvl_ptr", "key_ptr", "perm_ptr", "seg_start_ptr", "seg_count_ptr"), "*i32"),
    **dict.fromkeys(("TEXB", "S", "NA", "KEYB", "TW", "TH", "L", "NTEX"), "i32"),
}


@triton.jit
def _finite(x):
    return (x == x) & (tl.abs(x) <= _FLT_MAX)


@triton.jit
def _level(lvl_ptr, lev):
    """``(w, h, texel offset, anchor offset)`` of levels ``lev`` (int32 tensor)."""
    w = tl.load(lvl_ptr + lev * 4 + 0)
    h = tl.load(lvl_ptr + lev * 4 + 1)
    off = tl.load(lvl_ptr + lev * 4 + 2)
    aoff = tl.load(lvl_ptr + lev * 4 + 3)
    return w, h, off, aoff


@triton.jit
def _footprint(da_ptr, q, m, TW, TH):
    """nvdiffrast's footprint of pixels ``q``: ``(dsdx, dsdy, dtdx, dtdy)`` in base
    texels and ``(A, B, C, l2b, l2n, l2a)``."""
    dsdx = tl.load(da_ptr + q * 4 + 0, mask=m, other=0.0) * TW.to(tl.float32)
    dsdy = tl.load(da_ptr + q * 4 + 1, mask=m, other=0.0) * TW.to(tl.float32)
    dtdx = tl.load(da_ptr + q * 4 + 2, mask=m, other=0.0) * TH.to(tl.float32)
    dtdy = tl.load(da_ptr + q * 4 + 3, mask=m, other=0.0) * TH.to(tl.float32)
    a = dsdx * dsdx + dtdx * dtdx
    b = dsdy * dsdy + dtdy * dtdy
    c = dsdx * dsdy + dtdx * dtdy
    l2b = 0.5 * (a + b)
    l2n = 0.25 * (a - b) * (a - b) + c * c
    l2a = tl.sqrt(l2n)
    return dsdx, dsdy, dtdx, dtdy, a, b, c, l2b, l2n, l2a


@triton.jit
def _mip_levels(da_ptr, q, m, TW, TH, L, FILTER: tl.constexpr):
    """``(level0, level1, frac)`` of pixels ``q``: bilinear (``LINEAR``) samples level 0
    only; the mipmapped modes take the level of detail clamped to ``[0, L]`` (NaN -> 0),
    its floor, and for trilinear the next level and the fraction (zero at level 0 and
    on the last level)."""
    if FILTER == LINEAR:
        lev0 = tl.zeros(q.shape, tl.int32)
        return lev0, lev0, tl.zeros(q.shape, tl.float32)
    _, _, _, _, _, _, _, l2b, _, l2a = _footprint(da_ptr, q, m, TW, TH)
    flevel = 0.5 * tl.log2(l2b + l2a)
    flevel = tl.where(flevel == flevel, flevel, 0.0)
    flevel = tl.minimum(tl.maximum(flevel, 0.0), L.to(tl.float32))
    lev0 = tl.floor(flevel).to(tl.int32)
    if FILTER == MIP_LINEAR:
        up = flevel > 0.0
        lev1 = tl.where(up, tl.minimum(lev0 + 1, L), 0)
        frac = tl.where(up, flevel - lev0.to(tl.float32), 0.0)
    else:
        lev1 = lev0
        frac = tl.zeros_like(flevel)
    return lev0, lev1, frac


@triton.jit
def _lod_grad(da_ptr, q, m, TW, TH):
    """d(0.5 log2(lenMajorSqr))/d(uv_da) of pixels ``q`` as nvdiffrast computes it
    (zero where not finite, e.g. isotropic footprints)."""
    dsdx, dsdy, dtdx, dtdy, a, b, c, l2b, l2n, l2a = _footprint(da_ptr, q, m, TW, TH)
    dw = _LOD_SCALE / (l2n + l2a * l2b)
    ab = dw * 0.5 * (a - b)
    cw = dw * c
    l2aw = dw * l2a
    tw = TW.to(tl.float32)
    th = TH.to(tl.float32)
    g0 = tw * (dsdx * (l2aw + ab) + dsdy * cw)
    g1 = tw * (dsdy * (l2aw - ab) + dsdx * cw)
    g2 = th * (dtdx * (l2aw + ab) + dtdy * cw)
    g3 = th * (dtdy * (l2aw - ab) + dtdx * cw)
    ok = _finite(g0) & _finite(g1) & _finite(g2) & _finite(g3)
    return (
        tl.where(ok, g0, 0.0),
        tl.where(ok, g1, 0.0),
        tl.where(ok, g2, 0.0),
        tl.where(ok, g3, 0.0),
    )


@triton.jit
def _wrap01(u, BOUNDARY: tl.constexpr):
    if BOUNDARY == WRAP:
        u = u - tl.floor(u)
    return u


@triton.jit
def _axis_taps(u, n, BOUNDARY: tl.constexpr):
    """Bilinear taps along one axis of ``n`` texels: ``(i0, i1, frac, ok0, ok1)``; ``i0``
    is the anchor (in ``[-1, n - 1]`` where ``ok0 | ok1``), ``i1`` the second tap after
    wrapping; ``ok*`` whether a tap lies inside the array (zero mode)."""
    nf = n.to(tl.float32)
    x = _wrap01(u, BOUNDARY) * nf - 0.5
    step = tl.full(x.shape, 1, tl.int32)
    if BOUNDARY == CLAMP:
        x = tl.minimum(tl.maximum(x, 0.0), nf - 1.0)
        step = tl.where((x == 0.0) | (x == nf - 1.0), 0, 1)
    x0f = tl.floor(x)
    frac = x - x0f
    i0 = tl.minimum(tl.maximum(x0f, -2.0), nf).to(tl.int32)
    i1 = i0 + step
    if BOUNDARY == WRAP:
        i0 = tl.where(i0 < 0, i0 + n, i0)
        i1 = tl.where(i1 >= n, i1 - n, i1)
    ok0 = (i0 >= 0) & (i0 < n)
    ok1 = (i1 >= 0) & (i1 < n)
    return i0, i1, frac, ok0, ok1


@triton.jit
def _quad(tex_ptr, base, off, w, x0, x1, y0, y1, m00, m10, m01, m11, C, cc, cm):
    """The four taps ``[BLOCK, BLOCK_C]`` of one level (masked taps read zero)."""
    r0 = base + (off + y0 * w).to(tl.int64)
    r1 = base + (off + y1 * w).to(tl.int64)
    a00 = tl.load(tex_ptr + (r0 + x0) * C + cc, mask=m00 & cm, other=0.0)
    a10 = tl.load(tex_ptr + (r0 + x1) * C + cc, mask=m10 & cm, other=0.0)
    a01 = tl.load(tex_ptr + (r1 + x0) * C + cc, mask=m01 & cm, other=0.0)
    a11 = tl.load(tex_ptr + (r1 + x1) * C + cc, mask=m11 & cm, other=0.0)
    return a00, a10, a01, a11


@triton.jit
def _bilerp(a00, a10, a01, a11, fx, fy):
    top = a00 + fx * (a10 - a00)
    bot = a01 + fx * (a11 - a01)
    return top + fy * (bot - top)


@triton.jit
def _setup_level(uv_ptr, lvl_ptr, q, pm, lev, BOUNDARY: tl.constexpr):
    """Taps of pixels ``q`` in levels ``lev``: ``(w, h, off, aoff, x0, x1, y0, y1, fx, fy,
    m00, m10, m01, m11, anchor_ok)``."""
    w, h, off, aoff = _level(lvl_ptr, lev)
    u = tl.load(uv_ptr + q * 2 + 0, mask=pm, other=0.0)
    v = tl.load(uv_ptr + q * 2 + 1, mask=pm, other=0.0)
    x0, x1, fx, okx0, okx1 = _axis_taps(u, w, BOUNDARY)
    y0, y1, fy, oky0, oky1 = _axis_taps(v, h, BOUNDARY)
    m00 = pm & okx0 & oky0
    m10 = pm & okx1 & oky0
    m01 = pm & okx0 & oky1
    m11 = pm & okx1 & oky1
    anchor_ok = pm & (okx0 | okx1) & (oky0 | oky1)
    return w, h, off, aoff, x0, x1, y0, y1, fx, fy, m00, m10, m01, m11, anchor_ok


@triton.jit
def _nearest_texel(uv_ptr, q, pm, w, h, BOUNDARY: tl.constexpr):
    """Texel ``(iy, ix)`` of pixels ``q`` in nearest mode and whether it is read."""
    u = _wrap01(tl.load(uv_ptr + q * 2 + 0, mask=pm, other=0.0), BOUNDARY)
    v = _wrap01(tl.load(uv_ptr + q * 2 + 1, mask=pm, other=0.0), BOUNDARY)
    xf = tl.floor(u * w.to(tl.float32))
    yf = tl.floor(v * h.to(tl.float32))
    ok = pm
    if BOUNDARY == ZERO:
        ok = ok & (xf >= 0.0) & (xf < w.to(tl.float32)) & (yf >= 0.0) & (yf < h.to(tl.float32))
    ix = tl.minimum(tl.maximum(xf, 0.0), (w - 1).to(tl.float32)).to(tl.int32)
    iy = tl.minimum(tl.maximum(yf, 0.0), (h - 1).to(tl.float32)).to(tl.int32)
    return ix, iy, ok


@triton.jit
def _tex_fwd_kernel(
    tex_ptr,  # [Bt, S, C] texture and mip levels
    uv_ptr,  # [B,H,W,2]
    da_ptr,  # [B,H,W,4] (read by the mipmapped modes only)
    lvl_ptr,  # [L+1, 4] int32 level table
    out_ptr,  # [B,H,W,C] out
    N,  # pixels B*H*W
    HW,  # pixels per image
    C,
    TEXB,  # texels per image of tex (S), or 0 for a shared texture
    TW,  # base width
    TH,  # base height
    L,  # last mip level
    FILTER: tl.constexpr,
    BOUNDARY: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[:, None]
    pm = q < N
    q64 = q.to(tl.int64)
    base = (q // HW).to(tl.int64) * TEXB
    if FILTER == NEAREST:
        w, h, off, _ = _level(lvl_ptr, 0)
        ix, iy, ok = _nearest_texel(uv_ptr, q64, pm, w, h, BOUNDARY)
        src = base + (iy * w + ix).to(tl.int64)
        c0 = 0
        while c0 < C:  # while loops: runtime bounds (minirast/_triton/common.py)
            cc = c0 + tl.arange(0, BLOCK_C)[None, :]
            val = tl.load(tex_ptr + src * C + cc, mask=ok & (cc < C), other=0.0)
            tl.store(out_ptr + q64 * C + cc, val, mask=pm & (cc < C))
            c0 += BLOCK_C
    else:
        lev0, lev1, frac = _mip_levels(da_ptr, q64, pm, TW, TH, L, FILTER)
        w0, _, off0, _, x0, x1, y0, y1, fx, fy, m00, m10, m01, m11, _ = _setup_level(
            uv_ptr, lvl_ptr, q64, pm, lev0, BOUNDARY
        )
        if FILTER == MIP_LINEAR:
            up = pm & (frac > 0.0)
            w1, _, off1, _, u0, u1, v0, v1, gx, gy, n00, n10, n01, n11, _ = _setup_level(
                uv_ptr, lvl_ptr, q64, up, lev1, BOUNDARY
            )
        c0 = 0
        while c0 < C:
            cc = c0 + tl.arange(0, BLOCK_C)[None, :]
            cm = cc < C
            a00, a10, a01, a11 = _quad(
                tex_ptr, base, off0, w0, x0, x1, y0, y1, m00, m10, m01, m11, C, cc, cm
            )
            val = _bilerp(a00, a10, a01, a11, fx, fy)
            if FILTER == MIP_LINEAR:
                b00, b10, b01, b11 = _quad(
                    tex_ptr, base, off1, w1, u0, u1, v0, v1, n00, n10, n01, n11, C, cc, cm
                )
                val = tl.where(up, val + frac * (_bilerp(b00, b10, b01, b11, gx, gy) - val), val)
            tl.store(out_ptr + q64 * C + cc, val, mask=pm & cm)
            c0 += BLOCK_C


@triton.jit
def _level_grad(
    go_ptr, tex_ptr, base, q64, off, w, x0, x1, y0, y1, fx, fy, m00, m10, m01, m11, C,
    BLOCK_C: tl.constexpr,
):  # fmt: skip
    """For one level: ``(sum_c g dval/dfx, sum_c g dval/dfy, sum_c g val)`` with ``g`` the
    upstream gradient and ``val`` the bilinear sample (channel blocks in order)."""
    gu = tl.zeros(fx.shape, tl.float32)
    gv = tl.zeros(fx.shape, tl.float32)
    gval = tl.zeros(fx.shape, tl.float32)
    c0 = 0
    while c0 < C:
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        cm = cc < C
        g = tl.load(go_ptr + q64 * C + cc, mask=(m00 | m10 | m01 | m11) & cm, other=0.0)
        a00, a10, a01, a11 = _quad(
            tex_ptr, base, off, w, x0, x1, y0, y1, m00, m10, m01, m11, C, cc, cm
        )
        ad = a11 + a00 - a10 - a01
        gu += tl.sum(g * ((a10 - a00) + fy * ad), axis=1, keep_dims=True)
        gv += tl.sum(g * ((a01 - a00) + fx * ad), axis=1, keep_dims=True)
        gval += tl.sum(g * _bilerp(a00, a10, a01, a11, fx, fy), axis=1, keep_dims=True)
        c0 += BLOCK_C
    return gu, gv, gval


@triton.jit
def _tap_weights(fx, fy, scale):
    """nvdiffrast's bilinear tap weights (00, 10, 01, 11) times ``scale``."""
    w11 = fx * fy
    w10 = fx - w11
    w01 = fy - w11
    w00 = 1.0 - fx - w01
    return w00 * scale, w10 * scale, w01 * scale, w11 * scale


@triton.jit
def _store_entry(key_ptr, wt_ptr, slot, key, w00, w10, w01, w11, pm):
    """Entry ``slot`` (``q * E + level``) of the deterministic texture gradient."""
    tl.store(key_ptr + slot, key, mask=pm)
    tl.store(wt_ptr + slot * 4 + 0, w00, mask=pm)
    tl.store(wt_ptr + slot * 4 + 1, w10, mask=pm)
    tl.store(wt_ptr + slot * 4 + 2, w01, mask=pm)
    tl.store(wt_ptr + slot * 4 + 3, w11, mask=pm)


@triton.jit
def _scatter_quad(
    gtex_ptr, go_ptr, base, q64, off, w, x0, x1, y0, y1, m00, m10, m01, m11,
    w00, w10, w01, w11, C, BLOCK_C: tl.constexpr,
):  # fmt: skip
    """Add the tap weights times the upstream gradient to the texture gradient with
    float atomics (``deterministic=False``)."""
    r0 = base + (off + y0 * w).to(tl.int64)
    r1 = base + (off + y1 * w).to(tl.int64)
    c0 = 0
    while c0 < C:
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        cm = cc < C
        g = tl.load(go_ptr + q64 * C + cc, mask=(m00 | m10 | m01 | m11) & cm, other=0.0)
        tl.atomic_add(gtex_ptr + (r0 + x0) * C + cc, w00 * g, mask=m00 & cm)
        tl.atomic_add(gtex_ptr + (r0 + x1) * C + cc, w10 * g, mask=m10 & cm)
        tl.atomic_add(gtex_ptr + (r1 + x0) * C + cc, w01 * g, mask=m01 & cm)
        tl.atomic_add(gtex_ptr + (r1 + x1) * C + cc, w11 * g, mask=m11 & cm)
        c0 += BLOCK_C


@triton.jit
def _tex_bwd_pixel_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    tex_ptr,  # [Bt, S, C] texture and mip levels
    uv_ptr,  # [B,H,W,2]
    da_ptr,  # [B,H,W,4] (mipmapped modes)
    lvl_ptr,  # [L+1, 4] int32 level table
    guv_ptr,  # [B,H,W,2] out (not nearest)
    gda_ptr,  # [B,H,W,4] out (trilinear)
    key_ptr,  # [N*E] out: anchor key per entry (NA: none)
    wt_ptr,  # [N*E, 4] out: tap weights per entry
    gtex_ptr,  # [Bt, S, C] out, zero-initialised (ATOMIC only)
    N,  # pixels B*H*W
    HW,
    C,
    TEXB,  # texels per image of tex (S), or 0 for a shared texture
    KEYB,  # anchor keys per image of tex, or 0 for a shared texture
    NA,  # anchor keys in all (the key of "no entry")
    TW,
    TH,
    L,
    FILTER: tl.constexpr,
    BOUNDARY: tl.constexpr,
    ATOMIC: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    q = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[:, None]
    pm = q < N
    q64 = q.to(tl.int64)
    b = (q // HW).to(tl.int64)
    base = b * TEXB
    kb = b * KEYB
    E: tl.constexpr = 2 if FILTER == MIP_LINEAR else 1
    if FILTER == NEAREST:
        w, h, _, _ = _level(lvl_ptr, 0)
        ix, iy, ok = _nearest_texel(uv_ptr, q64, pm, w, h, BOUNDARY)
        if ATOMIC:
            src = base + (iy * w + ix).to(tl.int64)
            c0 = 0
            while c0 < C:
                cc = c0 + tl.arange(0, BLOCK_C)[None, :]
                g = tl.load(go_ptr + q64 * C + cc, mask=ok & (cc < C), other=0.0)
                tl.atomic_add(gtex_ptr + src * C + cc, g, mask=ok & (cc < C))
                c0 += BLOCK_C
        else:
            one = tl.where(ok, 1.0, 0.0)
            zero = tl.zeros_like(one)
            key = tl.where(ok, kb + (iy + 1) * (w + 1) + ix + 1, NA)
            _store_entry(key_ptr, wt_ptr, q64, key.to(tl.int32), one, zero, zero, zero, pm)
    else:
        lev0, lev1, frac = _mip_levels(da_ptr, q64, pm, TW, TH, L, FILTER)
        w0, h0, off0, aoff0, x0, x1, y0, y1, fx, fy, m00, m10, m01, m11, ok0 = _setup_level(
            uv_ptr, lvl_ptr, q64, pm, lev0, BOUNDARY
        )
        s0 = 1.0 - frac
        gu0, gv0, val0 = _level_grad(
            go_ptr, tex_ptr, base, q64, off0, w0, x0, x1, y0, y1, fx, fy, m00, m10, m01, m11,
            C, BLOCK_C,
        )  # fmt: skip
        gu = s0 * gu0 * w0.to(tl.float32)
        gv = s0 * gv0 * h0.to(tl.float32)
        w00, w10, w01, w11 = _tap_weights(fx, fy, s0)
        if ATOMIC:
            _scatter_quad(
                gtex_ptr, go_ptr, base, q64, off0, w0, x0, x1, y0, y1, m00, m10, m01, m11,
                w00, w10, w01, w11, C, BLOCK_C,
            )  # fmt: skip
        else:
            key0 = tl.where(ok0, kb + aoff0 + (y0 + 1) * (w0 + 1) + x0 + 1, NA)
            _store_entry(key_ptr, wt_ptr, q64 * E, key0.to(tl.int32), w00, w10, w01, w11, pm)
        if FILTER == MIP_LINEAR:
            up = pm & (frac > 0.0)
            w1, h1, off1, aoff1, u0, u1, v0, v1, gx, gy, n00, n10, n01, n11, ok1 = _setup_level(
                uv_ptr, lvl_ptr, q64, up, lev1, BOUNDARY
            )
            gu1, gv1, val1 = _level_grad(
                go_ptr, tex_ptr, base, q64, off1, w1, u0, u1, v0, v1, gx, gy, n00, n10, n01,
                n11, C, BLOCK_C,
            )  # fmt: skip
            gu += frac * gu1 * w1.to(tl.float32)
            gv += frac * gv1 * h1.to(tl.float32)
            df = tl.where(up, val1 - val0, 0.0)
            d0, d1, d2, d3 = _lod_grad(da_ptr, q64, pm, TW, TH)
            tl.store(gda_ptr + q64 * 4 + 0, d0 * df, mask=pm)
            tl.store(gda_ptr + q64 * 4 + 1, d1 * df, mask=pm)
            tl.store(gda_ptr + q64 * 4 + 2, d2 * df, mask=pm)
            tl.store(gda_ptr + q64 * 4 + 3, d3 * df, mask=pm)
            t00, t10, t01, t11 = _tap_weights(gx, gy, frac)
            if ATOMIC:
                _scatter_quad(
                    gtex_ptr, go_ptr, base, q64, off1, w1, u0, u1, v0, v1, n00, n10, n01, n11,
                    t00, t10, t01, t11, C, BLOCK_C,
                )  # fmt: skip
            else:
                key1 = tl.where(ok1, kb + aoff1 + (v0 + 1) * (w1 + 1) + u0 + 1, NA)
                _store_entry(
                    key_ptr, wt_ptr, q64 * E + 1, key1.to(tl.int32), t00, t10, t01, t11, pm
                )
        tl.store(guv_ptr + q64 * 2 + 0, gu, mask=pm)
        tl.store(guv_ptr + q64 * 2 + 1, gv, mask=pm)


@triton.jit
def _tex_gather_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    perm_ptr,  # [N*E] entries sorted by anchor key (stable)
    wt_ptr,  # [N*E, 4] tap weights per entry
    seg_start_ptr,  # [NA+1] first sorted position of each anchor key
    seg_count_ptr,  # [NA+1] entries of each anchor key
    lvl_ptr,  # [L+1, 4] int32 level table
    gtex_ptr,  # [Bt, S, C] out: texture gradient
    NTEX,  # texels in all (Bt * S)
    S,  # texels per image
    C,
    KEYB,  # anchor keys per image
    L,
    FILTER: tl.constexpr,
    BOUNDARY: tl.constexpr,
    BLOCK: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """gtex[t] = sum over corners k (00, 10, 01, 11) and, in sorted order, over the entries
    of the anchor ``t - k`` of weight_k times the entry's upstream gradient."""
    t = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)[:, None]
    tm = t < NTEX
    bt = t // S
    r = t - bt * S
    lev = tl.zeros_like(t)
    i = 1
    while i <= L:
        lev += (r >= tl.load(lvl_ptr + i * 4 + 2)).to(tl.int32)
        i += 1
    w, h, off, aoff = _level(lvl_ptr, lev)
    r = r - off
    y = r // w
    x = r - y * w
    cc = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)[None, :]
    cm = cc < C
    E: tl.constexpr = 2 if FILTER == MIP_LINEAR else 1
    CORNERS: tl.constexpr = 1 if FILTER == NEAREST else 4
    acc = tl.zeros([BLOCK, BLOCK_C], tl.float32)
    for k in tl.static_range(CORNERS):
        ax = x - (k % 2)
        ay = y - (k // 2)
        if BOUNDARY == WRAP:
            ax = tl.where(ax < 0, ax + w, ax)
            ay = tl.where(ay < 0, ay + h, ay)
        key = bt * KEYB + aoff + (ay + 1) * (w + 1) + ax + 1
        start = tl.load(seg_start_ptr + key, mask=tm, other=0)
        cnt = tl.load(seg_count_ptr + key, mask=tm, other=0)
        n_max = tl.max(cnt)
        j = 0
        while j < n_max:  # a while loop: runtime bound (minirast/_triton/common.py)
            mm = tm & (j < cnt)
            e = tl.load(perm_ptr + start + j, mask=mm, other=0).to(tl.int64)
            wk = tl.load(wt_ptr + e * 4 + k, mask=mm, other=0.0)
            g = tl.load(go_ptr + (e // E) * C + cc, mask=mm & cm, other=0.0)
            acc += wk * g
            j += 1
    tl.store(gtex_ptr + t.to(tl.int64) * C + cc, acc, mask=tm & cm)
