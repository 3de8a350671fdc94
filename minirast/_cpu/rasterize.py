"""CPU backend (``backend="torch"``) of the rasterizer: vectorized spans, memory-bounded.

Visibility (``tri_id``) is found without autograd:

1. per triangle: NDC vertices, signed area, drop rules (``w <= eps_w``, area zero up
   to rounding (``DEGENERATE_AREA``) or non-finite, culling), and the inclusive pixel
   bounding box;
2. per (triangle, pixel row of its box): the span of columns whose centres can
   be inside. Each edge function is linear in ``px`` on a row,
   ``e_i = c_i - px * (Y_k - Y_j)``, so each edge gives one bound on ``px``; the
   bounds are solved in float64 and widened by a bound on the float32 rounding
   error of the contract's formula (``_EDGE_ERROR * scale_x * scale_y`` in
   edge-function units, where the scales bound ``1 + |X - px|`` and
   ``1 + |Y - py|`` inside the box), so a span never misses a pixel that the
   exact test accepts; a nearly horizontal edge whose bound would be loose by
   more than the screen gives no bound;
3. the pixels of the spans (about the covered pixels, instead of the whole
   box) get the contract's exact test: the symmetric edge functions of
   ``CONTRACT.md`` (shared edges are watertight) in the input dtype;
4. the depth test is one ``scatter_reduce(amin)`` of a 64-bit key per covered
   pixel: high 32 bits = the depth's float32 bits made order-preserving, low 32
   bits = the triangle id, so the nearest depth wins and exact ties go to the
   lower id.

Nothing of size ``B x H x W x F`` is ever built: memory is the output, the
per-triangle arrays, one chunk of at most ``ROW_CHUNK`` rows and one of at most
``CANDIDATE_CHUNK`` pixels (a single row longer than that is a chunk of its own,
at most ``W`` pixels). Barycentrics and depth of the winning triangles are then
computed by :mod:`minirast._cpu.attributes` (with an analytic backward).
"""

from __future__ import annotations

import dataclasses

import torch

from .._constants import CANDIDATE_CHUNK, DEGENERATE_AREA, ROW_CHUNK
from .compiled import stage, want_compiled

_KEY_EMPTY = torch.iinfo(torch.int64).max
_NEGATIVE_ZERO = -(2**31)  # float32 -0.0 seen as int32
#: Bound on the relative rounding error of the contract's edge function evaluated in
#: float32 (a few units in the last place of each difference, product and the final
#: subtraction; doubled for safety), per unit of ``scale_x * scale_y``: see
#: :func:`_span_coefficients`.
_EDGE_ERROR = 32.0 * 2.0**-24


def _sortable_depth(depth: torch.Tensor) -> torch.Tensor:
    """int64 whose order is the order of the float32 value of ``depth`` (-0 and +0 equal).

    The sign of zero is fixed in the integer domain: a compiled stage may not keep a
    floating-point ``+ 0.0`` (the inductor compiles with ``-fno-signed-zeros``)."""
    bits = depth.to(torch.float32).view(torch.int32)
    bits = torch.where(bits == _NEGATIVE_ZERO, 0, bits)
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
    if F == 0 or B == 0:
        return torch.full((B, height, width), -1, dtype=torch.int32, device=device)
    fast = want_compiled(device, B * height * width)
    # One entry per (image, face), flat index b*F + f; dropped triangles get 0 rows.
    tri = _triangle_setup(pos, faces[:, 0], faces[:, 1], faces[:, 2], eps_w, cull,
                          height, width, fast)  # fmt: skip
    keys = torch.full((B * height * width,), _KEY_EMPTY, dtype=torch.int64, device=device)
    for a, b in _runs_by_total(tri.rows, ROW_CHUNK):
        _cover_rows(tri, a, b, height, width, keys, fast)
    return _keys_to_ids(keys, compiled=fast).reshape(B, height, width)


@dataclasses.dataclass
class _Triangles:
    """Every (image, face) pair as 1-D tensors of length ``B*F``. Each quantity is its own
    contiguous vector: on a CPU, arithmetic on the strided columns of an ``[n,k]`` tensor
    is several times slower."""

    xyz: list[torch.Tensor]  # x0 x1 x2 y0 y1 y2 z0 z1 z2: NDC X, Y and z/w of the corners
    area: torch.Tensor  # signed NDC area
    c_lo: torch.Tensor  # inclusive pixel box (int64)
    c_hi: torch.Tensor
    r_lo: torch.Tensor
    rows: torch.Tensor  # pixel rows to scan: box height, 0 for a dropped triangle
    fid: torch.Tensor  # face index f (int64)
    base: torch.Tensor  # b * H (int64): a pixel's flat index is (base + row) * W + col
    spans: list[torch.Tensor]  # the 12 span coefficients (float64), _span_coefficients


def _triangle_setup(pos, f0, f1, f2, eps_w: float, cull: int, height: int, width: int,
                    fast: bool):  # fmt: skip
    """Per (image, face): corners, area, drop rules, pixel box and span coefficients."""
    out = _triangle_setup_stage(pos, f0, f1, f2, eps_w, cull, height, width, compiled=fast)
    return _Triangles(
        xyz=list(out[:9]), area=out[9], c_lo=out[10], c_hi=out[11], r_lo=out[12],
        rows=out[13], fid=out[14], base=out[15], spans=list(out[16:]),
    )  # fmt: skip


def signed_area(x0, x1, x2, y0, y1, y2) -> tuple[torch.Tensor, torch.Tensor]:
    """The contract's signed NDC area of triangles with screen corners ``(x_k, y_k)``
    (tensors of one shape), and whether the area lets them be drawn: finite and not zero
    up to rounding (``|A| > DEGENERATE_AREA`` times its two products' magnitudes). The
    antialiasing's silhouette test reads the same rule."""
    first, second = (x1 - x0) * (y2 - y0), (x2 - x0) * (y1 - y0)
    area = first - second
    drawable = torch.isfinite(area) & (area.abs() > DEGENERATE_AREA * (first.abs() + second.abs()))
    return area, drawable


@stage
def _triangle_setup_stage(pos, f0, f1, f2, eps_w: float, cull: int, height: int, width: int):
    w = pos[..., 3]
    ok = w > eps_w
    inv_w = 1.0 / torch.where(ok, w, torch.ones_like(w))
    X, Y, Zw = pos[..., 0] * inv_w, pos[..., 1] * inv_w, pos[..., 2] * inv_w
    x0, x1, x2 = X[:, f0], X[:, f1], X[:, f2]  # [B,F]
    y0, y1, y2 = Y[:, f0], Y[:, f1], Y[:, f2]
    area, drawable = signed_area(x0, x1, x2, y0, y1, y2)
    valid = ok[:, f0] & ok[:, f1] & ok[:, f2] & drawable
    if cull < 0:
        valid = valid & (area < 0)
    elif cull > 0:
        valid = valid & (area > 0)
    x_lo = torch.minimum(torch.minimum(x0, x1), x2)
    x_hi = torch.maximum(torch.maximum(x0, x1), x2)
    y_lo = torch.minimum(torch.minimum(y0, y1), y2)
    y_hi = torch.maximum(torch.maximum(y0, y1), y2)
    c_lo, c_hi = _pixel_box(x_lo, x_hi, width)
    r_lo, r_hi = _pixel_box(y_lo, y_hi, height)
    valid = valid & (c_lo <= c_hi) & (r_lo <= r_hi)
    rows = torch.where(valid, r_hi - r_lo + 1, 0)
    fid = torch.arange(f0.shape[0], device=pos.device).expand(pos.shape[0], -1)
    base = torch.arange(pos.shape[0], device=pos.device)[:, None].expand_as(fid) * height
    spans = _span_coefficients([x0, x1, x2], [y0, y1, y2], area, x_lo, x_hi, y_lo, y_hi)
    flat = [x0, x1, x2, y0, y1, y2, Zw[:, f0], Zw[:, f1], Zw[:, f2], area, c_lo, c_hi, r_lo,
            rows, fid, base, *spans]  # fmt: skip
    return tuple(v.reshape(-1) for v in flat)


def _span_coefficients(x, y, area, x_lo, x_hi, y_lo, y_hi) -> list[torch.Tensor]:
    """Per triangle, float64: ``[u0, u1, u2, v0, v1, v2, p0, p1, p2, q0, q1, q2]`` such that
    on the pixel row at height ``py`` every centre ``px`` accepted by the exact test lies
    in ``[max_i(p_i + q_i py), min_i(u_i + v_i py)]``.

    Edge ``i`` (from corner j = i+1 to k = i+2) has ``e_i = c_i - px dy`` with
    ``dy = Y_k - Y_j`` and ``c_i = X_j Y_k - X_k Y_j - py (X_j - X_k)``; the exact test
    needs ``e_i / A >= 0`` in float32 arithmetic, whose result differs from the real
    ``e_i`` by at most ``slack = _EDGE_ERROR * scale_x * scale_y``: so ``px <= (c_i +
    slack) / dy`` when ``dy / A > 0`` (an upper bound), ``px >= (c_i - slack) / dy`` when
    ``dy / A < 0`` (a lower bound). An edge whose widening ``slack / |dy|`` exceeds 4 (more
    than the screen) gives no bound (``u = inf``, ``p = -inf``, slopes 0).
    """
    d = lambda v: v.to(torch.float64)  # noqa: E731
    scale_x = 1.0 + torch.maximum(d(x_hi).abs(), d(x_lo).abs()) + (d(x_hi) - d(x_lo))
    scale_y = 1.0 + torch.maximum(d(y_hi).abs(), d(y_lo).abs()) + (d(y_hi) - d(y_lo))
    slack = _EDGE_ERROR * scale_x * scale_y
    positive = area > 0
    consts, slopes, lows, low_slopes = [], [], [], []
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        xj, xk, yj, yk = d(x[j]), d(x[k]), d(y[j]), d(y[k])
        dy = yk - yj
        margin = slack / dy.abs()  # inf where dy == 0
        useful = margin < 4.0
        safe = torch.where(useful, dy, torch.ones_like(dy))
        const = (xj * yk - xk * yj) / safe
        slope = (xk - xj) / safe
        is_upper = useful & ((dy > 0) == positive)
        is_lower = useful & ((dy > 0) != positive)
        consts.append(torch.where(is_upper, const + margin, float("inf")))
        slopes.append(torch.where(is_upper, slope, 0.0))
        lows.append(torch.where(is_lower, const - margin, float("-inf")))
        low_slopes.append(torch.where(is_lower, slope, 0.0))
    return consts + slopes + lows + low_slopes


def _runs_by_total(sizes: torch.Tensor, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` runs of items whose ``sizes`` add up to at most
    ``budget`` (a single item larger than the budget is a run of its own)."""
    n = sizes.numel()
    if n == 0:
        return []
    ends = torch.cumsum(sizes, 0)
    if int(ends[-1]) <= budget:
        return [(0, n)]
    runs, start, done = [], 0, 0
    while start < n:
        end = int(torch.searchsorted(ends, done + budget, right=True))
        end = max(end, start + 1)
        runs.append((start, end))
        done = int(ends[end - 1])
        start = end
    return runs


def _owners(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For items with ``counts``: the owning item of each of the ``sum(counts)`` slots
    (int64) and each item's first slot; a stage gets the slot's rank within its owner as
    ``arange - first[owner]``."""
    items = torch.arange(counts.numel(), device=counts.device)
    owner = torch.repeat_interleave(items, counts, output_size=int(counts.sum()))
    return owner, torch.cumsum(counts, 0) - counts


def _cover_rows(t: _Triangles, a: int, b: int, height: int, width: int, keys, fast) -> None:
    """Coverage and depth test of triangles ``a:b`` of ``t``, one pixel row of their box
    at a time. Updates ``keys`` in place with ``scatter_reduce(amin)``."""
    owner, first = _owners(t.rows[a:b])  # one slot per (triangle, pixel row)
    if owner.numel() == 0:
        return
    part = lambda v: v[a:b]  # noqa: E731
    row, c0, cols = _row_spans(owner, first, part(t.r_lo), part(t.c_lo), part(t.c_hi),
                               *map(part, t.spans), height, width, compiled=fast)  # fmt: skip
    for s, e in _runs_by_total(cols, CANDIDATE_CHUNK):
        span, first_col = _owners(cols[s:e])
        if span.numel() == 0:
            continue
        pix, key = _pixel_keys(span, first_col, owner[s:e], row[s:e], c0[s:e],
                               *map(part, t.xyz), part(t.area), part(t.fid), part(t.base),
                               height, width, compiled=fast)  # fmt: skip
        keys.scatter_reduce_(0, pix, key, "amin")


@stage
def _row_spans(owner, first, r_lo, c_lo, c_hi, u0, u1, u2, v0, v1, v2, p0, p1, p2, q0, q1, q2,
               height: int, width: int):  # fmt: skip
    """Pixel row, first column and column count of the span of each (triangle ``owner``,
    ``k``-th row of its box) slot: the columns between the bounds of
    :func:`_span_coefficients`, inside the triangle's pixel box."""
    rank = torch.arange(owner.shape[0], device=owner.device) - first[owner]
    row = r_lo[owner] + rank
    # float64 centre; the float32 rounding of the tested centre is inside the slack
    py = (2 * row + 1).to(torch.float64) / height - 1
    hi = torch.minimum(
        torch.minimum(u0[owner] + v0[owner] * py, u1[owner] + v1[owner] * py),
        u2[owner] + v2[owner] * py,
    )
    lo = torch.maximum(
        torch.maximum(p0[owner] + q0[owner] * py, p1[owner] + q1[owner] * py),
        p2[owner] + q2[owner] * py,
    )
    half = 0.5 * width
    c0 = torch.ceil(((lo + 1) * half - 0.5).clamp(-1.0, width + 1.0)).to(torch.int64)
    c1 = torch.floor(((hi + 1) * half - 0.5).clamp(-2.0, width + 1.0)).to(torch.int64)
    c0 = torch.maximum(c0, c_lo[owner])
    c1 = torch.minimum(c1, c_hi[owner])
    return row, c0, (c1 - c0 + 1).clamp(min=0)


@stage
def _pixel_keys(span, first, owner, row, c0, x0, x1, x2, y0, y1, y2, z0, z1, z2, area, fid,
                base, height: int, width: int):  # fmt: skip
    """The contract's exact coverage test (symmetric edge functions) and depth of the
    ``k``-th pixel of each row span ``span`` (triangle ``owner``, pixel row ``row``, first
    column ``c0``): the flat pixel index and the depth-test key (``_KEY_EMPTY`` when
    outside)."""
    dtype = x0.dtype
    rank = torch.arange(span.shape[0], device=span.device) - first[span]
    tri = owner[span]
    r = row[span]
    col = c0[span] + rank
    px = (2 * col + 1).to(dtype) / width - 1
    py = (2 * r + 1).to(dtype) / height - 1
    dx0, dx1, dx2 = x0[tri] - px, x1[tri] - px, x2[tri] - px
    dy0, dy1, dy2 = y0[tri] - py, y1[tri] - py, y2[tri] - py
    a = area[tri]
    l0 = (dx1 * dy2 - dx2 * dy1) / a
    l1 = (dx2 * dy0 - dx0 * dy2) / a
    l2 = (dx0 * dy1 - dx1 * dy0) / a
    inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
    depth = l0 * z0[tri] + l1 * z1[tri] + l2 * z2[tri]
    key = (_sortable_depth(depth) << 32) | fid[tri]
    key = torch.where(inside, key, _KEY_EMPTY)
    return (base[tri] + r) * width + col, key


@stage
def _keys_to_ids(keys):
    """Triangle id (int32, -1 where no triangle) from the depth-test keys."""
    return torch.where(keys == _KEY_EMPTY, -1, keys & 0xFFFFFFFF).to(torch.int32)
