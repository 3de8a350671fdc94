"""Public silhouette antialiasing (the method: :mod:`minirast._torch.antialias`)."""

from __future__ import annotations

import torch

from ._torch.antialias import blend_silhouettes
from ._validate import antialias_inputs
from .fragments import Fragments


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
        ``[B,H,W,C]`` antialiased image, differentiable in ``color`` and ``pos_clip``.
        Torch implementation; runs on any device.
    """
    color, fragments, pos, faces = antialias_inputs(color, fragments, pos_clip, faces)
    return blend_silhouettes(color, fragments.tri_id, fragments.depth, pos, faces)
