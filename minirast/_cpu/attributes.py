"""CPU backend (``backend="torch"``): perspective-correct barycentrics and depth of the
visible faces.

For each covered pixel (flat index ``idx`` into ``B*H*W``, visible face ``tri``)
the contract's formulas (``minirast/CONTRACT.md``), with ``iw_k = 1/w_k``,
``X_k = x_k iw_k``, ``Y_k = y_k iw_k``, ``Zw_k = z_k iw_k``:

    l_k = e_k / A    (symmetric edge functions e_k at the pixel centre, area A)
    q_k = l_k iw_k,  b_k = q_k / (q_0 + q_1 + q_2),  depth = sum_k l_k Zw_k

The backward is analytic (:func:`_attributes_backward`): with ``T = sum q``,

    dq_k = (db_k - sum_j db_j b_j) / T
    dl_k = dq_k iw_k + ddepth Zw_k;   de_k = dl_k / A;   dA = -sum_k dl_k l_k / A
    dX, dY from de (the edge functions' partial derivatives) and dA
    dx = dX iw,  dy = dY iw,  dz = dZw iw,  dw = -(dq l + dX x + dY y + dZw z) iw^2

and the per-vertex sums are one ``index_add`` (sequential on the CPU, so
deterministic). Both passes are element-wise stages over the covered pixels
(compiled where :mod:`minirast._cpu.compiled` allows). The face per pixel is
held fixed (coverage gradients come from ``antialias``).
"""

from __future__ import annotations

import dataclasses

import torch

from .._constants import BACKGROUND_DEPTH
from .compiled import stage, want_compiled


@dataclasses.dataclass
class Covered:
    """The covered pixels of a torch-backend rasterization, as 1-D tensors.

    ``idx`` flat ``B*H*W`` index (int64), ``image`` batch index b, ``verts`` the visible
    face's three vertex indices in ``[0, V)`` (int64), ``bary`` the three
    perspective-correct barycentrics (differentiable in the clip positions); :func:`
    minirast.interpolate` reads these instead of the dense ``[B,H,W,3]`` tensor."""

    idx: torch.Tensor
    image: torch.Tensor
    verts: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
    bary: tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def fragment_attributes(
    pos: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, Covered]:
    """Differentiable perspective-correct barycentrics and depth for known ``tri_id``.

    ``pos`` [B,V,4] float32/float64, ``faces`` [F,3] int64, ``tri_id`` [B,H,W] int32.
    Returns ``bary`` [B,H,W,3] and ``depth`` [B,H,W] in ``pos.dtype`` (background: zeros
    and ``BACKGROUND_DEPTH``) and the :class:`Covered` pixels. Gradients reach ``pos``
    through the analytic backward of the module docstring.
    """
    B, H, W = tri_id.shape
    flat = tri_id.reshape(-1)
    idx = torch.nonzero(flat >= 0).squeeze(1)
    fast = want_compiled(pos.device, B * H * W)
    image, v0, v1, v2 = _pixel_vertices(idx, flat, faces[:, 0], faces[:, 1], faces[:, 2], H, W,
                                        compiled=fast)  # fmt: skip
    bary, depth, b0, b1, b2 = _Attributes.apply(pos, idx, image, v0, v1, v2, H, W, fast)
    return bary, depth, Covered(idx=idx, image=image, verts=(v0, v1, v2), bary=(b0, b1, b2))


@stage
def _pixel_vertices(idx, flat, f0, f1, f2, height: int, width: int):
    """Batch index and the visible face's vertex indices of each covered pixel."""
    tri = flat[idx].to(torch.int64)
    return idx // (height * width), f0[tri], f1[tri], f2[tri]


class _Attributes(torch.autograd.Function):
    @staticmethod
    def forward(ctx, pos, idx, image, v0, v1, v2, height, width, fast):
        B, V = pos.shape[0], pos.shape[1]
        comps = [c.contiguous() for c in pos.detach().reshape(B * V, 4).unbind(1)]
        geometry = (idx, image, v0, v1, v2, *comps, V, height, width)
        b0, b1, b2, d = _attributes_forward(*geometry, compiled=fast)
        bary = pos.new_zeros(B * height * width, 3)
        depth = pos.new_full((B * height * width,), BACKGROUND_DEPTH)
        if idx.numel() > 0:
            bary.index_put_((idx,), torch.stack([b0, b1, b2], dim=1))
            depth.index_put_((idx,), d)
        ctx.save_for_backward(idx, image, v0, v1, v2, *comps)
        ctx.shape = (B, V, height, width, fast)
        ctx.set_materialize_grads(False)
        return bary.reshape(B, height, width, 3), depth.reshape(B, height, width), b0, b1, b2

    @staticmethod
    def backward(ctx, g_bary, g_depth, g0, g1, g2):
        idx, image, v0, v1, v2, *comps = ctx.saved_tensors
        B, V, height, width, fast = ctx.shape
        n = idx.numel()
        zero = comps[0].new_zeros(n)
        gb = [g if g is not None else zero for g in (g0, g1, g2)]
        if g_bary is not None:
            dense = g_bary.reshape(-1, 3).index_select(0, idx)
            gb = [gb[k] + dense[:, k] for k in range(3)]
        gd = g_depth.reshape(-1).index_select(0, idx) if g_depth is not None else zero
        grads, target = _attributes_backward(
            *gb, gd, idx, image, v0, v1, v2, *comps, V, height, width, compiled=fast
        )
        g_pos = comps[0].new_zeros(B * V * 4).index_add_(0, target.reshape(-1), grads.reshape(-1))
        return g_pos.reshape(B, V, 4), None, None, None, None, None, None, None, None


def _corners(idx, image, v0, v1, v2, xs, ys, zs, ws, V: int, height: int, width: int):
    """Per covered pixel: pixel centre offsets and the corners' screen quantities."""
    dtype = xs.dtype
    pix = idx % (height * width)
    px = (2 * (pix % width) + 1).to(dtype) / width - 1
    py = (2 * (pix // width) + 1).to(dtype) / height - 1
    out = []
    for v in (v0, v1, v2):
        g = v + image * V
        x, y, z, w = xs[g], ys[g], zs[g], ws[g]
        iw = 1.0 / w
        out.append((x, y, z, iw, x * iw, y * iw, z * iw))
    return px, py, out


def _edges(px, py, c):
    """Edge functions, area and screen barycentrics (the contract's formulas)."""
    X = [k[4] for k in c]
    Y = [k[5] for k in c]
    dx = [v - px for v in X]
    dy = [v - py for v in Y]
    area = (X[1] - X[0]) * (Y[2] - Y[0]) - (X[2] - X[0]) * (Y[1] - Y[0])
    l0 = (dx[1] * dy[2] - dx[2] * dy[1]) / area
    l1 = (dx[2] * dy[0] - dx[0] * dy[2]) / area
    l2 = (dx[0] * dy[1] - dx[1] * dy[0]) / area
    return X, Y, dx, dy, area, (l0, l1, l2)


@stage
def _attributes_forward(idx, image, v0, v1, v2, xs, ys, zs, ws, V: int, height: int,
                        width: int):  # fmt: skip
    """``b0, b1, b2, depth`` of each covered pixel."""
    px, py, c = _corners(idx, image, v0, v1, v2, xs, ys, zs, ws, V, height, width)
    _, _, _, _, _, l = _edges(px, py, c)
    q0, q1, q2 = l[0] * c[0][3], l[1] * c[1][3], l[2] * c[2][3]
    total = q0 + q1 + q2
    depth = l[0] * c[0][6] + l[1] * c[1][6] + l[2] * c[2][6]
    return q0 / total, q1 / total, q2 / total, depth


@stage
def _attributes_backward(gb0, gb1, gb2, gd, idx, image, v0, v1, v2, xs, ys, zs, ws, V: int,
                         height: int, width: int):  # fmt: skip
    """Gradients of the 12 clip coordinates per covered pixel from the gradients of
    ``b0, b1, b2`` and depth (module docstring), ``[12, N]`` (x, y, z, w of corner 0, then
    of corners 1 and 2), and their flat indices into the ``[B*V*4]`` position gradient."""
    px, py, c = _corners(idx, image, v0, v1, v2, xs, ys, zs, ws, V, height, width)
    X, Y, dx, dy, area, l = _edges(px, py, c)
    q = [l[k] * c[k][3] for k in range(3)]
    total = q[0] + q[1] + q[2]
    b = [v / total for v in q]
    gb = (gb0, gb1, gb2)
    dot = gb[0] * b[0] + gb[1] * b[1] + gb[2] * b[2]
    gq = [(gb[k] - dot) / total for k in range(3)]
    gl = [gq[k] * c[k][3] + gd * c[k][6] for k in range(3)]
    ge = [v / area for v in gl]
    ga = -(gl[0] * l[0] + gl[1] * l[1] + gl[2] * l[2]) / area
    gX = [
        -ge[1] * dy[2] + ge[2] * dy[1] + ga * (Y[1] - Y[2]),
        ge[0] * dy[2] - ge[2] * dy[0] + ga * (Y[2] - Y[0]),
        -ge[0] * dy[1] + ge[1] * dy[0] + ga * (Y[0] - Y[1]),
    ]
    gY = [
        ge[1] * dx[2] - ge[2] * dx[1] + ga * (X[2] - X[1]),
        -ge[0] * dx[2] + ge[2] * dx[0] + ga * (X[0] - X[2]),
        ge[0] * dx[1] - ge[1] * dx[0] + ga * (X[1] - X[0]),
    ]
    out, where = [], []
    for k, v in enumerate((v0, v1, v2)):
        x, y, z, iw = c[k][0], c[k][1], c[k][2], c[k][3]
        gz_w = gd * l[k]  # d depth / d Zw_k
        g_iw = gq[k] * l[k] + gX[k] * x + gY[k] * y + gz_w * z
        out += [gX[k] * iw, gY[k] * iw, gz_w * iw, -g_iw * iw * iw]
        first = (v + image * V) * 4
        where += [first, first + 1, first + 2, first + 3]
    return torch.stack(out), torch.stack(where)
