"""Triton antialias op: the analytic silhouette blend of :mod:`minirast._cpu.antialias`.

Same math as the torch version (its module docstring is the spec): for every pair of
horizontally or vertically adjacent pixels showing different faces, the nearer pixel's
face (the non-background one against background), the first of its edges ``k`` (edge k
runs from vertex k to vertex k+1) that crosses the segment between the two centres, at
the smallest fraction ``s`` in ``[0, 1]`` of the way from the nearer centre; the pair
blends when that edge is a silhouette edge (flags from the torch helpers, computed once
per call, ``O(F)``) and the pair's direction is the one more perpendicular to the edge
in pixels (ties to horizontal pairs). Blends use the input colours and add up.

Everything is a gather or a fixed-order sum: outputs and gradients are bitwise
repeatable (no float atomics).

This module holds the host functions that launch the kernels (``_aa_pair_kernel``,
``_aa_fwd_kernel``, ``_aa_bwd_color_kernel``, ``_aa_bwd_pos_kernel``, described in
:mod:`minirast._triton.antialias_kernels`, which holds them), then
:class:`AntialiasFunction`, then :func:`codegen_specs`.
"""

from __future__ import annotations

import torch
import triton

from _common.codegen import kernel_spec

from .antialias_kernels import (
    _aa_bwd_color_kernel,
    _aa_bwd_pos_kernel,
    _aa_fwd_kernel,
    _aa_pair_kernel,
)
from .common import (
    ARG_TYPES,
    MAX_BLOCK_C,
    NUM_WARPS,
    PIX_BLOCK,
    nonempty,
    sum_rows,
)

# --------------------------------------------------------------------------- host


def silhouette_flags(pos: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """``[B, F*3]`` int8: face-edge ``f*3 + k`` is a silhouette edge in this view (the
    torch helpers of :mod:`minirast._cpu.antialias`, on ``pos [B,V,4]`` float32 and
    int64 ``faces [F,3]``)."""
    from .._constants import EPS_W
    from .._cpu.antialias import _edge_topology, _silhouette_edges

    with torch.no_grad():
        w = pos[..., 3]
        ok = w > EPS_W
        inv_w = 1.0 / torch.where(ok, w, torch.ones_like(w))
        X, Y = pos[..., 0] * inv_w, pos[..., 1] * inv_w
        sil = _silhouette_edges(X, Y, ok, faces, _edge_topology(faces))
    return sil.to(torch.int8).contiguous()


def antialias_pairs(
    pos: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    depth: torch.Tensor,
    sil: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The pair kernel: ``(pair_s [B,2,H,W] float32, pair_code [B,2,H,W] int32)`` for
    ``pos [B,V,4]`` float32, int32 ``faces [F,3]``, the fragments' ``tri_id`` and
    ``depth`` and the silhouette flags ``sil [B,F*3]`` int8."""
    B, H, W = tri_id.shape
    V, F = pos.shape[1], faces.shape[0]
    device = pos.device
    pair_s = torch.empty((B, 2, H, W), dtype=torch.float32, device=device)
    pair_code = torch.empty((B, 2, H, W), dtype=torch.int32, device=device)
    if B * H * W == 0:
        return pair_s, pair_code
    _aa_pair_kernel[(triton.cdiv(H * W, PIX_BLOCK), B, 2)](
        nonempty(pos),
        nonempty(faces),
        tri_id,
        depth,
        nonempty(sil),
        pair_s,
        pair_code,
        V,
        F,
        H,
        W,
        BLOCK=PIX_BLOCK,
        num_warps=NUM_WARPS,
    )
    return pair_s, pair_code


def _block_c(C: int) -> int:
    return min(triton.next_power_of_2(C), MAX_BLOCK_C)


def antialias_forward(
    color: torch.Tensor, pair_s: torch.Tensor, pair_code: torch.Tensor
) -> torch.Tensor:
    """The blended ``[B,H,W,C]`` float32 image from ``color`` and the pair buffers."""
    B, H, W, C = color.shape
    out = torch.empty_like(color)
    if out.numel() == 0:
        return out
    _aa_fwd_kernel[(triton.cdiv(H * W, PIX_BLOCK), B, triton.cdiv(C, _block_c(C)))](
        color,
        pair_s,
        pair_code,
        out,
        H,
        W,
        C,
        BLOCK=PIX_BLOCK,
        BLOCK_C=_block_c(C),
        num_warps=NUM_WARPS,
    )
    return out


def antialias_backward(
    grad_out: torch.Tensor,
    color: torch.Tensor,
    pos: torch.Tensor,
    faces: torch.Tensor,
    tri_id: torch.Tensor,
    pair_s: torch.Tensor,
    pair_code: torch.Tensor,
    *,
    need_color: bool = True,
    need_pos: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gradients of :func:`antialias_forward` (after :func:`antialias_pairs`):
    ``(grad_color [B,H,W,C], grad_pos [B,V,4])`` float32 (None where not needed),
    bitwise repeatable."""
    B, H, W, C = color.shape
    V = pos.shape[1]
    device = color.device
    grad_color = grad_pos = None
    if need_color:
        grad_color = torch.empty_like(color)
        if grad_color.numel() > 0:
            _aa_bwd_color_kernel[(triton.cdiv(H * W, PIX_BLOCK), B, triton.cdiv(C, _block_c(C)))](
                grad_out,
                pair_s,
                pair_code,
                grad_color,
                H,
                W,
                C,
                BLOCK=PIX_BLOCK,
                BLOCK_C=_block_c(C),
                num_warps=NUM_WARPS,
            )
    if need_pos:
        grad_pos = torch.zeros((B, V, 4), dtype=torch.float32, device=device)
        pair_idx = torch.nonzero(pair_code.reshape(-1) >= 0).reshape(-1)  # ascending
        N = int(pair_idx.shape[0])
        if N > 0 and C > 0:
            if 2 * N >= 2**31:
                raise RuntimeError(f"{N} blending pairs: more than the 2**30 supported")
            part = torch.empty((N, 2, 4), dtype=torch.float32, device=device)
            vid = torch.empty((N, 2), dtype=torch.int32, device=device)
            _aa_bwd_pos_kernel[(triton.cdiv(N, PIX_BLOCK),)](
                grad_out,
                color,
                pos,
                faces,
                tri_id,
                pair_s,
                pair_code,
                pair_idx,
                part,
                vid,
                V,
                H,
                W,
                C,
                N,
                BLOCK=PIX_BLOCK,
                BLOCK_C=_block_c(C),
                num_warps=NUM_WARPS,
            )
            batch = torch.div(pair_idx, 2 * H * W, rounding_mode="floor")
            key = (batch[:, None] * V + vid.to(torch.int64)).reshape(-1)
            order = torch.sort(key, stable=True).indices
            count = torch.bincount(key, minlength=B * V)
            start = torch.cumsum(count, 0) - count
            grad_pos = sum_rows(
                part.reshape(2 * N, 4),
                order.to(torch.int32),
                start.to(torch.int32),
                count.to(torch.int32),
                B * V,
            ).reshape(B, V, 4)
    return grad_color, grad_pos


class AntialiasFunction(torch.autograd.Function):
    """The antialias kernels as an autograd Function, differentiable in ``color``
    ``[B,H,W,C]`` and ``pos`` ``[B,V,4]`` (both float32 contiguous); ``faces`` int32,
    ``tri_id``/``depth`` from the rasterizer and ``sil`` from :func:`silhouette_flags`
    are held fixed."""

    @staticmethod
    def forward(ctx, color, pos, faces, tri_id, depth, sil):
        pair_s, pair_code = antialias_pairs(pos, faces, tri_id, depth, sil)
        out = antialias_forward(color, pair_s, pair_code)
        ctx.save_for_backward(color, pos, faces, tri_id, pair_s, pair_code)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        color, pos, faces, tri_id, pair_s, pair_code = ctx.saved_tensors
        grad_color, grad_pos = antialias_backward(
            grad_out.float().contiguous(),
            color,
            pos,
            faces,
            tri_id,
            pair_s,
            pair_code,
            need_color=ctx.needs_input_grad[0],
            need_pos=ctx.needs_input_grad[1],
        )
        return grad_color, grad_pos, None, None, None, None


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every kernel configuration this module launches, for GPU code-generation checks;
    the channel blocks chosen at launch: the smallest, a typical one and the largest."""
    specs = [
        kernel_spec(
            "aa_pairs", _aa_pair_kernel, ARG_TYPES, {"BLOCK": PIX_BLOCK}, num_warps=NUM_WARPS
        )
    ]
    for name, fn in (
        ("aa_fwd", _aa_fwd_kernel),
        ("aa_bwd_color", _aa_bwd_color_kernel),
        ("aa_bwd_pos", _aa_bwd_pos_kernel),
    ):
        for block_c in (1, 2, MAX_BLOCK_C):
            specs.append(
                kernel_spec(
                    f"{name}[BLOCK_C={block_c}]",
                    fn,
                    ARG_TYPES,
                    {"BLOCK": PIX_BLOCK, "BLOCK_C": block_c},
                    num_warps=NUM_WARPS,
                )
            )
    return specs
