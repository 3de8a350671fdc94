"""What the Triton rasterizer ops share: constants, jit helpers, the per-triangle
setup record, tile binning and the deterministic segmented sums.

The setup record (``NREC`` float32 per (batch, triangle)) is written by the
rasterize op's setup kernel and read through the ``REC_*`` slot offsets below.
Bins (:class:`RasterBins`) are per-tile triangle lists; the backward passes of
both ops sum per-entry rows per triangle and then per vertex in a fixed order
(:func:`reduce_entries`), so their gradients are bitwise repeatable.
"""

from __future__ import annotations

import dataclasses

import torch
import triton
import triton.language as tl

from _common.codegen import kernel_spec

#: Screen tile (pixels) of the forward and backward kernels: one program per tile.
TILE_H = 8
TILE_W = 8
#: Triangles handled together in one chunk of a tile's list.
TB = 8
#: Float32 values per triangle record written by the setup kernel.
NREC = 24
#: Triangles per program of the setup kernel.
SETUP_BLOCK = 128
#: Pixels per program of the per-pixel kernels (interpolation, atomic backward).
PIX_BLOCK = 128
#: Rows (triangles / vertices) per program of the segmented-sum kernels.
SEG_BLOCK = 64
#: Number of warps of every kernel but the backward tile kernels.
NUM_WARPS = 4
#: Warps of the backward tile kernels: one, so that their per-entry sums over the tile's
#: pixels stay inside a warp (register adds and shuffles, no shared-memory barriers).
BWD_TILE_WARPS = 1
#: Pixel-centre bounding boxes are widened by this many pixels before binning, so a
#: centre exactly on a vertex or edge is never lost to rounding (binning is conservative;
#: coverage is decided by the edge functions alone).
BIN_PAD = 0.01
#: Channels per pass of the interpolation backward tile kernel (3 corners x 4 <= 16).
INTERP_TILE_CHANNELS = 4
#: Largest column blocks of the per-pixel and segmented-sum kernels (smaller widths use
#: the next power of two of the channel count).
MAX_BLOCK_C = 4
MAX_BLOCK_K = 16
MAX_BLOCK_D = 8


_INT_MAX = tl.constexpr(2147483647)

#: Slots of the per-triangle setup record (offsets in float32 from the record's start).
#: Edge k is the edge opposite vertex k, stored as its canonical end points
#: ``(ax, ay, bx, by)`` at ``REC_EDGE0 + 4 k``; ``REC_EDGE_SCALE + k`` holds its
#: orientation sign over the signed area (edge value times it = screen barycentric
#: ``l_k``); ``REC_Z + k`` holds ``z_k / w_k`` and ``REC_Q + k`` holds ``1 / w_k``;
#: ``REC_PAD`` starts three zeros that pad the record to ``NREC``.
REC_EDGE0 = tl.constexpr(0)
REC_EDGE1 = tl.constexpr(4)
REC_EDGE2 = tl.constexpr(8)
REC_EDGE_SCALE = tl.constexpr(12)
REC_Z = tl.constexpr(15)
REC_Q = tl.constexpr(18)
REC_PAD = tl.constexpr(21)

#: Triton type of every kernel argument, by name (one name, one meaning in all kernels):
#: the compile checks derive each kernel's signature from it.
ARG_TYPES = {
    **dict.fromkeys(
        ("pos_ptr", "rec_ptr", "bary_ptr", "depth_ptr", "gb_ptr", "gd_ptr", "part_ptr"), "*fp32"
    ),
    **dict.fromkeys(
        ("grad_ptr", "tri_ptr", "out_ptr", "attr_ptr", "go_ptr", "gattr_ptr", "gbary_ptr"), "*fp32"
    ),
    **dict.fromkeys(("faces_ptr", "rng_ptr", "cnt_ptr", "tri_id_ptr", "bin_tri_ptr"), "*i32"),
    **dict.fromkeys(("tile_start_ptr", "tile_count_ptr", "tri_entries_ptr"), "*i32"),
    **dict.fromkeys(("tri_start_ptr", "tri_count_ptr", "corners_ptr"), "*i32"),
    **dict.fromkeys(("vstart_ptr", "vcount_ptr", "pair_code_ptr", "vid_ptr"), "*i32"),
    **dict.fromkeys(("color_ptr", "gcolor_ptr", "pair_s_ptr"), "*fp32"),
    "sil_ptr": "*i8",
    "pair_idx_ptr": "*i64",
    **dict.fromkeys(("V", "F", "H", "W", "TX", "HW", "C", "K", "D", "N", "NROWS", "cull"), "i32"),
    **dict.fromkeys(("eps_w", "degenerate_area", "bin_pad", "bg_depth"), "fp32"),
}


# --------------------------------------------------------------------------- jit helpers

# Runtime loop bounds. Every loop whose trip count is a runtime value (a kernel argument
# or a loaded count) is a ``while`` loop, never ``for ... in range(...)``: Triton 3.6's
# interpreter turns ``range``'s bound into a Python int with ``int(array)`` on a
# one-element array, which NumPy >= 2.4 refuses ("only 0-dimensional arrays can be
# converted to Python scalars"; Triton 3.9 squeezes first). ``while`` only needs the
# truth value of the comparison, which both accept. The compiled path is the same either
# way (none of these loops is software-pipelined: their loads are gathers).


@triton.jit
def _edge(ax, ay, bx, by, px, py):
    """Edge function of the directed edge a -> b at point p (twice a signed area)."""
    return (ax - px) * (by - py) - (bx - px) * (ay - py)


@triton.jit
def canonical_edge(xa, ya, xb, yb):
    """End points of an edge in canonical (lexicographic) order, and the orientation sign."""
    swap = (xa > xb) | ((xa == xb) & (ya > yb))
    ax = tl.where(swap, xb, xa)
    ay = tl.where(swap, yb, ya)
    bx = tl.where(swap, xa, xb)
    by = tl.where(swap, ya, yb)
    sign = tl.where(swap, -1.0, 1.0)
    return ax, ay, bx, by, sign


@triton.jit
def record_edge(rp, m, px, py, EDGE: tl.constexpr, K: tl.constexpr):
    """Screen barycentric ``l_K`` of pixel centres (px, py): the value of the record's
    edge at slot ``EDGE`` times its scale at ``REC_EDGE_SCALE + K``; masked lanes read
    zeros."""
    return _edge(
        tl.load(rp + (EDGE + 0), mask=m, other=0.0),
        tl.load(rp + (EDGE + 1), mask=m, other=0.0),
        tl.load(rp + (EDGE + 2), mask=m, other=0.0),
        tl.load(rp + (EDGE + 3), mask=m, other=0.0),
        px,
        py,
    ) * tl.load(rp + (REC_EDGE_SCALE + K), mask=m, other=0.0)


@triton.jit
def record_barycentrics(rp, m, px, py):
    """Screen-space barycentrics (l0, l1, l2) of pixel centres (px, py) in the triangles
    whose setup records start at ``rp``; masked lanes read zeros."""
    l0 = record_edge(rp, m, px, py, REC_EDGE0, 0)
    l1 = record_edge(rp, m, px, py, REC_EDGE1, 1)
    l2 = record_edge(rp, m, px, py, REC_EDGE2, 2)
    return l0, l1, l2


@triton.jit
def pixel_centres(r, c, H, W):
    """NDC centres of pixels (r, c), computed as in the contract (IEEE division)."""
    px = tl.math.div_rn((2 * c + 1).to(tl.float32), W.to(tl.float32)) - 1.0
    py = tl.math.div_rn((2 * r + 1).to(tl.float32), H.to(tl.float32)) - 1.0
    return px, py


@triton.jit
def tile_pixels(tile, TX, H, W, TILE_H: tl.constexpr, TILE_W: tl.constexpr):
    """Rows, columns (``[TILE_H * TILE_W, 1]``) and in-image mask of the pixels of
    screen tile ``tile`` (row-major over ``TX`` tiles per row)."""
    ty = tile // TX
    tx = tile - ty * TX
    p = tl.arange(0, TILE_H * TILE_W)[:, None]
    r = ty * TILE_H + p // TILE_W
    c = tx * TILE_W + p % TILE_W
    pm = (r < H) & (c < W)
    return r, c, pm


@triton.jit
def load_face(faces_ptr, f, m):
    """Vertex indices (i0, i1, i2) of faces ``f`` (int32 ``[F,3]``); masked lanes read 0."""
    i0 = tl.load(faces_ptr + f * 3 + 0, mask=m, other=0)
    i1 = tl.load(faces_ptr + f * 3 + 1, mask=m, other=0)
    i2 = tl.load(faces_ptr + f * 3 + 2, mask=m, other=0)
    return i0, i1, i2


@triton.jit
def load_vertex(pb, i, m):
    """Clip position (x, y, z, w) of vertices ``i`` of one image (``pb``: its ``[V,4]``
    positions); masked lanes read (0, 0, 0, 1)."""
    x = tl.load(pb + i * 4 + 0, mask=m, other=0.0)
    y = tl.load(pb + i * 4 + 1, mask=m, other=0.0)
    z = tl.load(pb + i * 4 + 2, mask=m, other=0.0)
    w = tl.load(pb + i * 4 + 3, mask=m, other=1.0)
    return x, y, z, w


@triton.jit
def load_visible_face(pos_ptr, faces_ptr, b, V, t, cov):
    """The face ``t`` visible at each pixel of image ``b`` (``cov``: covered): its vertex
    indices and the clip ``x, y, z, w`` of its three corners, ``(i0, i1, i2, x0, y0, z0,
    w0, x1, ..., w2)``; masked lanes read face 0's harmless values."""
    ts = tl.where(cov, t, 0)
    i0, i1, i2 = load_face(faces_ptr, ts, cov)
    pb = pos_ptr + b * V * 4
    x0, y0, z0, w0 = load_vertex(pb, i0, cov)
    x1, y1, z1, w1 = load_vertex(pb, i1, cov)
    x2, y2, z2, w2 = load_vertex(pb, i2, cov)
    return i0, i1, i2, x0, y0, z0, w0, x1, y1, z1, w1, x2, y2, z2, w2


@triton.jit
def screen_corners(x0, y0, w0, x1, y1, w1, x2, y2, w2, cov):
    """``q = 1/w`` and screen ``X = x q``, ``Y = y q`` of three corners, then the inverse
    of their signed screen area (twice the triangle's; 1 on masked lanes):
    ``(q0, q1, q2, X0, Y0, X1, Y1, X2, Y2, inv_area)``."""
    q0 = 1.0 / w0
    q1 = 1.0 / w1
    q2 = 1.0 / w2
    X0 = x0 * q0
    Y0 = y0 * q0
    X1 = x1 * q1
    Y1 = y1 * q1
    X2 = x2 * q2
    Y2 = y2 * q2
    area = (X1 - X0) * (Y2 - Y0) - (X2 - X0) * (Y1 - Y0)
    inv_area = 1.0 / tl.where(cov, area, 1.0)
    return q0, q1, q2, X0, Y0, X1, Y1, X2, Y2, inv_area


@triton.jit
def load_pixel3(ptr, pix, m):
    """The three values of pixels ``pix`` in a ``[B,H,W,3]`` map; masked lanes read 0."""
    v0 = tl.load(ptr + pix * 3 + 0, mask=m, other=0.0)
    v1 = tl.load(ptr + pix * 3 + 1, mask=m, other=0.0)
    v2 = tl.load(ptr + pix * 3 + 2, mask=m, other=0.0)
    return v0, v1, v2


# --------------------------------------------------------------------------- segmented sums


@triton.jit
def _entry_to_tri_kernel(
    part_ptr,  # [N, K] per-entry rows
    tri_entries_ptr,  # [B*F] entry positions of each triangle, grouped per triangle
    tri_start_ptr,  # [B*F] first position in tri_entries of each triangle
    tri_count_ptr,  # [B*F] number of entries of each triangle
    out_ptr,  # [B*F, K] out: per-triangle sums
    NROWS,  # B*F
    K,  # columns of a row
    BLOCK_R: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    """out[row, :K] = sum over i of part[tri_entries[tri_start[row] + i], :K], i ascending."""
    rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
    cols = tl.program_id(1) * BLOCK_K + tl.arange(0, BLOCK_K)
    rm = rows < NROWS
    cm = cols < K
    start = tl.load(tri_start_ptr + rows, mask=rm, other=0)
    cnt = tl.load(tri_count_ptr + rows, mask=rm, other=0)
    acc = tl.zeros([BLOCK_R, BLOCK_K], tl.float32)
    n_max = tl.max(cnt, axis=0)
    i = 0
    while i < n_max:  # a while loop: see the note on runtime loop bounds above
        m = rm & (i < cnt)
        e = tl.load(tri_entries_ptr + start + i, mask=m, other=0).to(tl.int64)
        acc += tl.load(
            part_ptr + e[:, None] * K + cols[None, :], mask=m[:, None] & cm[None, :], other=0.0
        )
        i += 1
    tl.store(
        out_ptr + rows.to(tl.int64)[:, None] * K + cols[None, :],
        acc,
        mask=rm[:, None] & cm[None, :],
    )


@triton.jit
def _tri_to_vertex_kernel(
    tri_ptr,  # [B, F, 3, D] per-(triangle, corner) sums
    corners_ptr,  # [F*3] corners f*3 + k of each vertex, grouped per vertex, ascending
    vstart_ptr,  # [V] first position in corners of each vertex
    vcount_ptr,  # [V] number of corners of each vertex
    out_ptr,  # [B, V, D] out: per-vertex sums
    V,
    F,
    D,  # columns per corner
    BLOCK_V: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """out[b, v, :D] = sum over the corners (f, k) of vertex v (ascending f) of tri[b, f, k, :D]."""
    b = tl.program_id(1).to(tl.int64)
    v = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    d = tl.program_id(2) * BLOCK_D + tl.arange(0, BLOCK_D)
    vm = v < V
    dm = d < D
    start = tl.load(vstart_ptr + v, mask=vm, other=0)
    cnt = tl.load(vcount_ptr + v, mask=vm, other=0)
    acc = tl.zeros([BLOCK_V, BLOCK_D], tl.float32)
    n_max = tl.max(cnt, axis=0)
    i = 0
    while i < n_max:
        m = vm & (i < cnt)
        corner = tl.load(corners_ptr + start + i, mask=m, other=0).to(tl.int64)
        src = tri_ptr + (b * F * 3 + corner)[:, None] * D + d[None, :]
        acc += tl.load(src, mask=m[:, None] & dm[None, :], other=0.0)
        i += 1
    tl.store(out_ptr + (b * V + v)[:, None] * D + d[None, :], acc, mask=vm[:, None] & dm[None, :])


# --------------------------------------------------------------------------- host: bins


@dataclasses.dataclass(frozen=True)
class RasterBins:
    """Per-tile triangle lists of one rasterization (batch ``B``, ``F`` faces).

    Entries are (batch, tile, triangle) triples, sorted by (batch, tile) and, within a
    tile, by ascending triangle id. ``bin_tri[tile_start[b*T+t] : +tile_count[b*T+t]]``
    are the triangle ids of tile ``t`` of image ``b`` (``T = tiles_x * tiles_y``,
    tiles of ``tile_h x tile_w`` pixels, row-major). ``tri_entries[tri_start[b*F+f] :
    +tri_count[b*F+f]]`` are the entry positions of triangle ``f`` of image ``b``.
    """

    batch: int
    num_faces: int
    height: int
    width: int
    tile_h: int
    tile_w: int
    tiles_x: int
    tiles_y: int
    bin_tri: torch.Tensor
    tile_start: torch.Tensor
    tile_count: torch.Tensor
    tri_entries: torch.Tensor
    tri_start: torch.Tensor
    tri_count: torch.Tensor

    @property
    def num_entries(self) -> int:
        return int(self.bin_tri.shape[0])


def grid_tiles(height: int, width: int) -> tuple[int, int]:
    """Screen tiles per row and per column of a ``height x width`` image."""
    return triton.cdiv(width, TILE_W), triton.cdiv(height, TILE_H)


def nonempty(t: torch.Tensor) -> torch.Tensor:
    """A kernel argument that is never a zero-size tensor (its pointer is never read)."""
    return t if t.numel() > 0 else torch.zeros(1, dtype=t.dtype, device=t.device)


def bins_from_pairs(
    key: torch.Tensor,
    tri: torch.Tensor,
    batch_tri: torch.Tensor,
    B: int,
    F: int,
    T: int,
    *,
    grouped: bool,
) -> tuple[torch.Tensor, ...]:
    """Sort (tile key, triangle) entries and build the tile and triangle indices.

    ``key = b*T + tile`` per entry, ``tri`` its triangle id and ``batch_tri = b*F + tri``.
    ``grouped``: the entries are already in ascending ``batch_tri`` order (as the
    geometric binning makes them), so the per-triangle index is the inverse of the
    tile sort's permutation instead of a second sort.
    """
    n = key.shape[0]
    small = torch.int32 if B * T < 2**31 else torch.int64
    _, order = torch.sort(key.to(small), stable=True)
    sorted_key = key[order]
    bin_tri = tri[order].to(torch.int32)
    tile_count = torch.bincount(sorted_key, minlength=B * T)
    tile_start = torch.cumsum(tile_count, 0) - tile_count
    if grouped:
        tri_entries = torch.empty_like(order)
        tri_entries[order] = torch.arange(n, device=key.device)
        tri_count = torch.bincount(batch_tri, minlength=B * F)
    else:
        sorted_bt = batch_tri[order]
        _, tri_entries = torch.sort(sorted_bt, stable=True)
        tri_count = torch.bincount(sorted_bt, minlength=B * F)
    tri_start = torch.cumsum(tri_count, 0) - tri_count
    return (
        bin_tri,
        tile_start.to(torch.int32),
        tile_count.to(torch.int32),
        tri_entries.to(torch.int32),
        tri_start.to(torch.int32),
        tri_count.to(torch.int32),
    )


def bins_from_tri_id(tri_id: torch.Tensor, num_faces: int) -> RasterBins:
    """Bins holding, per tile, exactly the triangles visible in it (from a tri_id map).

    Used by the backward functions when the forward's bins are not passed in; it costs
    a sort of the covered pixels.
    """
    B, H, W = tri_id.shape
    F = int(num_faces)
    TX, TY = grid_tiles(H, W)
    T = TX * TY
    device = tri_id.device
    rows = torch.arange(H, device=device) // TILE_H
    cols = torch.arange(W, device=device) // TILE_W
    tile = (rows[:, None] * TX + cols[None, :]).to(torch.int64)
    bidx = torch.arange(B, device=device, dtype=torch.int64)[:, None, None]
    t = tri_id.to(torch.int64)
    keys = ((bidx * T + tile[None]) * max(F, 1) + t)[t >= 0]
    pairs = torch.unique(keys)
    key = torch.div(pairs, max(F, 1), rounding_mode="floor")
    tri = pairs % max(F, 1)
    bt = torch.div(key, T, rounding_mode="floor") * F + tri
    parts = bins_from_pairs(key, tri, bt, B, F, T, grouped=False)
    return RasterBins(B, F, H, W, TILE_H, TILE_W, TX, TY, *parts)


def check_bins(bins: RasterBins, B: int, F: int, H: int, W: int) -> None:
    if not isinstance(bins, RasterBins):
        raise TypeError(f"bins must be a RasterBins from setup_and_bin, got {type(bins)}")
    got = (bins.batch, bins.num_faces, bins.height, bins.width, bins.tile_h, bins.tile_w)
    want = (B, F, H, W, TILE_H, TILE_W)
    if got != want:
        raise ValueError(
            f"bins were made for (B, F, H, W, tile_h, tile_w) = {got}, these inputs need {want}"
        )


# --------------------------------------------------------------------------- host: segmented sums


def vertex_corners(faces: torch.Tensor, V: int) -> tuple[torch.Tensor, ...]:
    """Corners (f*3 + k) of every vertex, ascending, as (corners, start, count) int32."""
    vid = faces.reshape(-1).to(torch.int64)
    _, corners = torch.sort(vid, stable=True)
    count = torch.bincount(vid, minlength=V)
    start = torch.cumsum(count, 0) - count
    return corners.to(torch.int32), start.to(torch.int32), count.to(torch.int32)


def sum_rows(
    part: torch.Tensor,
    entries: torch.Tensor,
    start: torch.Tensor,
    count: torch.Tensor,
    nrows: int,
) -> torch.Tensor:
    """Segmented sum of the rows of ``part [N, K]`` (float32): ``out[row] = sum over i
    of part[entries[start[row] + i]]``, ``i`` ascending (a fixed order), for ``nrows``
    rows (int32 ``entries``, ``start``, ``count``). Returns ``[nrows, K]`` float32."""
    K = part.shape[1]
    out = torch.empty((nrows, K), dtype=torch.float32, device=part.device)
    if nrows * K == 0:
        return out
    block_k = min(triton.next_power_of_2(K), MAX_BLOCK_K)
    _entry_to_tri_kernel[(triton.cdiv(nrows, SEG_BLOCK), triton.cdiv(K, block_k))](
        nonempty(part),
        nonempty(entries),
        start,
        count,
        out,
        nrows,
        K,
        BLOCK_R=SEG_BLOCK,
        BLOCK_K=block_k,
        num_warps=NUM_WARPS,
    )
    return out


def reduce_entries(part: torch.Tensor, bins: RasterBins, faces: torch.Tensor, V: int, D: int):
    """Sum per-entry rows ``[N, 3, D]`` per triangle, then per vertex: ``[B, V, D]``."""
    B, F = bins.batch, bins.num_faces
    device = part.device
    tri = sum_rows(part, bins.tri_entries, bins.tri_start, bins.tri_count, B * F)
    corners, vstart, vcount = vertex_corners(faces, V)
    out = torch.empty((B, V, D), dtype=torch.float32, device=device)
    block_d = min(triton.next_power_of_2(D), MAX_BLOCK_D)
    _tri_to_vertex_kernel[(triton.cdiv(V, SEG_BLOCK), B, triton.cdiv(D, block_d))](
        tri,
        corners,
        vstart,
        vcount,
        out,
        V,
        F,
        D,
        BLOCK_V=SEG_BLOCK,
        BLOCK_D=block_d,
        num_warps=NUM_WARPS,
    )
    return out


# --------------------------------------------------------------------------- codegen


def codegen_specs() -> list[dict]:
    """Every configuration of the segmented-sum kernels, for GPU code-generation checks:
    the smallest, a typical and the largest column block chosen at launch (register use
    grows with the width)."""
    specs = []
    for block_k in (1, 4, MAX_BLOCK_K):
        specs.append(
            kernel_spec(
                f"entry_to_tri[BLOCK_K={block_k}]",
                _entry_to_tri_kernel,
                ARG_TYPES,
                {"BLOCK_R": SEG_BLOCK, "BLOCK_K": block_k},
                num_warps=NUM_WARPS,
            )
        )
    for block_d in (1, 4, MAX_BLOCK_D):
        specs.append(
            kernel_spec(
                f"tri_to_vertex[BLOCK_D={block_d}]",
                _tri_to_vertex_kernel,
                ARG_TYPES,
                {"BLOCK_V": SEG_BLOCK, "BLOCK_D": block_d},
                num_warps=NUM_WARPS,
            )
        )
    return specs
