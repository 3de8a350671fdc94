"""Public texture sampling: :func:`texture` (nvdiffrast's ``dr.texture``) and
:func:`texture_mipmaps`.

Conventions (``minirast/CONTRACT.md``, "Texture"): ``tex [B,Ht,Wt,C]``; ``uv`` with
``u`` along the texture's width and ``v`` along its height, texel ``(i, j)`` (row,
column) centred at ``((j + 0.5)/Wt, (i + 0.5)/Ht)``, so ``v = 0`` is the first row of the
array; ``uv_da = (du/dx, du/dy, dv/dx, dv/dy)`` per pixel, ``x`` along increasing
column and ``y`` along increasing row.
"""

from __future__ import annotations

import torch

from _common.backend import resolve_backend

from ._cpu.texture import build_mipmaps, texture_sample
from ._validate import check_texture, texture_inputs
from .raster import _triton_op


def texture_mipmaps(tex: torch.Tensor, max_mip_level: int | None = None) -> list[torch.Tensor]:
    """The mip levels below ``tex [B,Ht,Wt,C]``, for :func:`texture`'s ``mip`` argument.

    Level ``l`` (``l = 1 .. L``) is ``[B, h_l, w_l, C]`` with each side of the level above
    halved (rounded down) while it is longer than one texel, down to 1x1 (at most
    ``max_mip_level`` levels); its texels are 2x2 box averages of the level above (2-texel
    averages once a side is 1). An odd side (which nvdiffrast refuses) folds its last
    three texels into its last texel: ``n = 2m + 1`` texels give ``m``, the last averaging
    ``n-3 .. n-1``. Differentiable in ``tex`` (gradients of the levels flow back to the
    base), in ``tex``'s dtype. The base itself is not in the list (as nvdiffrast's custom
    stacks).
    """
    tex = check_texture(tex)
    if max_mip_level is not None and (
        not isinstance(max_mip_level, int) or isinstance(max_mip_level, bool) or max_mip_level < 0
    ):
        raise ValueError(f"max_mip_level must be None or an int >= 0, got {max_mip_level!r}")
    return build_mipmaps(tex, max_mip_level)


def texture(
    tex: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None = None,
    *,
    mip: list[torch.Tensor] | None = None,
    filter_mode: str = "auto",
    boundary_mode: str = "wrap",
    max_mip_level: int | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Sample a texture per pixel, with nvdiffrast's filtering and gradients.

    Args:
        tex: ``[B,Ht,Wt,C]`` or ``[1,Ht,Wt,C]`` (shared by the batch) float texture.
        uv: ``[B,H,W,2]`` texture coordinates (module docs), finite; any range.
        uv_da: ``[B,H,W,4]`` pixel derivatives ``(du/dx, du/dy, dv/dx, dv/dy)``, e.g.
            ``d.reshape(B,H,W,4)`` from :func:`minirast.interpolate` with
            ``derivatives=True`` on a 2-channel uv. Needed by the mipmapped modes.
        mip: the levels from :func:`texture_mipmaps` (all or the first few); built
            here when None. Gradients flow into the given tensors (and from them to
            ``tex`` when they were built from it with autograd on).
        filter_mode: ``"nearest"``, ``"linear"`` (bilinear), ``"linear-mipmap-nearest"``
            (bilinear in level ``floor(lod)``), ``"linear-mipmap-linear"`` (trilinear), or
            ``"auto"``: trilinear when ``uv_da`` is given, else bilinear.
        boundary_mode: ``"wrap"`` (repeat; bilinear across the seam), ``"clamp"`` (the
            edge texels) or ``"zero"`` (zero outside the texture).
        max_mip_level: the largest mip level used (None: down to 1x1; 0: no mipmaps,
            which makes the mipmapped modes bilinear).
        backend: ``"auto"`` (triton for CUDA tensors when available, else torch),
            ``"torch"`` or ``"triton"``.

    Level of detail (mipmapped modes): with ``s = u Wt``, ``t = v Ht`` the pixel's
    footprint in base texels, ``A = s_x² + t_x²``, ``B = s_y² + t_y²``,
    ``C = s_x s_y + t_x t_y``, ``lod = 0.5 log2((A + B)/2 + sqrt((A - B)²/4 + C²))``
    (the major axis), clamped to ``[0, L]``; trilinear blends levels ``floor(lod)`` and
    ``floor(lod) + 1`` by the fraction.

    Returns:
        ``[B,H,W,C]`` in the promoted dtype of the inputs, differentiable in ``tex`` (and
        ``mip``), in ``uv`` (not for ``nearest``; zero while clamped) and, for
        trilinear, in ``uv_da`` through the level of detail (nvdiffrast's gradient: zero
        where the level is clamped, and where the footprint is exactly isotropic). The
        torch backend keeps float64 in float64; Triton computes in float32, its backward
        bitwise repeatable.

    Raises:
        TypeError / ValueError for malformed input (shapes, dtypes, NaN or inf in ``uv``
        or ``uv_da``, an empty texture, batch sizes that disagree, unknown mode names, a
        mip stack of the wrong sizes, a mipmapped mode without ``uv_da``);
        RuntimeError when the requested backend cannot run.
    """
    args = texture_inputs(tex, uv, uv_da, mip, filter_mode, boundary_mode, max_mip_level)
    chosen = resolve_backend(backend, args.uv.device)
    dtype = torch.float32 if chosen == "triton" else args.dtype
    base = args.tex.to(dtype)
    levels = [base]
    if args.levels > 0:
        if args.mip is not None:
            levels += [m.to(dtype) for m in args.mip[: args.levels]]
        else:
            levels += build_mipmaps(base, args.levels)
    uv_c = args.uv.to(dtype)
    uv_da_c = None if args.uv_da is None else args.uv_da.to(dtype)
    if chosen == "triton":
        op = _triton_op("texture")
        out = op.texture_triton(levels, uv_c, uv_da_c, args.filter_mode, args.boundary_mode)
        return out.to(args.dtype)
    return texture_sample(levels, uv_c, uv_da_c, args.filter_mode, args.boundary_mode)
