"""A per-pixel loop over nvdiffrast's texture formulas, in float64 Python scalars: the
simple reference the torch texture path (and through it the Triton one) is tested
against. It follows ``csrc/common/texture_kernel.cu`` (``indexTextureNearest``,
``indexTextureLinear``, ``calculateMipLevel``) line by line, and builds the mip levels
with explicit loops; small inputs only."""

from __future__ import annotations

import math

import torch


def _halve_list(rows: list[list[list[float]]]) -> list[list[list[float]]]:
    """One mip level of ``rows[i][j] -> channel list`` with explicit loops: 2x2 averages,
    pairs once a side is 1, an odd side's last output texel averaging its last three."""
    h, w = len(rows), len(rows[0])

    def groups(n: int) -> list[list[int]]:
        if n == 1:
            return [[0]]
        m = n // 2
        out = [[2 * k, 2 * k + 1] for k in range(m)]
        if n % 2:
            out[-1] = [n - 3, n - 2, n - 1]
        return out

    result = []
    for gi in groups(h):
        row = []
        for gj in groups(w):
            texels = [rows[i][j] for i in gi for j in gj]
            row.append([sum(t[c] for t in texels) / len(texels) for c in range(len(texels[0]))])
        result.append(row)
    return result


def reference_levels(tex: torch.Tensor, max_levels: int | None = None) -> list[list]:
    """``[base, mip 1, ...]`` of one image ``tex [Ht,Wt,C]`` as nested lists."""
    levels = [tex.double().tolist()]
    while (len(levels[-1]) > 1 or len(levels[-1][0]) > 1) and (
        max_levels is None or len(levels) - 1 < max_levels
    ):
        levels.append(_halve_list(levels[-1]))
    return levels


def _fetch(level, i, j, C):
    return level[i][j] if i >= 0 and j >= 0 else [0.0] * C


def _bilinear(level, u, v, boundary, C):
    h, w = len(level), len(level[0])
    if boundary == "wrap":
        u, v = u - math.floor(u), v - math.floor(v)
    x, y = u * w - 0.5, v * h - 0.5
    clamp_x = clamp_y = False
    if boundary == "clamp":
        x, y = min(max(x, 0.0), w - 1.0), min(max(y, 0.0), h - 1.0)
        clamp_x, clamp_y = x in (0.0, w - 1.0), y in (0.0, h - 1.0)
    x0, y0 = math.floor(x), math.floor(y)
    x1, y1 = x0 + (0 if clamp_x else 1), y0 + (0 if clamp_y else 1)
    fx, fy = x - x0, y - y0
    if boundary == "wrap":
        x0, y0 = x0 % w, y0 % h
        x1, y1 = x1 % w, y1 % h
    else:  # zero: taps outside read zero (clamp never leaves the array)
        x0, x1 = [k if 0 <= k < w else -1 for k in (x0, x1)]
        y0, y1 = [k if 0 <= k < h else -1 for k in (y0, y1)]

    a00, a10 = _fetch(level, y0, x0, C), _fetch(level, y0, x1, C)
    a01, a11 = _fetch(level, y1, x0, C), _fetch(level, y1, x1, C)
    return [
        (a00[c] + fx * (a10[c] - a00[c])) * (1 - fy) + (a01[c] + fx * (a11[c] - a01[c])) * fy
        for c in range(C)
    ]


def _nearest(level, u, v, boundary, C):
    h, w = len(level), len(level[0])
    if boundary == "wrap":
        u, v = u - math.floor(u), v - math.floor(v)
    j, i = math.floor(u * w), math.floor(v * h)
    if boundary == "zero" and not (0 <= i < h and 0 <= j < w):
        return [0.0] * C
    return level[min(max(i, 0), h - 1)][min(max(j, 0), w - 1)]


def reference_lod(da: list[float], height: int, width: int) -> float:
    """nvdiffrast's unclamped level of detail of one pixel's ``(du/dx, du/dy, dv/dx,
    dv/dy)``."""
    sx, sy, tx, ty = da[0] * width, da[1] * width, da[2] * height, da[3] * height
    a, b, c = sx * sx + tx * tx, sy * sy + ty * ty, sx * sy + tx * ty
    major = 0.5 * (a + b) + math.sqrt(0.25 * (a - b) ** 2 + c * c)
    return 0.5 * math.log2(major) if major > 0 else -math.inf


def reference_texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None,
    filter_mode: str,
    boundary: str,
    max_mip_level: int | None = None,
) -> torch.Tensor:
    """``[B,H,W,C]`` float64: the texture op by a loop over pixels (``filter_mode`` not
    ``auto``)."""
    B, H, W = uv.shape[:3]
    C = tex.shape[3]
    mipmapped = "mipmap" in filter_mode
    stacks = [
        reference_levels(tex[min(b, tex.shape[0] - 1)], max_mip_level if mipmapped else 0)
        for b in range(B)
    ]
    out = torch.zeros(B, H, W, C, dtype=torch.float64)
    for b in range(B):
        levels = stacks[b]
        L = len(levels) - 1
        for r in range(H):
            for c in range(W):
                u, v = float(uv[b, r, c, 0]), float(uv[b, r, c, 1])
                if filter_mode == "nearest":
                    out[b, r, c] = torch.tensor(_nearest(levels[0], u, v, boundary, C))
                    continue
                if not mipmapped or L == 0:
                    out[b, r, c] = torch.tensor(_bilinear(levels[0], u, v, boundary, C))
                    continue
                lod = reference_lod(uv_da[b, r, c].tolist(), tex.shape[1], tex.shape[2])
                lod = min(max(lod, 0.0), float(L))
                l0 = math.floor(lod)
                val = _bilinear(levels[l0], u, v, boundary, C)
                frac = lod - l0
                if filter_mode == "linear-mipmap-linear" and frac > 0:
                    other = _bilinear(levels[min(l0 + 1, L)], u, v, boundary, C)
                    val = [(1 - frac) * p + frac * q for p, q in zip(val, other, strict=True)]
                out[b, r, c] = torch.tensor(val)
    return out
