"""Torch interpolate op: per-vertex attributes over the visible triangles."""

from __future__ import annotations

import torch


def interpolate_attributes(
    attr: torch.Tensor,
    bary: torch.Tensor,
    tri_id: torch.Tensor,
    faces: torch.Tensor,
    covered: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """``[B,H,W,C]``: ``sum_k bary_k attr[face[tri_id, k]]`` on covered pixels, zeros on
    background, for ``attr [B or 1,V,C]``, ``bary [B,H,W,3]``, ``tri_id [B,H,W]`` and
    int64 ``faces [F,3]``; in the promoted dtype of ``attr`` and ``bary``.

    Gather-and-weight over the covered pixels only. ``covered`` = ``(idx, bary_values)``
    from the torch rasterizer saves re-reading the dense ``bary`` (same values, same graph).
    """
    B, H, W = tri_id.shape
    V, C = attr.shape[1], attr.shape[2]
    dtype = torch.promote_types(attr.dtype, bary.dtype)
    flat = tri_id.reshape(-1)
    if covered is not None:
        idx, w = covered
    else:
        idx = torch.nonzero(flat >= 0).squeeze(1)
        w = bary.reshape(-1, 3).index_select(0, idx)
    out = torch.zeros(B * H * W, C, dtype=dtype, device=attr.device)
    if idx.numel() == 0:
        zero = attr.sum() * 0.0 + w.sum() * 0.0
        return (out + zero).reshape(B, H, W, C)
    vid = faces.index_select(0, flat.index_select(0, idx).long())  # [N,3]
    if attr.shape[0] == 1:
        a = attr[0].index_select(0, vid.reshape(-1))
    else:
        b = idx // (H * W)
        a = attr.reshape(B * V, C).index_select(0, (vid + (b * V).unsqueeze(1)).reshape(-1))
    a = a.reshape(-1, 3, C).to(dtype)
    vals = torch.einsum("nk,nkc->nc", w.to(dtype), a)
    return out.index_put((idx,), vals).reshape(B, H, W, C)
