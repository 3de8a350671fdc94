"""CPU backend (``backend="torch"``) interpolate op: per-vertex attributes over the
visible triangles."""

from __future__ import annotations

import torch

from .attributes import Covered


def interpolate_attributes(
    attr: torch.Tensor,
    bary: torch.Tensor,
    tri_id: torch.Tensor,
    faces: torch.Tensor,
    covered: Covered | None = None,
) -> torch.Tensor:
    """``[B,H,W,C]``: ``sum_k bary_k attr[face[tri_id, k]]`` on covered pixels, zeros on
    background, for ``attr [B or 1,V,C]``, ``bary [B,H,W,3]``, ``tri_id [B,H,W]`` and
    int64 ``faces [F,3]``; in the promoted dtype of ``attr`` and ``bary``.

    Gather-and-weight over the covered pixels only. ``covered`` (from the torch
    rasterizer) gives their indices, vertices and differentiable barycentrics directly
    (same values and graph as ``bary``), which saves re-reading the dense tensor.
    """
    B, H, W = tri_id.shape
    V, C = attr.shape[1], attr.shape[2]
    dtype = torch.promote_types(attr.dtype, bary.dtype)
    if covered is None:
        flat = tri_id.reshape(-1)
        idx = torch.nonzero(flat >= 0).squeeze(1)
        face = faces.index_select(0, flat.index_select(0, idx).long())
        image = idx // (H * W)
        verts = face.unbind(1)
        w = bary.reshape(-1, 3).index_select(0, idx).unbind(1)
    else:
        idx, image, verts, w = covered.idx, covered.image, covered.verts, covered.bary
    out = torch.zeros(B * H * W, C, dtype=dtype, device=attr.device)
    if idx.numel() == 0:
        zero = attr.sum() * 0.0 + sum(v.sum() for v in w) * 0.0
        return (out + zero).reshape(B, H, W, C)
    if attr.shape[0] == 1:
        table, rows = attr[0], verts
    else:
        table, rows = attr.reshape(B * V, C), [v + image * V for v in verts]
    vals = sum(
        w[k].to(dtype).unsqueeze(1) * table.index_select(0, rows[k]).to(dtype) for k in range(3)
    )
    return out.index_put((idx,), vals).reshape(B, H, W, C)
