"""Torch backend of the rasterizer: vectorized, tiled, memory-bounded.

Visibility (``tri_id``) is found without autograd:

1. per triangle: NDC vertices, signed area, drop rules (``w <= eps_w``, zero or
   non-finite area, culling), and the inclusive pixel bounding box;
2. binning into pixel windows: a triangle whose box fits in ``TILE x TILE``
   gets one window at its box (sides rounded up to powers of two); a larger one
   gets one window per screen tile its box touches (the (triangle, tile)
   pairs), covering box ∩ tile (sides again rounded up to powers of two);
3. windows of one size are tested together, ``CANDIDATE_CHUNK`` pixels at a
   time, as dense ``[n, rows, cols]`` arrays: the edge functions are outer
   products of per-column ``X_i - px`` and per-row ``Y_i - py`` differences
   (the symmetric formula of ``CONTRACT.md``, so shared edges are watertight);
4. the depth test is one ``scatter_reduce(amin)`` of a 64-bit key per covered
   pixel: high 32 bits = the depth's float32 bits made order-preserving, low 32
   bits = the triangle id, so the nearest depth wins and exact ties go to the
   lower id.

Nothing of size ``B x H x W x F`` is ever built: memory is the output, the
windows (at most ``MAX_WINDOWS``, refused before allocating beyond) and one
chunk. Barycentrics and depth of the winning triangles are then computed with
ordinary differentiable torch ops (``fragment_attributes``), so autograd gives
the gradients with respect to ``pos_clip``.
"""

from __future__ import annotations

import torch

from .._constants import BACKGROUND_DEPTH, CANDIDATE_CHUNK, MAX_WINDOWS, TILE

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


def _next_pow2(v: torch.Tensor) -> torch.Tensor:
    """Smallest power of two >= v (v >= 1), elementwise, int64."""
    return torch.pow(2, torch.ceil(torch.log2(v.double())).to(torch.int64))


def _chunk_runs(n: int, per_item: int, budget: int):
    """Consecutive [start, end) runs of n items of ``per_item`` cells, <= budget cells."""
    step = max(1, budget // max(per_item, 1))
    return [(i, min(i + step, n)) for i in range(0, n, step)]


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
    empty = torch.full((B, height, width), -1, dtype=torch.int32, device=device)
    if F == 0 or B == 0:
        return empty

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
        return empty
    sel = lambda t: t.reshape(-1).index_select(0, tri)  # noqa: E731
    c_lo, c_hi, r_lo, r_hi = sel(c_lo), sel(c_hi), sel(r_lo), sel(r_hi)
    # Per-triangle data: x0 x1 x2 y0 y1 y2 z0 z1 z2 area.
    data = torch.cat(
        [
            x.reshape(-1, 3).index_select(0, tri),
            y.reshape(-1, 3).index_select(0, tri),
            z.reshape(-1, 3).index_select(0, tri),
            area.reshape(-1, 1).index_select(0, tri),
        ],
        dim=1,
    )
    batch = tri // F
    fid = tri % F

    # Windows: a triangle whose box fits in TILE x TILE gets one window at its box corner,
    # sized to the next powers of two; a larger one gets one window per screen tile its box
    # touches (the (triangle, tile) pairs of the binning), covering box ∩ tile, sized alike.
    bw = c_hi - c_lo + 1
    bh = r_hi - r_lo + 1
    big = (bw > TILE) | (bh > TILE)
    small = torch.nonzero(~big).squeeze(1)
    large = torch.nonzero(big).squeeze(1)
    tx0, tx1 = c_lo[large] // TILE, c_hi[large] // TILE
    ty0, ty1 = r_lo[large] // TILE, r_hi[large] // TILE
    ntx = tx1 - tx0 + 1
    ntiles = ntx * (ty1 - ty0 + 1)
    num_windows = small.numel() + int(ntiles.sum())
    if num_windows > MAX_WINDOWS:
        raise ValueError(
            f"{num_windows} (triangle, tile) windows exceed the torch backend's budget of "
            f"{MAX_WINDOWS}; use a smaller resolution or batch, or fewer/smaller triangles"
        )
    win_tri = [small]
    win_c0, win_r0 = [c_lo[small]], [r_lo[small]]
    win_c1, win_r1 = [c_hi[small]], [r_hi[small]]
    win_sw = [_next_pow2(bw[small])]
    win_sh = [_next_pow2(bh[small])]
    if large.numel() > 0:
        owner = torch.repeat_interleave(torch.arange(large.numel(), device=device), ntiles)
        k = torch.arange(owner.numel(), device=device) - (torch.cumsum(ntiles, 0) - ntiles)[owner]
        tx = tx0[owner] + k % ntx[owner]
        ty = ty0[owner] + k // ntx[owner]
        t = large[owner]
        cx0 = torch.maximum(c_lo[t], tx * TILE)
        cy0 = torch.maximum(r_lo[t], ty * TILE)
        cx1 = torch.minimum(c_hi[t], tx * TILE + (TILE - 1))
        cy1 = torch.minimum(r_hi[t], ty * TILE + (TILE - 1))
        win_tri.append(t)
        win_c0.append(cx0)
        win_r0.append(cy0)
        win_c1.append(cx1)
        win_r1.append(cy1)
        win_sw.append(_next_pow2(cx1 - cx0 + 1))  # box ∩ tile, rounded up like small boxes
        win_sh.append(_next_pow2(cy1 - cy0 + 1))
    win_tri = torch.cat(win_tri)
    win_c0, win_r0 = torch.cat(win_c0), torch.cat(win_r0)
    win_c1, win_r1 = torch.cat(win_c1), torch.cat(win_r1)
    win_sw, win_sh = torch.cat(win_sw), torch.cat(win_sh)

    keys = torch.full((B * height * width,), _KEY_EMPTY, dtype=torch.int64, device=device)
    bucket = win_sh * (TILE + 1) + win_sw
    order = torch.argsort(bucket, stable=True)
    kinds, counts = torch.unique_consecutive(bucket[order], return_counts=True)
    start = 0
    for kind, count in zip(kinds.tolist(), counts.tolist()):
        sh, sw = divmod(kind, TILE + 1)
        group = order[start : start + count]
        start += count
        for a, b in _chunk_runs(count, sh * sw, CANDIDATE_CHUNK):
            w = group[a:b]
            t = win_tri.index_select(0, w)
            _cover_window(
                data.index_select(0, t),
                batch.index_select(0, t),
                fid.index_select(0, t),
                win_c0.index_select(0, w),
                win_r0.index_select(0, w),
                win_c1.index_select(0, w),
                win_r1.index_select(0, w),
                sh,
                sw,
                height,
                width,
                keys,
            )

    tri_id = torch.where(keys == _KEY_EMPTY, -1, keys & 0xFFFFFFFF).to(torch.int32)
    return tri_id.reshape(B, height, width)


def _cover_window(d, batch, fid, c0, r0, c1, r1, sh, sw, height, width, keys) -> None:
    """Coverage and depth test of ``sh x sw`` pixel windows (one per row of ``d``) whose
    top-left pixel is ``(r0, c0)``, limited to rows ``<= r1`` and columns ``<= c1``.
    Updates ``keys`` in place with ``scatter_reduce(amin)``."""
    dtype = d.dtype
    cols = c0[:, None] + torch.arange(sw, device=d.device)  # [n,sw]
    rows = r0[:, None] + torch.arange(sh, device=d.device)  # [n,sh]
    px = (2 * cols + 1).to(dtype) / width - 1
    py = (2 * rows + 1).to(dtype) / height - 1
    dx = d[:, 0:3, None] - px[:, None, :]  # [n,3,sw]: X_i - px
    dy = (d[:, 3:6, None] - py[:, None, :]).unsqueeze(-1)  # [n,3,sh,1]: Y_i - py
    dx = dx.unsqueeze(2)  # [n,3,1,sw]
    area = d[:, 9, None, None]
    l0 = (dx[:, 1] * dy[:, 2] - dx[:, 2] * dy[:, 1]) / area  # [n,sh,sw]
    l1 = (dx[:, 2] * dy[:, 0] - dx[:, 0] * dy[:, 2]) / area
    l2 = (dx[:, 0] * dy[:, 1] - dx[:, 1] * dy[:, 0]) / area
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    inside &= (rows <= r1[:, None])[:, :, None] & (cols <= c1[:, None])[:, None, :]
    hit = torch.nonzero(inside.reshape(-1)).squeeze(1)
    if hit.numel() == 0:
        return
    cells = sh * sw
    n = hit // cells
    cell = hit % cells
    depth = (
        l0.reshape(-1).index_select(0, hit) * d[:, 6].index_select(0, n)
        + l1.reshape(-1).index_select(0, hit) * d[:, 7].index_select(0, n)
        + l2.reshape(-1).index_select(0, hit) * d[:, 8].index_select(0, n)
    )
    key = (_sortable_depth(depth) << 32) | fid.index_select(0, n)
    row = r0.index_select(0, n) + cell // sw
    col = c0.index_select(0, n) + cell % sw
    pix = (batch.index_select(0, n) * height + row) * width + col
    keys.scatter_reduce_(0, pix, key, "amin")


def fragment_attributes(
    pos: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor, eps_w: float
) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """Differentiable perspective-correct barycentrics and depth for known ``tri_id``.

    ``pos`` [B,V,4], ``faces`` [F,3] int64, ``tri_id`` [B,H,W] int32. Returns
    ``bary`` [B,H,W,3] and ``depth`` [B,H,W] in ``pos.dtype`` (background: zeros and
    ``BACKGROUND_DEPTH``), and the compact form ``(idx [N], bary [N,3])`` of the covered
    pixels (flat indices into B*H*W), which :func:`interpolate` uses directly. Only the
    covered pixels are computed; gradients reach ``pos`` through index gathers.
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
        b_vals = pos.new_zeros(0, 3) + zero
        return (bary + zero).reshape(B, H, W, 3), (depth + zero).reshape(B, H, W), (idx, b_vals)
    dtype = pos.dtype
    b = idx // (H * W)
    pix = idx % (H * W)
    row = pix // W
    col = pix % W
    vid = faces.index_select(0, flat.index_select(0, idx).long()) + (b * V).unsqueeze(1)
    # One [N] gather per corner and coordinate (from [B*V] vectors): all the arithmetic is
    # on [N] vectors, and the backward of each gather is a small index_add.
    comp = pos.reshape(B * V, 4).unbind(1)
    X, Y, Zw, inv_w = [], [], [], []
    for k in range(3):
        corner = vid[:, k]
        xk, yk, zk, wk = (c.index_select(0, corner) for c in comp)
        iw = 1.0 / wk
        X.append(xk * iw)
        Y.append(yk * iw)
        Zw.append(zk * iw)
        inv_w.append(iw)
    px = (2 * col + 1).to(dtype) / W - 1
    py = (2 * row + 1).to(dtype) / H - 1
    x = [v - px for v in X]
    y = [v - py for v in Y]
    area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0])
    l0 = (x[1] * y[2] - x[2] * y[1]) / area
    l1 = (x[2] * y[0] - x[0] * y[2]) / area
    l2 = (x[0] * y[1] - x[1] * y[0]) / area
    q0, q1, q2 = l0 * inv_w[0], l1 * inv_w[1], l2 * inv_w[2]
    total = q0 + q1 + q2
    b_vals = torch.stack([q0 / total, q1 / total, q2 / total], dim=1)
    d_vals = l0 * Zw[0] + l1 * Zw[1] + l2 * Zw[2]
    bary = bary.index_put((idx,), b_vals)
    depth = depth.index_put((idx,), d_vals)
    return bary.reshape(B, H, W, 3), depth.reshape(B, H, W), (idx, b_vals)
