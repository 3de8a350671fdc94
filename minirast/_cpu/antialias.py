"""Analytic silhouette antialiasing (the edge-blending idea of nvdiffrast, Laine et al. 2020).

For every pair of horizontally or vertically adjacent pixels whose visible faces
differ, take the face of the nearer pixel (the non-background one when the
other is background) and find where its boundary leaves the segment between
the two pixel centres, at a fraction ``s`` of the way from the nearer centre.
If the crossed edge is a silhouette edge in this view (a mesh boundary, an edge
between a face turned towards and a face turned away from the camera or one the
rasterizer drops, or a non-manifold edge) and the pair's direction is the one more
perpendicular to the edge (horizontal pairs for edges steeper than 45 degrees in
pixels, vertical pairs otherwise, as nvdiffrast does, so no edge is counted twice),
the pixels are blended as if each pixel were a unit box along that axis:

- ``s < 1/2``: the face covers only part of its own pixel:
  ``near += (1/2 - s) * (far - near)``;
- ``s > 1/2``: the face reaches into the neighbour's pixel:
  ``far += (s - 1/2) * (near - far)``.

All blends use the input colours (order independent, deterministic) and add up
at pixels that take part in several pairs. ``s`` is a differentiable function
of the edge's two vertices, which gives the image gradients with respect to
vertex positions along silhouettes that plain rasterization lacks. Interior
edges (between two faces turned the same way) are left alone.
"""

from __future__ import annotations

import torch

from .._constants import EPS_W
from .rasterize import signed_area

_TOPOLOGY_CACHE: list[tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = []


def _edge_topology(faces: torch.Tensor):
    """Per face-edge ``f*3 + k`` (edge k joins vertex k and k+1 mod 3 of face f):
    whether its undirected edge has exactly two face-edges (``manifold`` [F*3] bool),
    the partner face-edge (``partner`` [F*3] int64, itself when not manifold), and
    whether the pair winds consistently (``consistent`` [F*3] bool: the partner runs the
    edge in the opposite direction). Cached for the last few face tensors."""
    for cached_faces, topo in _TOPOLOGY_CACHE:
        if (
            cached_faces.shape == faces.shape
            and cached_faces.device == faces.device
            and torch.equal(cached_faces, faces)
        ):
            return topo
    F = faces.shape[0]
    fe = torch.stack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 1).reshape(-1, 2)
    lo = torch.minimum(fe[:, 0], fe[:, 1])
    hi = torch.maximum(fe[:, 0], fe[:, 1])
    n = int(faces.max()) + 1 if F > 0 else 1
    _, inverse, counts = torch.unique(lo * n + hi, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    first = order[starts[inverse]]
    second = order[(starts[inverse] + 1).clamp(max=order.numel() - 1)]
    self_idx = torch.arange(F * 3, device=faces.device)
    manifold = counts[inverse] == 2
    partner = torch.where(manifold, torch.where(first == self_idx, second, first), self_idx)
    consistent = fe[:, 0] == fe[partner, 1]
    topo = (manifold, partner, consistent)
    _TOPOLOGY_CACHE.insert(0, (faces.clone(), topo))
    del _TOPOLOGY_CACHE[4:]
    return topo


def _silhouette_edges(X, Y, ok, faces, topo) -> torch.Tensor:
    """``[B, F*3]`` bool: face-edge is a silhouette edge in this view."""
    manifold, partner, consistent = topo
    x, y = X[:, faces], Y[:, faces]
    area, drawable = signed_area(*x.unbind(-1), *y.unbind(-1))
    drawn = ok[:, faces].all(-1) & drawable  # the rasterizer's drop rules: sign 0
    sign = torch.where(drawn, torch.sign(area), torch.zeros_like(area))
    s_self = sign.repeat_interleave(3, dim=1)
    s_other = s_self[:, partner]
    turned = torch.where(consistent, s_self != s_other, s_self == s_other)
    return ~manifold | turned


def _pair_blend(axis, color, tri_id, shows_sil, depth, X, Y, faces, sil, out_idx, out_delta):
    """Blend deltas for neighbour pairs along ``axis`` (2: horizontal, 1: vertical)."""
    B, H, W = tri_id.shape
    if axis == 2:
        t0, t1 = tri_id[:, :, :-1], tri_id[:, :, 1:]
    else:
        t0, t1 = tri_id[:, :-1, :], tri_id[:, 1:, :]
    # Only a face with a silhouette edge can blend: pairs where neither pixel shows one
    # (``shows_sil``, False on background) are dropped before any geometry is computed.
    if axis == 2:
        s0, s1 = shows_sil[:, :, :-1], shows_sil[:, :, 1:]
    else:
        s0, s1 = shows_sil[:, :-1, :], shows_sil[:, 1:, :]
    pairs = torch.nonzero((t0 != t1) & (s0 | s1))
    if pairs.shape[0] == 0:
        return
    b, r, c = pairs[:, 0], pairs[:, 1], pairs[:, 2]
    step = 1 if axis == 2 else W
    i0 = (b * H + r) * W + c
    i1 = i0 + step
    tid = tri_id.reshape(-1)
    dep = depth.reshape(-1)
    ta, tb = tid[i0], tid[i1]
    zero_near = (tb < 0) | ((ta >= 0) & (dep[i0] <= dep[i1]))
    near = torch.where(zero_near, i0, i1)
    far = torch.where(zero_near, i1, i0)
    t = torch.where(zero_near, ta, tb).long()
    # Centres: along = the coordinate that changes between the two pixels.
    r_near = (near % (H * W)) // W
    c_near = near % W
    if axis == 2:
        along_v, across_v = X, Y
        a_near = (2 * c_near + 1).to(X.dtype) / W - 1
        a_far = (2 * (far % W) + 1).to(X.dtype) / W - 1
        across = (2 * r_near + 1).to(X.dtype) / H - 1
    else:
        along_v, across_v = Y, X
        a_near = (2 * r_near + 1).to(X.dtype) / H - 1
        a_far = (2 * ((far % (H * W)) // W) + 1).to(X.dtype) / H - 1
        across = (2 * c_near + 1).to(X.dtype) / W - 1
    V = X.shape[1]
    vid = faces[t] + (b * V).unsqueeze(1)  # [K,3]
    u = along_v.reshape(-1)[vid]  # [K,3] differentiable
    v = across_v.reshape(-1)[vid]
    ua, va = u, v
    ub, vb = u[:, [1, 2, 0]], v[:, [1, 2, 0]]
    da = va - across.unsqueeze(1)
    db = vb - across.unsqueeze(1)
    crosses = (da * db <= 0) & (da != db)
    denom = torch.where(crosses, vb - va, torch.ones_like(va))
    u_cross = ua - da * (ub - ua) / denom
    span = (a_far - a_near).unsqueeze(1)
    s = (u_cross - a_near.unsqueeze(1)) / span
    valid = crosses & (s >= 0) & (s <= 1)
    s_key = torch.where(valid, s.detach(), torch.full_like(s, float("inf")))
    k = torch.argmin(s_key, dim=1, keepdim=True)
    s = s.gather(1, k).squeeze(1)
    edge_sil = sil.reshape(-1)[(b * sil.shape[1]).unsqueeze(1) + t.unsqueeze(1) * 3 + k]
    keep = valid.gather(1, k).squeeze(1) & edge_sil.squeeze(1)
    # Each edge is handled by one pair direction only, the one more perpendicular to it
    # (in pixels): otherwise a diagonal edge would be counted by both and its coverage
    # gradient doubled. Edges at exactly 45 degrees go to the horizontal pairs.
    scale_along, scale_across = (W, H) if axis == 2 else (H, W)
    d_along = ((ub - ua).gather(1, k).squeeze(1) * scale_along).abs().detach()
    d_across = ((vb - va).gather(1, k).squeeze(1) * scale_across).abs().detach()
    keep &= (d_across >= d_along) if axis == 2 else (d_across > d_along)
    if not bool(keep.any()):
        return
    s, near, far = s[keep], near[keep], far[keep]
    C = color.shape[-1]
    both = color.reshape(-1, C).index_select(0, torch.cat([near, far]))
    c_near, c_far = both[: near.numel()], both[near.numel() :]
    reach = (s > 0.5).unsqueeze(1)
    delta = torch.where(
        reach, (s - 0.5).unsqueeze(1) * (c_near - c_far), (0.5 - s).unsqueeze(1) * (c_far - c_near)
    )
    out_idx.append(torch.where(reach.squeeze(1), far, near))
    out_delta.append(delta)


def blend_silhouettes(
    color: torch.Tensor,
    tri_id: torch.Tensor,
    depth: torch.Tensor,
    pos: torch.Tensor,
    faces: torch.Tensor,
) -> torch.Tensor:
    """The antialiased ``[B,H,W,C]`` image, differentiable in ``color`` and ``pos``.

    ``color [B,H,W,C]``, the rasterizer's ``tri_id [B,H,W]`` and ``depth [B,H,W]``, the
    rasterized clip positions ``pos [B or 1,V,4]`` and int64 ``faces [F,3]``; computes in
    the promoted dtype of ``color`` and ``pos``.
    """
    B, H, W = tri_id.shape
    if faces.shape[0] == 0 or B == 0:
        return color
    dtype = torch.promote_types(color.dtype, pos.dtype)
    pos = pos.expand(B, -1, -1).to(dtype)
    w = pos[..., 3]
    ok = w > EPS_W
    inv_w = 1.0 / torch.where(ok, w, torch.ones_like(w))
    X, Y = pos[..., 0] * inv_w, pos[..., 1] * inv_w
    with torch.no_grad():
        sil = _silhouette_edges(X.detach(), Y.detach(), ok, faces, _edge_topology(faces))
        # Whether each pixel shows a face with a silhouette edge (False on background).
        has_sil = sil.reshape(B, -1, 3).any(-1)
        shift = torch.arange(B, device=tri_id.device).view(B, 1, 1) * has_sil.shape[1]
        shows_sil = has_sil.reshape(-1)[(tri_id.long() + shift).clamp(min=0)] & (tri_id >= 0)
    color_c = color.to(dtype)
    idx: list[torch.Tensor] = []
    deltas: list[torch.Tensor] = []
    for axis in (2, 1):
        _pair_blend(axis, color_c, tri_id, shows_sil, depth.detach(), X, Y, faces, sil, idx, deltas)
    if not idx:
        return color_c
    C = color.shape[-1]
    out = color_c.reshape(-1, C).index_add(0, torch.cat(idx), torch.cat(deltas))
    return out.reshape(B, H, W, C)
