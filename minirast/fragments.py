"""The output of :func:`minirast.rasterize`."""

from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass
class Fragments:
    """Per-pixel visibility of a rasterized mesh.

    Attributes:
        tri_id: ``[B,H,W]`` int32, index of the visible face per pixel, ``-1`` background.
        bary: ``[B,H,W,3]`` perspective-correct barycentric weights of the visible face's
            three vertices (in the face's vertex order); they sum to 1 on covered pixels,
            zeros on background. Differentiable with respect to ``pos_clip``.
        depth: ``[B,H,W]`` NDC depth ``z/w`` of the visible surface, interpolated linearly
            in screen space; ``BACKGROUND_DEPTH`` (0.0) on background. Differentiable.
        pos_clip: ``[B,V,4]`` the clip-space positions that were rasterized (batch
            broadcast), kept for :func:`minirast.antialias`.
        faces: ``[F,3]`` int64 faces that were rasterized.
        resolution: ``(H, W)`` in pixels.
        backend: ``"torch"`` or ``"triton"``, the backend that produced this.
    """

    tri_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    pos_clip: torch.Tensor
    faces: torch.Tensor
    resolution: tuple[int, int]
    backend: str
    #: Backend-private data reused by the backward passes (the Triton tile bins).
    bins: object | None = dataclasses.field(default=None, repr=False, compare=False)
    #: Torch backend: the covered pixels as 1-D tensors (``minirast._cpu.attributes.
    #: Covered``: flat indices, vertices, the differentiable barycentrics ``bary`` was
    #: scattered from); interpolate reads these.
    covered: object | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def mask(self) -> torch.Tensor:
        """``[B,H,W]`` bool, True where a face is visible."""
        return self.tri_id >= 0

    @property
    def batch_size(self) -> int:
        return int(self.tri_id.shape[0])
