"""Torch backend of the rasterizer: vectorized, tiled, memory-bounded.

Visibility (``tri_id``) is found without autograd:

1. per triangle: NDC vertices, signed area, drop rules (``w <= eps_w``, zero or
   non-finite area, culling), and the inclusive pixel bounding box;
2. triangles are binned to ``TILE x TILE`` screen tiles: one (triangle, tile)
   pair per tile the box touches, processed in chunks of ``PAIR_CHUNK`` pairs;
3. each pair expands to the pixels of (box ∩ tile), in chunks of
   ``CANDIDATE_CHUNK`` candidate pixels; the coverage test uses the symmetric
   edge functions of ``CONTRACT.md``;
4. the depth test is one ``scatter_reduce(amin)`` of a 64-bit key per candidate:
   high 32 bits = the depth's float32 bits made order-preserving, low 32 bits =
   the triangle id, so the nearest depth wins and exact ties go to the lower id.

Nothing of size ``B x H x W x F`` is ever built: memory is the output plus the
chunk budgets. Barycentrics and depth of the winning triangles are then computed
with ordinary differentiable torch ops (``fragment_attributes``), so autograd
gives the gradients with respect to ``pos_clip``.
"""

from __future__ import annotations

import torch

from ._constants import BACKGROUND_DEPTH, CANDIDATE_CHUNK, PAIR_CHUNK, TILE

_KEY_EMPTY = torch.iinfo(torch.int64).max


def _screen(pos: torch.Tensor, eps_w: float):
    """NDC x, y and z/w per vertex (``[B,V]`` each) and the ``w > eps_w`` mask."""
    w = pos[..., 3]
    ok = w > eps_w
    inv_w = 1.0 / torch.where(ok, w, torch.ones_like(w))
    return pos[..., 0] * inv_w, pos[..., 1] * inv_w, pos[..., 2] * inv_w, ok


def _sortable_depth(depth: torch.Tensor) -> torch.Tensor:
    """int64 whose order is the order of the float32 value of ``depth``."""
    bits = (depth.to(torch.float32) + 0.0).view(torch.int32)  # +0.0 turns -0 into +0
    bits = torch.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return bits.to(torch.int64)


def _pixel_box(lo: torch.Tensor, hi: torch.Tensor, n: int):
    """Inclusive index range of the pixel centres in NDC ``[lo, hi]`` along an axis of n.

    Pixel i has its centre at ``(2i+1)/n - 1``, i.e. ``i = (x+1) n/2 - 1/2``. The box
    is widened by 1e-3 pixel (computed in float64) so that float32 rounding of a
    centre lying on the box edge can never exclude it; the coverage test decides.
    """
    u_lo = (lo.double() + 1.0) * (0.5 * n) - 0.5
    u_hi = (hi.double() + 1.0) * (0.5 * n) - 0.5
    i_lo = torch.ceil(u_lo - 1e-3).clamp(0, n).to(torch.int64)
    i_hi = torch.floor(u_hi + 1e-3).clamp(-1, n - 1).to(torch.int64)
    return i_lo, i_hi


def _expand(counts: torch.Tensor):
    """For counts [N]: (owner index per expanded item, offset of the item within its owner)."""
    total = int(counts.sum())
    owner = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    starts = torch.cumsum(counts, 0) - counts
    offset = torch.arange(total, device=counts.device) - starts[owner]
    return owner, offset


def _chunks(counts: torch.Tensor, budget: int):
    """Split items with the given sizes into consecutive [start, end) runs of <= budget total
    (a single item larger than the budget gets a run of its own)."""
    n = counts.numel()
    if n == 0:
        return []
    csum = torch.cumsum(counts, 0)
    total = int(csum[-1])
    if total <= budget:
        return [(0, n)]
    runs = []
    start = 0
    base = 0
    while start < n:
        end = int(torch.searchsorted(csum, base + budget, right=True))
        end = max(end, start + 1)
        runs.append((start, end))
        base = int(csum[end - 1])
        start = end
    return runs


@torch.no_grad()
def rasterize_ids(
    pos: torch.Tensor, faces: torch.Tensor, height: int, width: int, eps_w: float, cull: int
) -> torch.Tensor:
    """Visible triangle id per pixel, ``[B,H,W]`` int32 (-1 background).

    ``pos`` [B,V,4] float32/float64, ``faces`` [F,3] int64 with valid indices.
    """
    B = pos.shape[0]
    F = faces.shape[0]
    device = pos.device
    keys = torch.full((B * height * width,), _KEY_EMPTY, dtype=torch.int64, device=device)
    if F == 0 or B == 0:
        return torch.full((B, height, width), -1, dtype=torch.int32, device=device)

    X, Y, Zw, ok = _screen(pos, eps_w)
    x = X[:, faces]  # [B,F,3]
    y = Y[:, faces]
    z = Zw[:, faces]
    valid = ok[:, faces].all(-1)
    area = (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (x[..., 2] - x[..., 0]) * (
        y[..., 1] - y[..., 0]
    )
    valid &= (area != 0) & torch.isfinite(area)
    if cull < 0:
        valid &= area < 0
    elif cull > 0:
        valid &= area > 0

    c_lo, c_hi = _pixel_box(x.amin(-1), x.amax(-1), width)
    r_lo, r_hi = _pixel_box(y.amin(-1), y.amax(-1), height)
    valid &= (c_lo <= c_hi) & (r_lo <= r_hi)

    tri = torch.nonzero(valid.reshape(-1)).squeeze(1)  # flat b*F + f
    if tri.numel() == 0:
        return torch.full((B, height, width), -1, dtype=torch.int32, device=device)
    c_lo, c_hi = c_lo.reshape(-1)[tri], c_hi.reshape(-1)[tri]
    r_lo, r_hi = r_lo.reshape(-1)[tri], r_hi.reshape(-1)[tri]
    # Per-triangle data gathered once: x0 x1 x2 y0 y1 y2 z0 z1 z2 area.
    data = torch.cat([x.reshape(-1, 3)[tri], y.reshape(-1, 3)[tri], z.reshape(-1, 3)[tri]], dim=1)
    data = torch.cat([data, area.reshape(-1)[tri].unsqueeze(1)], dim=1)
    batch = tri // F
    fid = tri % F

    tx0, tx1 = c_lo // TILE, c_hi // TILE
    ty0, ty1 = r_lo // TILE, r_hi // TILE
    ntx = tx1 - tx0 + 1
    ntiles = ntx * (ty1 - ty0 + 1)

    for t_start, t_end in _chunks(ntiles, PAIR_CHUNK):
        sl = slice(t_start, t_end)
        owner, k = _expand(ntiles[sl])
        owner = owner + t_start
        tx = tx0[owner] + k % ntx[owner]
        ty = ty0[owner] + k // ntx[owner]
        cx0 = torch.maximum(c_lo[owner], tx * TILE)
        cx1 = torch.minimum(c_hi[owner], tx * TILE + (TILE - 1))
        cy0 = torch.maximum(r_lo[owner], ty * TILE)
        cy1 = torch.minimum(r_hi[owner], ty * TILE + (TILE - 1))
        rw = cx1 - cx0 + 1
        counts = rw * (cy1 - cy0 + 1)
        for p_start, p_end in _chunks(counts, CANDIDATE_CHUNK):
            ps = slice(p_start, p_end)
            pair, j = _expand(counts[ps])
            pair = pair + p_start
            col = cx0[pair] + j % rw[pair]
            row = cy0[pair] + j // rw[pair]
            t = owner[pair]
            _cover_and_test(data[t], batch[t], fid[t], row, col, height, width, keys)

    tri_id = torch.where(keys == _KEY_EMPTY, -1, keys & 0xFFFFFFFF).to(torch.int32)
    return tri_id.reshape(B, height, width)


def _cover_and_test(d, batch, fid, row, col, height, width, keys) -> None:
    """Coverage test of candidate pixels and depth test into ``keys`` (in place)."""
    dtype = d.dtype
    px = (2 * col + 1).to(dtype) / width - 1
    py = (2 * row + 1).to(dtype) / height - 1
    x0, x1, x2 = d[:, 0] - px, d[:, 1] - px, d[:, 2] - px
    y0, y1, y2 = d[:, 3] - py, d[:, 4] - py, d[:, 5] - py
    area = d[:, 9]
    l0 = (x1 * y2 - x2 * y1) / area
    l1 = (x2 * y0 - x0 * y2) / area
    l2 = (x0 * y1 - x1 * y0) / area
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    sel = torch.nonzero(inside).squeeze(1)
    if sel.numel() == 0:
        return
    ds = d[sel]
    depth = l0[sel] * ds[:, 6] + l1[sel] * ds[:, 7] + l2[sel] * ds[:, 8]
    key = (_sortable_depth(depth) << 32) | fid[sel]
    pix = (batch[sel] * height + row[sel]) * width + col[sel]
    keys.scatter_reduce_(0, pix, key, "amin")


def fragment_attributes(
    pos: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor, eps_w: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Differentiable perspective-correct barycentrics and depth for known ``tri_id``.

    ``pos`` [B,V,4], ``faces`` [F,3] int64, ``tri_id`` [B,H,W] int32. Returns
    ``bary`` [B,H,W,3] and ``depth`` [B,H,W] in ``pos.dtype``; background pixels get
    zeros and ``BACKGROUND_DEPTH``. Only the covered pixels are computed; gradients reach
    ``pos`` through an index gather.
    """
    B, H, W = tri_id.shape
    V = pos.shape[1]
    flat = tri_id.reshape(-1)
    idx = torch.nonzero(flat >= 0).squeeze(1)
    bary = pos.new_zeros(B * H * W, 3)
    depth = pos.new_full((B * H * W,), BACKGROUND_DEPTH)
    if idx.numel() == 0:
        # Keep the graph connected so backward works on an all-background image.
        zero = pos.sum() * 0.0
        return (bary + zero).reshape(B, H, W, 3), (depth + zero).reshape(B, H, W)
    dtype = pos.dtype
    b = idx // (H * W)
    pix = idx % (H * W)
    row = pix // W
    col = pix % W
    vid = faces[flat[idx].long()] + (b * V).unsqueeze(1)  # [N,3]
    p = pos.reshape(B * V, 4).index_select(0, vid.reshape(-1)).reshape(-1, 3, 4)
    inv_w = 1.0 / p[..., 3]
    X = p[..., 0] * inv_w
    Y = p[..., 1] * inv_w
    Zw = p[..., 2] * inv_w
    px = ((2 * col + 1).to(dtype) / W - 1).unsqueeze(1)
    py = ((2 * row + 1).to(dtype) / H - 1).unsqueeze(1)
    x = X - px
    y = Y - py
    e0 = x[:, 1] * y[:, 2] - x[:, 2] * y[:, 1]
    e1 = x[:, 2] * y[:, 0] - x[:, 0] * y[:, 2]
    e2 = x[:, 0] * y[:, 1] - x[:, 1] * y[:, 0]
    area = (X[:, 1] - X[:, 0]) * (Y[:, 2] - Y[:, 0]) - (X[:, 2] - X[:, 0]) * (Y[:, 1] - Y[:, 0])
    lam = torch.stack([e0, e1, e2], dim=1) / area.unsqueeze(1)
    q = lam * inv_w
    b_vals = q / q.sum(1, keepdim=True)
    d_vals = (lam * Zw).sum(1)
    bary = bary.index_put((idx,), b_vals)
    depth = depth.index_put((idx,), d_vals)
    return bary.reshape(B, H, W, 3), depth.reshape(B, H, W)
