"""CPU backend (``backend="torch"``) texture op: nvdiffrast's texture sampling in torch.

The math (``minirast/CONTRACT.md``, "Texture"), for a texture level of ``h x w`` texels:

- wrap: ``u <- u - floor(u)`` (and ``v``); texel space ``x = u w - 1/2``,
  ``y = v h - 1/2``; bilinear between texels ``floor(x)`` and ``floor(x) + 1``,
  wrapped around the edges;
- clamp: ``x`` clamped to ``[0, w - 1]`` (the edge texels' centres; no gradient in ``u``
  while clamped); zero: texels outside the array read zero;
- nearest: the texel ``(floor(v h), floor(u w))`` (after the wrap, clamped to the array
  or zero outside), no gradient in ``uv``;
- mipmaps: level of detail ``0.5 log2(lenMajorSqr)`` of the pixel footprint in base
  texels (:func:`mip_level`), clamped to ``[0, L]``; ``linear-mipmap-nearest`` samples
  level ``floor(lod)`` bilinearly, ``linear-mipmap-linear`` blends levels ``floor(lod)``
  and ``floor(lod) + 1`` by the fraction.

Bilinear sampling of one level is ``torch.nn.functional.grid_sample`` (``align_corners
=False``; ``padding_mode="border"`` is clamp, ``"zeros"`` is zero, and wrap samples a copy
of the texture padded circularly by one texel), so its gradients in the texture and in
``uv`` are grid_sample's; pixels of mipmapped modes are grouped by level. Any device,
float32 and float64. Inputs arrive validated by the public layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: 0.5 / ln(2): d(0.5 log2(x))/dx = LOD_SCALE / x (nvdiffrast's constant).
LOD_SCALE = 0.5 / math.log(2.0)


# --------------------------------------------------------------------------- mipmaps


def mip_sizes(height: int, width: int, max_levels: int | None = None) -> list[tuple[int, int]]:
    """``(h, w)`` of the mip levels 1, 2, ... below a ``height x width`` base: each level
    halves every side longer than one texel (rounding down), down to 1x1, at most
    ``max_levels`` of them (all when None)."""
    sizes: list[tuple[int, int]] = []
    h, w = height, width
    while (h > 1 or w > 1) and (max_levels is None or len(sizes) < max_levels):
        h, w = max(h // 2, 1), max(w // 2, 1)
        sizes.append((h, w))
    return sizes


def _halve(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Average pairs of slices along ``dim`` (size ``n > 1`` -> ``n // 2``); for odd ``n``
    the last output slice averages the last three input slices."""
    n = x.shape[dim]
    if n == 1:
        return x
    m = n // 2
    shape = list(x.shape)
    shape[dim : dim + 1] = [m, 2]
    pairs = x.narrow(dim, 0, 2 * m).reshape(shape).mean(dim + 1)
    if n % 2 == 0:
        return pairs
    last = x.narrow(dim, n - 3, 3).mean(dim, keepdim=True)
    return torch.cat([pairs.narrow(dim, 0, m - 1), last], dim)


def build_mipmaps(tex: torch.Tensor, levels: int | None = None) -> list[torch.Tensor]:
    """Mip levels 1..L of ``tex [B,Ht,Wt,C]`` (sizes :func:`mip_sizes`), each the 2x2 box
    average of the level above (a 2-texel average once one side is 1; an odd side folds
    its last three texels into its last texel), differentiable in ``tex``."""
    out: list[torch.Tensor] = []
    x = tex
    for _ in mip_sizes(tex.shape[1], tex.shape[2], levels):
        x = _halve(_halve(x, 1), 2)
        out.append(x)
    return out


# --------------------------------------------------------------------------- level of detail


def _lod_terms(uv_da: torch.Tensor, height: int, width: int):
    """nvdiffrast's footprint terms: ``(dsdx, dsdy, dtdx, dtdy)`` in base texels and
    ``(A, B, C, l2b, l2n, l2a)``."""
    dsdx = uv_da[..., 0] * width
    dsdy = uv_da[..., 1] * width
    dtdx = uv_da[..., 2] * height
    dtdy = uv_da[..., 3] * height
    a = dsdx * dsdx + dtdx * dtdx
    b = dsdy * dsdy + dtdy * dtdy
    c = dsdx * dsdy + dtdx * dtdy
    l2b = 0.5 * (a + b)
    l2n = 0.25 * (a - b) * (a - b) + c * c
    l2a = torch.sqrt(l2n)
    return (dsdx, dsdy, dtdx, dtdy), (a, b, c, l2b, l2n, l2a)


class _MipLevel(torch.autograd.Function):
    """``0.5 log2(lenMajorSqr)`` per pixel with nvdiffrast's analytic gradient, which is
    zero where it is not finite (e.g. exactly isotropic footprints, ``l2n = 0``)."""

    @staticmethod
    def forward(ctx, uv_da, height, width):
        _, (_, _, _, l2b, _, l2a) = _lod_terms(uv_da, height, width)
        ctx.save_for_backward(uv_da)
        ctx.size = (height, width)
        return 0.5 * torch.log2(l2b + l2a)

    @staticmethod
    def backward(ctx, grad):
        (uv_da,) = ctx.saved_tensors
        height, width = ctx.size
        (dsdx, dsdy, dtdx, dtdy), (a, b, c, l2b, l2n, l2a) = _lod_terms(uv_da, height, width)
        dw = LOD_SCALE / (l2n + l2a * l2b)
        ab = dw * 0.5 * (a - b)
        cw = dw * c
        l2aw = dw * l2a
        d = torch.stack(
            [
                width * (dsdx * (l2aw + ab) + dsdy * cw),
                width * (dsdy * (l2aw - ab) + dsdx * cw),
                height * (dtdx * (l2aw + ab) + dtdy * cw),
                height * (dtdy * (l2aw - ab) + dtdx * cw),
            ],
            -1,
        )
        d = torch.where(torch.isfinite(d).all(-1, keepdim=True), d, torch.zeros_like(d))
        return grad.unsqueeze(-1) * d, None, None


def mip_level(uv_da: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Unclamped level of detail ``[B,H,W]`` of ``uv_da [B,H,W,4]`` = ``(du/dx, du/dy,
    dv/dx, dv/dy)`` for a ``height x width`` base texture: half the log2 of the squared
    major axis of the pixel's footprint in texels (``-inf`` for a zero footprint)."""
    return _MipLevel.apply(uv_da, height, width)


# --------------------------------------------------------------------------- sampling


def sample_linear(tex: torch.Tensor, uv: torch.Tensor, boundary: str) -> torch.Tensor:
    """Bilinear samples ``[B,H,W,C]`` of ``tex [1 or B,h,w,C]`` at ``uv [B,H,W,2]``."""
    h, w = tex.shape[1], tex.shape[2]
    image = tex.permute(0, 3, 1, 2)
    if boundary == "wrap":
        # one texel of periodic padding, built channels-last as the texture is stored
        # (F.pad's circular mode on the permuted view copies and sums back more slowly)
        ring = torch.cat([tex[:, -1:], tex, tex[:, :1]], 1)
        image = torch.cat([ring[:, :, -1:], ring, ring[:, :, :1]], 2).permute(0, 3, 1, 2)
        # Texel x = u w - 1/2 is x + 1 in the padded texture; align_corners=False:
        # grid = (2 frac(u) - 1) w / (w + 2), in one op after the wrap
        scale = torch.tensor([w / (w + 2), h / (h + 2)], dtype=uv.dtype, device=uv.device)
        grid = torch.addcmul(-scale, torch.remainder(uv, 1.0), 2 * scale)
        padding = "zeros"  # never reached: the padded taps stay inside
    else:
        # Beyond [-1, 2] both modes are constant in uv (edge texels, or zeros).
        grid = torch.clamp(uv, -1.0, 2.0).mul_(2).sub_(1)
        padding = "border" if boundary == "clamp" else "zeros"
    image = image.expand(uv.shape[0], -1, -1, -1)
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode=padding, align_corners=False)
    return out.permute(0, 2, 3, 1)


def sample_nearest(tex: torch.Tensor, uv: torch.Tensor, boundary: str) -> torch.Tensor:
    """Nearest samples ``[B,H,W,C]`` of ``tex [1 or B,h,w,C]`` at ``uv [B,H,W,2]``:
    texel ``(floor(v h), floor(u w))``; differentiable in ``tex`` only."""
    Bt, h, w, C = tex.shape
    B = uv.shape[0]
    uv = uv.detach()
    if boundary == "wrap":
        uv = uv - torch.floor(uv)
    x = torch.floor(uv[..., 0] * w)
    y = torch.floor(uv[..., 1] * h)
    inside = (x >= 0) & (x < w) & (y >= 0) & (y < h)
    xi = x.clamp(0, w - 1).long()
    yi = y.clamp(0, h - 1).long()
    if Bt > 1:
        yi = yi + torch.arange(B, device=uv.device).view(B, 1, 1) * h
    out = tex.reshape(-1, C).index_select(0, (yi * w + xi).reshape(-1)).reshape(*x.shape, C)
    if boundary == "zero":
        out = torch.where(inside.unsqueeze(-1), out, torch.zeros_like(out))
    return out


def sample_mipmap(
    levels: list[torch.Tensor],
    uv: torch.Tensor,
    lod: torch.Tensor,
    boundary: str,
    trilinear: bool,
) -> torch.Tensor:
    """Mipmapped samples ``[B,H,W,C]``: ``levels`` are ``[tex, mip 1, ..., mip L]``
    (each ``[1 or B,h_l,w_l,C]``), ``lod [B,H,W]`` the unclamped level of detail.

    The level is ``lod`` clamped to ``[0, L]`` (NaN -> 0); level ``l0 = floor(level)``
    is sampled bilinearly; ``trilinear`` blends in level ``min(l0 + 1, L)`` with the
    fraction ``level - l0``, differentiable in ``lod``. Each level in use samples the
    pixels that use it (one ``grid_sample`` per image when the textures are per image)."""
    B, H, W = uv.shape[:3]
    L = len(levels) - 1
    Bt, C = levels[0].shape[0], levels[0].shape[3]
    lod = torch.where(torch.isnan(lod), torch.zeros_like(lod), lod)
    level = lod.clamp(0.0, float(L)).reshape(-1)
    l0 = torch.floor(level.detach()).long()
    frac = level - l0 if trilinear else None
    l1 = l0
    if trilinear:  # no second level at integer levels (nor above the last)
        l1 = torch.where(frac.detach() > 0, torch.clamp(l0 + 1, max=L), l0)
    used_levels = torch.bincount(torch.cat([l0, l1]) if trilinear else l0, minlength=L + 1)
    uv_flat = uv.reshape(-1, 2)
    out = uv.new_zeros(B * H * W, C)
    for lev in torch.nonzero(used_levels).flatten().tolist():
        idx = torch.nonzero((l0 == lev) | (l1 == lev)).squeeze(1)
        grid = uv_flat.index_select(0, idx)
        if Bt == 1:
            vals = sample_linear(levels[lev], grid.view(1, -1, 1, 2), boundary).reshape(-1, C)
        else:  # idx ascends, so its pixels come grouped by image
            counts = torch.bincount(idx // (H * W), minlength=B).tolist()
            parts = []
            for b, part in enumerate(torch.split(grid, counts)):
                if part.shape[0]:
                    tex = levels[lev][b : b + 1]
                    parts.append(sample_linear(tex, part.view(1, -1, 1, 2), boundary))
            vals = torch.cat([p.reshape(-1, C) for p in parts])
        if trilinear:
            f = frac.index_select(0, idx)
            weight = torch.where(l0.index_select(0, idx) == lev, 1 - f, 0 * f)
            weight = weight + torch.where(l1.index_select(0, idx) == lev, f, 0 * f)
            weight = torch.where(
                l0.index_select(0, idx) == l1.index_select(0, idx), 1 + 0 * f, weight
            )
            vals = vals * weight.unsqueeze(1)
        out = out.index_add(0, idx, vals)
    return out.reshape(B, H, W, C)


def texture_sample(
    levels: list[torch.Tensor],
    uv: torch.Tensor,
    uv_da: torch.Tensor | None,
    filter_mode: str,
    boundary: str,
) -> torch.Tensor:
    """The texture op on validated inputs of one dtype: ``levels = [tex [1 or B,Ht,Wt,C],
    mip 1, ...]`` (only the base for ``nearest`` / ``linear``), ``uv [B,H,W,2]``,
    ``uv_da [B,H,W,4]`` (mipmapped modes), a filter mode of ``TEXTURE_FILTERS`` (not
    ``auto``) and a boundary mode; returns ``[B,H,W,C]``."""
    tex = levels[0]
    if filter_mode == "nearest":
        return sample_nearest(tex, uv, boundary)
    if filter_mode == "linear" or len(levels) == 1:
        return sample_linear(tex, uv, boundary)
    lod = mip_level(uv_da, tex.shape[1], tex.shape[2])
    return sample_mipmap(levels, uv, lod, boundary, filter_mode == "linear-mipmap-linear")
