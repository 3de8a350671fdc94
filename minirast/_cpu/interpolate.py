"""CPU backend (``backend="torch"``) interpolate op: attributes over the visible triangles,
and optionally their exact screen-space derivatives.

The attribute faces (``faces [F,3]`` into ``attr [B or 1,T,C]``) need not be the
rasterized ones: row ``f`` gives the attribute vertices of rasterized face ``f``
(nvdiffrast's ``tri``), so UVs split at seams interpolate over the mesh.

Derivatives (the contract's formulas, ``minirast/CONTRACT.md``): the screen
barycentrics ``l_k`` are affine in the NDC pixel position ``p``, with
``dl_k/dpx = (Y_{k+1} - Y_{k+2}) / A`` and ``dl_k/dpy = (X_{k+2} - X_{k+1}) / A``
(indices mod 3). With ``q_k = 1/w_k``, ``b_k = l_k q_k / S`` and ``S = sum_j l_j q_j
= 1 / sum_j b_j w_j``::

    db_k/dp = (q_k dl_k/dp - b_k sum_j q_j dl_j/dp) / S

and one column is ``2/W`` in NDC x, one row ``2/H`` in NDC y. Everything is
differentiable torch ops on the covered pixels (from the rasterizer's
differentiable barycentrics and the clip positions), so autograd gives the backward
(and higher orders); this is also the reference of the Triton kernels.
"""

from __future__ import annotations

import torch

from .attributes import Covered


def _pixels(bary, tri_id, faces, raster_faces, covered, same_faces):
    """Per covered pixel: flat index, batch index, the attribute vertices and the
    rasterized vertices of its face (3-tuples of int64), and its barycentrics."""
    H, W = tri_id.shape[1], tri_id.shape[2]
    tri = None
    if covered is None:
        flat = tri_id.reshape(-1)
        idx = torch.nonzero(flat >= 0).squeeze(1)
        tri = flat.index_select(0, idx).long()
        image = idx // (H * W)
        rverts = raster_faces.index_select(0, tri).unbind(1)
        w = bary.reshape(-1, 3).index_select(0, idx).unbind(1)
    else:
        idx, image, rverts, w = covered.idx, covered.image, covered.verts, covered.bary
    if same_faces:
        return idx, image, rverts, rverts, w
    if tri is None:
        tri = tri_id.reshape(-1).index_select(0, idx).long()
    return idx, image, faces.index_select(0, tri).unbind(1), rverts, w


def _gather(attr, image, verts, dtype):
    """``attr`` rows of the three vertices ``verts`` of each pixel's batch element."""
    B_attr, T, C = attr.shape
    if B_attr == 1:
        table, rows = attr[0], verts
    else:
        table, rows = attr.reshape(B_attr * T, C), [v + image * T for v in verts]
    return [table.index_select(0, r).to(dtype) for r in rows]


def interpolate_attributes(
    attr: torch.Tensor,
    bary: torch.Tensor,
    tri_id: torch.Tensor,
    faces: torch.Tensor,
    covered: Covered | None = None,
    *,
    raster_faces: torch.Tensor | None = None,
    pos: torch.Tensor | None = None,
    derivatives: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``[B,H,W,C]``: ``sum_k bary_k attr[faces[tri_id, k]]`` on covered pixels, zeros on
    background, for ``attr [B or 1,T,C]``, ``bary [B,H,W,3]``, ``tri_id [B,H,W]`` and
    int64 ``faces [F,3]`` into attr's ``T`` vertices; in the promoted dtype of ``attr``
    and ``bary``.

    ``raster_faces`` (int64 ``[F,3]``): the faces that were rasterized; None means
    ``faces`` are those. ``covered`` (from the torch rasterizer) gives the covered
    pixels' indices, rasterized vertices and differentiable barycentrics directly (same
    values and graph as ``bary``), which saves re-reading the dense tensor.

    With ``derivatives`` (needs ``pos [B,V,4]``, the rasterized clip positions) also
    returns ``d [B,H,W,C,2]``: the derivative of the value along increasing column
    (``[..., 0]``) and row (``[..., 1]``) index at the pixel centre (module docstring),
    zeros on background.
    """
    B, H, W = tri_id.shape
    C = attr.shape[2]
    same = raster_faces is None
    raster_faces = faces if same else raster_faces
    dtype = torch.promote_types(attr.dtype, bary.dtype)
    idx, image, verts, rverts, w = _pixels(bary, tri_id, faces, raster_faces, covered, same)
    out = torch.zeros(B * H * W, C, dtype=dtype, device=attr.device)
    d = torch.zeros(B * H * W, C, 2, dtype=dtype, device=attr.device) if derivatives else None
    if idx.numel() == 0:
        zero = attr.sum() * 0.0 + sum(v.sum() for v in w) * 0.0
        if not derivatives:
            return (out + zero).reshape(B, H, W, C)
        zero = zero + pos.sum() * 0.0
        return (out + zero).reshape(B, H, W, C), (d + zero).reshape(B, H, W, C, 2)
    a = _gather(attr, image, verts, dtype)
    vals = sum(w[k].to(dtype).unsqueeze(1) * a[k] for k in range(3))
    out = out.index_put((idx,), vals).reshape(B, H, W, C)
    if not derivatives:
        return out
    dbx, dby = bary_derivatives(pos, image, rverts, w, H, W)
    dx = sum(dbx[k].to(dtype).unsqueeze(1) * a[k] for k in range(3))
    dy = sum(dby[k].to(dtype).unsqueeze(1) * a[k] for k in range(3))
    d = d.index_put((idx,), torch.stack([dx, dy], dim=2)).reshape(B, H, W, C, 2)
    return out, d


def bary_derivatives(
    pos: torch.Tensor,
    image: torch.Tensor,
    verts: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    bary: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    height: int,
    width: int,
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Derivatives of the perspective-correct barycentrics of covered pixels along the
    column and the row index (pixel units; module docstring), as two lists of three
    1-D tensors in the dtype of ``bary``.

    ``pos [B,V,4]`` rasterized clip positions, ``image`` the batch index of each pixel,
    ``verts`` the rasterized face's vertices, ``bary`` its barycentrics (all 1-D, one
    entry per pixel). Differentiable in ``pos`` and ``bary``.
    """
    V = pos.shape[1]
    dtype = bary[0].dtype
    flat = pos.reshape(-1, 4).to(dtype)
    corners = [flat.index_select(0, v + image * V).unbind(1) for v in verts]
    q = [1.0 / c[3] for c in corners]
    X = [c[0] * qk for c, qk in zip(corners, q, strict=True)]
    Y = [c[1] * qk for c, qk in zip(corners, q, strict=True)]
    area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0])
    inv_s = sum(bary[k] * corners[k][3] for k in range(3))  # 1 / S
    grads = (
        ([Y[1] - Y[2], Y[2] - Y[0], Y[0] - Y[1]], 2.0 / width),
        ([X[2] - X[1], X[0] - X[2], X[1] - X[0]], 2.0 / height),
    )
    out = []
    for edge, step in grads:
        dq = [edge[k] * q[k] / area for k in range(3)]
        total = dq[0] + dq[1] + dq[2]
        out.append([(dq[k] - bary[k] * total) * (inv_s * step) for k in range(3)])
    return out[0], out[1]
