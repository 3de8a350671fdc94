"""``torch.autograd.Function`` around the fused Triton kernels of the projection."""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from ppcam import _triton_kernels as kernels


class ProjectTriton(torch.autograd.Function):
    """Forward and analytic backward by the Triton kernels (first order only)."""

    @staticmethod
    def forward(ctx, points, scale, trans, rho, rotation, min_w, deterministic):
        points, scale, trans, rho = (t.contiguous() for t in (points, scale, trans, rho))
        rotation = None if rotation is None else rotation.contiguous()
        uv, valid = kernels.project_forward(points, scale, trans, rho, rotation, min_w)
        ctx.save_for_backward(points, scale, trans, rho, rotation)
        ctx.min_w = min_w
        ctx.deterministic = deterministic
        ctx.mark_non_differentiable(valid)
        return uv, valid

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_uv, _grad_valid):
        points, scale, trans, rho, rotation = ctx.saved_tensors
        g_points, g_scale, g_trans, g_rho, g_rot = kernels.project_backward(
            grad_uv.contiguous(),
            points,
            scale,
            trans,
            rho,
            rotation,
            ctx.min_w,
            ctx.deterministic,
        )
        need = ctx.needs_input_grad
        return (
            g_points if need[0] else None,
            g_scale if need[1] else None,
            g_trans if need[2] else None,
            g_rho if need[3] else None,
            g_rot if need[4] else None,
            None,
            None,
        )
