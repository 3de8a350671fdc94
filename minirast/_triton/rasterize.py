"""Triton rasterize op: tiled forward, analytic backward to the clip positions.

Implements exactly the math of ``minirast/CONTRACT.md`` (NDC with y down, pixel
centres ``(2c+1)/W - 1``, screen-space edge functions normalised by the signed
area, nearest depth ``sum_i l_i z_i/w_i`` wins, exact ties to the lower triangle
id, perspective-correct barycentrics ``b_i = (l_i/w_i) / sum_j l_j/w_j``).
Inputs arrive validated from the public layer (``minirast/raster.py``):
contiguous float32 positions ``[B,V,4]``, int32 faces ``[F,3]`` with indices in
``[0, V)``, one device, batch already broadcast.

Forward, in two host steps so that the bins exist before the autograd Function
runs (:func:`setup_and_bin`, then :class:`RasterizeFunction` with the bins as an
argument; :func:`rasterize_forward` does both):

1. ``_setup_kernel``, one lane per (batch, triangle): screen vertices, signed
   area, validity (``w > eps_w`` for all three vertices, a finite area not zero up to
   rounding (``DEGENERATE_AREA``), culling), the ``NREC``-float setup record
   (slots ``REC_*`` of :mod:`minirast._triton.common`) and the range of 8x8
   screen tiles that its pixel-centre bounding box touches; then binning with
   torch ops: one entry per (batch, tile, triangle) pair, stably sorted by
   (batch, tile), so every tile's list is in ascending triangle id.
2. ``_raster_kernel``, one program per (tile, batch): loops over its tile's list
   in chunks of ``TB`` triangles, evaluates ``[pixels, TB]`` edge functions and
   depths in registers (reductions over the chunk stay inside a warp), keeps the
   nearest (ties: lower id), and finally writes id, depth and perspective-correct
   barycentrics of the winner.

Backward (:func:`rasterize_backward`), deterministic by default (no float
atomics): a one-warp program per (tile, batch) computes each covered pixel's 12
clip-coordinate gradients and, for each bin entry (tile, triangle) in list
order, sums the contributions of the pixels showing that triangle (one
``[pixels, 16]`` reduction; entries hidden in the tile are skipped); the
segmented sums of :func:`minirast._triton.common.reduce_entries` then add them
per triangle and per vertex in a fixed order. ``deterministic=False`` instead
adds per-pixel contributions with ``tl.atomic_add`` (fewer kernels, run-to-run
bit differences). Without the forward's bins the backward bins the geometry
again.

This module holds the host functions that launch the kernels, then
:class:`RasterizeFunction`, then :func:`codegen_specs`; the kernels themselves, and how
their edge functions stay watertight, are in :mod:`minirast._triton.rasterize_kernels`.
"""

from __future__ import annotations

import torch
import triton

from _common.codegen import kernel_spec

from .._constants import DEGENERATE_AREA
from .common import (
    ARG_TYPES,
    BIN_PAD,
    BWD_TILE_WARPS,
    NREC,
    NUM_WARPS,
    PIX_BLOCK,
    SETUP_BLOCK,
    TB,
    TILE_H,
    TILE_W,
    RasterBins,
    bins_from_pairs,
    check_bins,
    grid_tiles,
    nonempty,
    reduce_entries,
)
from .rasterize_kernels import (
    _bary_bwd_atomic_kernel,
    _bary_bwd_tile_kernel,
    _raster_kernel,
    _setup_kernel,
)

# --------------------------------------------------------------------------- host


def setup_and_bin(
    pos_clip: torch.Tensor, faces: torch.Tensor, height: int, width: int, eps_w: float, cull: int
) -> tuple[torch.Tensor, RasterBins]:
    """Run the setup kernel on ``pos_clip [B,V,4]`` (float32) and ``faces [F,3]`` (int32)
    and bin the valid triangles to tiles (geometric bins).

    Returns the setup records ``[B,F,NREC]`` float32 and the :class:`RasterBins`.
    ``cull``: 0 none, 1 drop signed NDC area < 0, -1 drop > 0.
    """
    B, V = pos_clip.shape[0], pos_clip.shape[1]
    F = faces.shape[0]
    device = pos_clip.device
    TX, TY = grid_tiles(height, width)
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
            DEGENERATE_AREA,
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
    parts = bins_from_pairs(key, tri, bt, B, F, T, grouped=True)
    bins = RasterBins(B, F, height, width, TILE_H, TILE_W, TX, TY, *parts)
    return rec, bins


def rasterize_tiles(
    rec: torch.Tensor, bins: RasterBins, *, background_depth: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The raster kernel over the binned setup records of :func:`setup_and_bin`.

    Returns ``(tri_id [B,H,W] int32 (-1 background), bary [B,H,W,3] float32
    (perspective-correct, zeros on background), depth [B,H,W] float32 (z/w of the
    nearest triangle, ``background_depth`` on background))``.
    """
    B, height, width = bins.batch, bins.height, bins.width
    device = rec.device
    tri_id = torch.empty((B, height, width), dtype=torch.int32, device=device)
    bary = torch.empty((B, height, width, 3), dtype=torch.float32, device=device)
    depth = torch.empty((B, height, width), dtype=torch.float32, device=device)
    if B * height * width > 0:
        _raster_kernel[(bins.tiles_x * bins.tiles_y, B)](
            nonempty(rec),
            nonempty(bins.bin_tri),
            bins.tile_start,
            bins.tile_count,
            tri_id,
            bary,
            depth,
            bins.num_faces,
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
    return tri_id, bary, depth


def rasterize_forward(
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
    """Rasterize ``pos_clip [B,V,4]`` (float32) with ``faces [F,3]`` (int32):
    :func:`setup_and_bin`, then :func:`rasterize_tiles` (without autograd).

    Returns ``(tri_id, bary, depth)`` as :func:`rasterize_tiles`, plus the
    :class:`RasterBins` when ``return_bins`` (pass them to the backward functions to
    skip rebuilding them). Deterministic: the same inputs give bitwise the same outputs.
    """
    rec, bins = setup_and_bin(pos_clip, faces, height, width, eps_w, cull)
    tri_id, bary, depth = rasterize_tiles(rec, bins, background_depth=background_depth)
    if return_bins:
        return tri_id, bary, depth, bins
    return tri_id, bary, depth


def rasterize_backward(
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
        _, bins = setup_and_bin(pos_clip, faces, H, W, 0.0, 0)
    check_bins(bins, B, F, H, W)
    part = torch.empty((bins.num_entries, 12), dtype=torch.float32, device=device)
    _bary_bwd_tile_kernel[(bins.tiles_x * bins.tiles_y, B)](
        grad_bary,
        gd,
        pos_clip,
        faces,
        tri_id,
        bary,
        nonempty(bins.bin_tri),
        bins.tile_start,
        bins.tile_count,
        nonempty(part),
        V,
        H,
        W,
        bins.tiles_x,
        HAS_GD=has_gd,
        TILE_H=TILE_H,
        TILE_W=TILE_W,
        num_warps=BWD_TILE_WARPS,
    )
    return reduce_entries(part, bins, faces, V, 4)


class RasterizeFunction(torch.autograd.Function):
    """The raster kernel as an autograd Function: ``(tri_id, bary, depth)`` from the
    setup records and bins of :func:`setup_and_bin` (computed before ``apply`` and
    passed in, so they also reach :func:`minirast.interpolate` through the
    :class:`~minirast.Fragments`); backward from (bary, depth) gradients to ``pos``."""

    @staticmethod
    def forward(ctx, pos, faces, rec, bins):
        tri_id, bary, depth = rasterize_tiles(rec, bins)
        ctx.bins = bins
        ctx.save_for_backward(pos, faces, tri_id, bary)
        ctx.mark_non_differentiable(tri_id)
        ctx.set_materialize_grads(False)
        return tri_id, bary, depth

    @staticmethod
    def backward(ctx, _g_tri, g_bary, g_depth):
        pos, faces, tri_id, bary = ctx.saved_tensors
        if g_bary is None and g_depth is None:
            return None, None, None, None
        if g_bary is None:
            g_bary = torch.zeros_like(bary)
        g_depth = None if g_depth is None else g_depth.float().contiguous()
        grad = rasterize_backward(
            g_bary.float().contiguous(), g_depth, pos, faces, tri_id, bary, bins=ctx.bins
        )
        return grad, None, None, None


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks."""
    tile = {"TILE_H": TILE_H, "TILE_W": TILE_W}
    specs = [
        kernel_spec(
            "raster_setup",
            _setup_kernel,
            ARG_TYPES,
            {**tile, "NREC": NREC, "BLOCK": SETUP_BLOCK},
            num_warps=NUM_WARPS,
        ),
        kernel_spec(
            "raster_tiles",
            _raster_kernel,
            ARG_TYPES,
            {**tile, "NREC": NREC, "TB": TB},
            num_warps=NUM_WARPS,
        ),
    ]
    for has_gd in (True, False):
        specs.append(
            kernel_spec(
                f"bary_bwd_tiles[gd={int(has_gd)}]",
                _bary_bwd_tile_kernel,
                ARG_TYPES,
                {**tile, "HAS_GD": has_gd},
                num_warps=BWD_TILE_WARPS,
            )
        )
        specs.append(
            kernel_spec(
                f"bary_bwd_atomic[gd={int(has_gd)}]",
                _bary_bwd_atomic_kernel,
                ARG_TYPES,
                {"HAS_GD": has_gd, "BLOCK": PIX_BLOCK},
                num_warps=NUM_WARPS,
            )
        )
    return specs
