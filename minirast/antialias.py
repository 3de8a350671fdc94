"""Public silhouette antialiasing (the method: :mod:`minirast._cpu.antialias`)."""

from __future__ import annotations

import torch

from ._cpu.antialias import blend_silhouettes
from ._validate import antialias_inputs
from .fragments import Fragments
from .raster import _triton_op


def antialias(
    color: torch.Tensor, fragments: Fragments, pos_clip: torch.Tensor, faces: torch.Tensor
) -> torch.Tensor:
    """Antialias silhouettes of a rendered image, with gradients to vertex positions.

    Args:
        color: ``[B,H,W,C]`` float image (e.g. from :func:`minirast.interpolate` and shading,
            composited over a background), the same resolution as ``fragments``.
        fragments: output of :func:`minirast.rasterize` for ``pos_clip`` and ``faces``.
        pos_clip: ``[B,V,4]`` or ``[V,4]`` the clip positions that were rasterized (the
            gradients of the silhouette positions flow into this tensor).
        faces: ``[F,3]`` the faces that were rasterized.

    Returns:
        ``[B,H,W,C]`` antialiased image, differentiable in ``color`` and ``pos_clip``, in
        the promoted dtype of ``color`` and ``pos_clip``. Uses the backend that produced
        ``fragments``: the Triton op (``minirast/_triton/antialias.py``, float32,
        bitwise repeatable) for ``backend="triton"`` fragments, else the torch
        implementation (any device; keeps float64 in float64).
    """
    color, fragments, pos, faces = antialias_inputs(color, fragments, pos_clip, faces)
    B, H, W, C = color.shape
    if fragments.backend == "triton" and faces.shape[0] > 0 and B * H * W * C > 0:
        dtype = torch.promote_types(color.dtype, pos.dtype)
        op = _triton_op("antialias")
        pos32 = pos.float().expand(B, -1, -1).contiguous()
        sil = op.silhouette_flags(pos32.detach(), faces)
        out = op.AntialiasFunction.apply(
            color.float().contiguous(),
            pos32,
            faces.to(torch.int32).contiguous(),
            fragments.tri_id.contiguous(),
            fragments.depth.detach().float().contiguous(),
            sil,
        )
        return out.to(dtype)
    return blend_silhouettes(color, fragments.tri_id, fragments.depth, pos, faces)
