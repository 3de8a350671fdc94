"""Triton interpolate op: per-vertex attributes over the visible triangles.

Forward: ``out[b,h,w,:] = sum_k bary[b,h,w,k] attr[b, faces[tri_id, k], :]``, one
program per block of pixels and channels. Backward, deterministic by default: a
one-warp program per (tile, batch) writes ``grad_bary`` of its pixels and, per
bin entry (tile, triangle) and corner k, ``sum_pixels bary_k grad_out``; the
segmented sums of :func:`minirast._triton.common.reduce_entries` add those per
triangle and per vertex in a fixed order. ``deterministic=False`` adds
``grad_attr`` with float atomics instead. The bins come from the rasterize op
(:class:`minirast.Fragments` carries them); without them they are built from
``tri_id`` (a sort of the covered pixels).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from _common.codegen import kernel_spec

from .common import (
    ARG_TYPES,
    BWD_TILE_WARPS,
    INTERP_TILE_CHANNELS,
    MAX_BLOCK_C,
    NUM_WARPS,
    PIX_BLOCK,
    TILE_H,
    TILE_W,
    RasterBins,
    bins_from_tri_id,
    check_bins,
    load_face,
    load_pixel3,
    nonempty,
    reduce_entries,
    tile_pixels,
)

# --------------------------------------------------------------------------- kernels


@triton.jit
def _interp_fwd_kernel(
    attr_ptr,  # [B,V,C] attributes
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] visible triangle
    bary_ptr,  # [B,H,W,3] perspective-correct barycentrics
    out_ptr,  # [B,H,W,C] out
    V,
    HW,  # pixels per image
    C,  # channels
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
    i0, i1, i2 = load_face(faces_ptr, ts, cov)
    b0, b1, b2 = load_pixel3(bary_ptr, pix, cov)
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
    c0 = 0
    while c0 < C:  # a while loop: runtime bound (minirast/_triton/common.py)
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        m2 = cov & (cc < C)
        g = tl.load(go_ptr + pix * C + cc, mask=m2, other=0.0)
        a0 = tl.load(ab + i0.to(tl.int64) * C + cc, mask=m2, other=0.0)
        a1 = tl.load(ab + i1.to(tl.int64) * C + cc, mask=m2, other=0.0)
        a2 = tl.load(ab + i2.to(tl.int64) * C + cc, mask=m2, other=0.0)
        gb0 += tl.sum(g * a0, axis=1, keep_dims=True)
        gb1 += tl.sum(g * a1, axis=1, keep_dims=True)
        gb2 += tl.sum(g * a2, axis=1, keep_dims=True)
        c0 += BLOCK_C
    return gb0, gb1, gb2


@triton.jit
def _interp_bwd_tile_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    attr_ptr,  # [B,V,C] attributes
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] visible triangle
    bary_ptr,  # [B,H,W,3] barycentrics
    bin_tri_ptr,  # [N] triangle ids of the bin entries
    tile_start_ptr,  # [B*T] first entry of each tile
    tile_count_ptr,  # [B*T] entries of each tile
    part_ptr,  # [N,3*C] out: per-entry sums
    gbary_ptr,  # [B,H,W,3] out: gradient of bary
    V,
    H,
    W,
    TX,  # tiles per row
    C,  # channels
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
    r, c, pm = tile_pixels(tile, TX, H, W, TILE_H, TILE_W)
    pix = (b * H + r) * W + c
    t = tl.load(tri_id_ptr + pix, mask=pm, other=-1)
    cov = t >= 0
    t = tl.where(cov, t, -1)
    ts = tl.where(cov, t, 0)
    i0, i1, i2 = load_face(faces_ptr, ts, cov)
    b0, b1, b2 = load_pixel3(bary_ptr, pix, cov)
    j = tl.arange(0, 16)[None, :]
    k = j // BLOCK_C
    ch_of_j = j - k * BLOCK_C
    ab = attr_ptr + b * V * C
    gb0 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    gb1 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    gb2 = tl.zeros([TILE_H * TILE_W, 1], tl.float32)
    start = tl.load(tile_start_ptr + bi * ntiles + tile)
    n = tl.load(tile_count_ptr + bi * ntiles + tile)
    c0 = 0
    while c0 < C:  # while loops: runtime bounds (minirast/_triton/common.py)
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
        i = 0
        while i < n:
            tt = tl.load(bin_tri_ptr + start + i)
            hit = t == tt
            # Entries of triangles hidden in this tile (about half of them) skip the sum.
            if tl.max(hit.to(tl.int32)) > 0:
                row = tl.sum(tl.where(hit, v, 0.0), axis=0, keep_dims=True)
            else:
                row = tl.zeros([1, 16], tl.float32)
            tl.store(part_ptr + (start + i).to(tl.int64) * (3 * C) + k * C + ch, row, mask=cm)
            i += 1
        c0 += BLOCK_C
    tl.store(gbary_ptr + pix * 3 + 0, gb0, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 1, gb1, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 2, gb2, mask=pm)


@triton.jit
def _interp_bwd_atomic_kernel(
    go_ptr,  # [B,H,W,C] upstream gradient
    attr_ptr,  # [B,V,C] attributes
    faces_ptr,  # [F,3]
    tri_id_ptr,  # [B,H,W] visible triangle
    bary_ptr,  # [B,H,W,3] barycentrics
    gattr_ptr,  # [B,V,C] out (zero-initialised): gradient of attr
    gbary_ptr,  # [B,H,W,3] out: gradient of bary
    V,
    HW,  # pixels per image
    C,  # channels
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
    i0, i1, i2 = load_face(faces_ptr, ts, cov)
    b0, b1, b2 = load_pixel3(bary_ptr, pix, cov)
    gb0, gb1, gb2 = _interp_grad_bary(
        go_ptr, attr_ptr, b, V, C, pix, cov, i0, i1, i2, BLOCK, BLOCK_C
    )
    tl.store(gbary_ptr + pix * 3 + 0, gb0, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 1, gb1, mask=pm)
    tl.store(gbary_ptr + pix * 3 + 2, gb2, mask=pm)
    gb = gattr_ptr + b * V * C
    c0 = 0
    while c0 < C:  # a while loop: runtime bound (minirast/_triton/common.py)
        cc = c0 + tl.arange(0, BLOCK_C)[None, :]
        m2 = cov & (cc < C)
        g = tl.load(go_ptr + pix * C + cc, mask=m2, other=0.0)
        tl.atomic_add(gb + i0.to(tl.int64) * C + cc, b0 * g, mask=m2)
        tl.atomic_add(gb + i1.to(tl.int64) * C + cc, b1 * g, mask=m2)
        tl.atomic_add(gb + i2.to(tl.int64) * C + cc, b2 * g, mask=m2)
        c0 += BLOCK_C


# --------------------------------------------------------------------------- host


def interpolate_forward(
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
        nonempty(attr),
        nonempty(faces),
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


def interpolate_backward(
    grad_out: torch.Tensor,
    attr: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    bary: torch.Tensor,
    *,
    bins: RasterBins | None = None,
    deterministic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`interpolate_forward`: ``(grad_attr [B,V,C],
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
    check_bins(bins, B, F, H, W)
    part = torch.empty((bins.num_entries, 3 * C), dtype=torch.float32, device=device)
    _interp_bwd_tile_kernel[(bins.tiles_x * bins.tiles_y, B)](
        grad_out,
        attr,
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
        C,
        TILE_H=TILE_H,
        TILE_W=TILE_W,
        BLOCK_C=INTERP_TILE_CHANNELS,
        num_warps=BWD_TILE_WARPS,
    )
    return reduce_entries(part, bins, faces, V, C), grad_bary


class InterpolateFunction(torch.autograd.Function):
    """The interpolation kernels as an autograd Function, differentiable in ``attr``
    and ``bary``; ``bins`` are the rasterize op's (or None), passed in explicitly."""

    @staticmethod
    def forward(ctx, attr, bary, tri_id, faces, bins):
        out = interpolate_forward(attr, faces, tri_id, bary)
        ctx.save_for_backward(attr, bary, tri_id, faces)
        ctx.bins = bins
        return out

    @staticmethod
    def backward(ctx, grad_out):
        attr, bary, tri_id, faces = ctx.saved_tensors
        grad_attr, grad_bary = interpolate_backward(
            grad_out.float().contiguous(), attr, faces, tri_id, bary, bins=ctx.bins
        )
        return grad_attr, grad_bary, None, None, None


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks;
    the channel blocks chosen at launch from the channel count: the smallest, a typical
    one and the largest (register use grows with the width)."""
    specs = []
    for block_c in (1, 2, MAX_BLOCK_C):
        specs.append(
            kernel_spec(
                f"interp_fwd[BLOCK_C={block_c}]",
                _interp_fwd_kernel,
                ARG_TYPES,
                {"BLOCK": PIX_BLOCK, "BLOCK_C": block_c},
                num_warps=NUM_WARPS,
            )
        )
    specs.append(
        kernel_spec(
            "interp_bwd_tiles",
            _interp_bwd_tile_kernel,
            ARG_TYPES,
            {"TILE_H": TILE_H, "TILE_W": TILE_W, "BLOCK_C": INTERP_TILE_CHANNELS},
            num_warps=BWD_TILE_WARPS,
        )
    )
    for block_c in (1, 2, MAX_BLOCK_C):
        specs.append(
            kernel_spec(
                f"interp_bwd_atomic[BLOCK_C={block_c}]",
                _interp_bwd_atomic_kernel,
                ARG_TYPES,
                {"BLOCK": PIX_BLOCK, "BLOCK_C": block_c},
                num_warps=NUM_WARPS,
            )
        )
    return specs
