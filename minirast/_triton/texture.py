"""Triton texture op: nvdiffrast's texture sampling (kernels in
:mod:`minirast._triton.texture_kernels`).

The public layer builds the mip levels with torch (:func:`minirast._cpu.texture.
build_mipmaps`, so their gradients reach the base texture through autograd) and this
module packs ``[tex, mip 1, ...]`` into one stack per image, ``[Bt, S, C]`` float32.

Forward: one program per block of pixels. Backward, deterministic by default (no float
atomics): a per-pixel kernel writes the gradients of ``uv`` and ``uv_da`` and, per
sampled level (one entry, two for trilinear), the key of the anchor texel (the
top-left tap) and the four tap weights; a stable sort of the keys groups the entries
per anchor, and a per-texel kernel gathers, for each of its four corners in a fixed
order, the entries of the anchor that reaches it through that corner in sorted order.
``deterministic=False`` adds the texture gradient with float atomics instead (as the
other ops' backward functions offer).
"""

from __future__ import annotations

import dataclasses

import torch
import triton

from _common.codegen import kernel_spec

from .._constants import TEXTURE_BOUNDARIES, TEXTURE_FILTERS
from .common import NUM_WARPS, PIX_BLOCK
from .texture_kernels import (
    TEXTURE_ARG_TYPES,
    _tex_bwd_pixel_kernel,
    _tex_fwd_kernel,
    _tex_gather_kernel,
)

#: Texels per program of the gather kernel.
TEXEL_BLOCK = 128
#: Widest channel block (channels looped over in blocks of the next power of two of C,
#: at most this): 4 would take the trilinear kernels past 128 registers on sm_90.
MAX_TEX_BLOCK_C = 2
_INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class TextureSpec:
    """What the kernels need besides the tensors: filter and boundary codes, the level
    table ``lvl [L+1, 4]`` int32 ``(w, h, texel offset, anchor offset)``, texels ``S`` and
    anchor keys ``keys`` per image, the base size and the number of texture images."""

    filter_code: int
    boundary_code: int
    lvl: torch.Tensor
    texels: int
    keys: int
    height: int
    width: int
    last_level: int
    tex_batch: int


def make_spec(sizes: list[tuple[int, int]], tex_batch: int, filter_mode: str, boundary: str,
              device: torch.device) -> TextureSpec:  # fmt: skip
    """The :class:`TextureSpec` of levels of ``sizes`` ``[(h, w), ...]`` (base first)."""
    rows, off, aoff = [], 0, 0
    for h, w in sizes:
        rows.append((w, h, off, aoff))
        off += h * w
        aoff += (h + 1) * (w + 1)
    if tex_batch * aoff > _INT32_MAX - 1:
        raise ValueError(
            f"the texture and its mip levels have {tex_batch * aoff} texel anchors in all; "
            "the Triton texture op supports at most 2**31 - 2"
        )
    lvl = torch.tensor(rows, dtype=torch.int32, device=device)
    return TextureSpec(
        TEXTURE_FILTERS.index(filter_mode),
        TEXTURE_BOUNDARIES.index(boundary),
        lvl,
        off,
        aoff,
        sizes[0][0],
        sizes[0][1],
        len(sizes) - 1,
        tex_batch,
    )


def _block_c(C: int) -> int:
    return min(triton.next_power_of_2(C), MAX_TEX_BLOCK_C)


def _entries_per_pixel(spec: TextureSpec) -> int:
    return 2 if TEXTURE_FILTERS[spec.filter_code] == "linear-mipmap-linear" else 1


def texture_forward(
    stack: torch.Tensor, uv: torch.Tensor, uv_da: torch.Tensor | None, spec: TextureSpec
) -> torch.Tensor:
    """Samples ``[B,H,W,C]`` float32 of the stack ``[Bt, S, C]`` at ``uv [B,H,W,2]``
    (``uv_da [B,H,W,4]`` for the mipmapped modes), all float32 contiguous."""
    B, H, W = uv.shape[:3]
    C = stack.shape[2]
    out = torch.empty((B, H, W, C), dtype=torch.float32, device=uv.device)
    N = B * H * W
    if N == 0:
        return out
    _tex_fwd_kernel[(triton.cdiv(N, PIX_BLOCK),)](
        stack,
        uv,
        uv if uv_da is None else uv_da,
        spec.lvl,
        out,
        N,
        H * W,
        C,
        spec.texels if spec.tex_batch > 1 else 0,
        spec.width,
        spec.height,
        spec.last_level,
        FILTER=spec.filter_code,
        BOUNDARY=spec.boundary_code,
        BLOCK=PIX_BLOCK,
        BLOCK_C=_block_c(C),
        num_warps=NUM_WARPS,
    )
    return out


def texture_backward(
    grad_out: torch.Tensor,
    stack: torch.Tensor,
    uv: torch.Tensor,
    uv_da: torch.Tensor | None,
    spec: TextureSpec,
    *,
    deterministic: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Gradients of :func:`texture_forward` for ``grad_out [B,H,W,C]``: ``(grad_stack
    [Bt,S,C], grad_uv [B,H,W,2], grad_uv_da [B,H,W,4] or None)``, float32. ``grad_uv`` is
    zero for ``nearest``; ``grad_uv_da`` is nonzero only for trilinear. Bitwise
    repeatable unless ``deterministic=False`` (float atomics)."""
    B, H, W = uv.shape[:3]
    Bt, S, C = stack.shape
    N = B * H * W
    device = uv.device
    grad_uv = torch.zeros_like(uv)
    grad_da = None if uv_da is None else torch.zeros_like(uv_da)
    E = _entries_per_pixel(spec)
    if N * E > _INT32_MAX:
        raise ValueError(f"B*H*W = {N} pixels is too many for the Triton texture backward")
    keys_total = Bt * spec.keys
    if deterministic:
        grad_stack = torch.empty_like(stack)
        key = torch.empty(N * E, dtype=torch.int32, device=device)
        wt = torch.empty((N * E, 4), dtype=torch.float32, device=device)
    else:
        grad_stack = torch.zeros_like(stack)
        key = torch.zeros(1, dtype=torch.int32, device=device)
        wt = torch.zeros(1, dtype=torch.float32, device=device)
    if N == 0:
        return grad_stack.zero_(), grad_uv, grad_da
    _tex_bwd_pixel_kernel[(triton.cdiv(N, PIX_BLOCK),)](
        grad_out,
        stack,
        uv,
        uv if uv_da is None else uv_da,
        spec.lvl,
        grad_uv,
        uv if grad_da is None else grad_da,
        key,
        wt,
        grad_stack,
        N,
        H * W,
        C,
        spec.texels if Bt > 1 else 0,
        spec.keys if Bt > 1 else 0,
        keys_total,
        spec.width,
        spec.height,
        spec.last_level,
        FILTER=spec.filter_code,
        BOUNDARY=spec.boundary_code,
        ATOMIC=not deterministic,
        BLOCK=PIX_BLOCK,
        BLOCK_C=_block_c(C),
        num_warps=NUM_WARPS,
    )
    if not deterministic:
        return grad_stack, grad_uv, grad_da
    _, perm = torch.sort(key, stable=True)
    count = torch.bincount(key, minlength=keys_total + 1)
    start = torch.cumsum(count, 0) - count
    block_c = _block_c(C)
    _tex_gather_kernel[(triton.cdiv(Bt * S, TEXEL_BLOCK), triton.cdiv(C, block_c))](
        grad_out,
        perm.to(torch.int32),
        wt,
        start.to(torch.int32),
        count.to(torch.int32),
        spec.lvl,
        grad_stack,
        Bt * S,
        S,
        C,
        spec.keys,
        spec.last_level,
        FILTER=spec.filter_code,
        BOUNDARY=spec.boundary_code,
        BLOCK=TEXEL_BLOCK,
        BLOCK_C=block_c,
        num_warps=NUM_WARPS,
    )
    return grad_stack, grad_uv, grad_da


class TextureFunction(torch.autograd.Function):
    """The texture kernels as an autograd Function, differentiable in the stack, ``uv``
    and ``uv_da``."""

    @staticmethod
    def forward(ctx, stack, uv, uv_da, spec):
        ctx.save_for_backward(stack, uv, uv_da)
        ctx.spec = spec
        return texture_forward(stack, uv, uv_da, spec)

    @staticmethod
    def backward(ctx, grad_out):
        stack, uv, uv_da = ctx.saved_tensors
        g_stack, g_uv, g_da = texture_backward(
            grad_out.float().contiguous(), stack, uv, uv_da, ctx.spec
        )
        return g_stack, g_uv, g_da, None


def texture_triton(
    levels: list[torch.Tensor],
    uv: torch.Tensor,
    uv_da: torch.Tensor | None,
    filter_mode: str,
    boundary: str,
) -> torch.Tensor:
    """The texture op on validated float32 inputs (``levels = [tex [1 or B,Ht,Wt,C],
    mip 1, ...]``, the filter mode resolved): ``[B,H,W,C]`` float32."""
    Bt, _, _, C = levels[0].shape
    sizes = [(lv.shape[1], lv.shape[2]) for lv in levels]
    if "mipmap" not in filter_mode:
        sizes, levels, uv_da = sizes[:1], levels[:1], None
    if len(levels) == 1:
        stack = levels[0].reshape(Bt, -1, C)
    else:
        stack = torch.cat([lv.reshape(Bt, -1, C) for lv in levels], 1)
    spec = make_spec(sizes, Bt, filter_mode, boundary, uv.device)
    uv_da = None if uv_da is None else uv_da.contiguous()
    return TextureFunction.apply(stack.contiguous(), uv.contiguous(), uv_da, spec)


def codegen_specs() -> list[dict]:
    """Kernel configurations for GPU code-generation checks: every filter mode with the
    wrap and zero boundaries (clamp compiles like wrap, with two more compares), the
    atomic backward of the bilinear and trilinear modes, and the gather kernel of the
    three tap layouts; all at the widest channel block."""
    specs = []
    for f, filter_mode in enumerate(TEXTURE_FILTERS):
        for b in (TEXTURE_BOUNDARIES.index("wrap"), TEXTURE_BOUNDARIES.index("zero")):
            common = {"FILTER": f, "BOUNDARY": b, "BLOCK_C": MAX_TEX_BLOCK_C}
            tag = f"{filter_mode},{TEXTURE_BOUNDARIES[b]}"
            fwd = {**common, "BLOCK": PIX_BLOCK}
            specs.append(
                kernel_spec(
                    f"tex_fwd[{tag}]", _tex_fwd_kernel, TEXTURE_ARG_TYPES, fwd, num_warps=NUM_WARPS
                )
            )
            atomics = (False, True) if filter_mode.startswith("linear") and b == 0 else (False,)
            for atomic in atomics:
                specs.append(
                    kernel_spec(
                        f"tex_bwd_pixel[{tag},atomic={atomic}]",
                        _tex_bwd_pixel_kernel,
                        TEXTURE_ARG_TYPES,
                        {**fwd, "ATOMIC": atomic},
                        num_warps=NUM_WARPS,
                    )
                )
            if b == 0 and filter_mode != "linear-mipmap-nearest":  # its taps are linear's
                specs.append(
                    kernel_spec(
                        f"tex_gather[{filter_mode}]",
                        _tex_gather_kernel,
                        TEXTURE_ARG_TYPES,
                        {**common, "BLOCK": TEXEL_BLOCK},
                        num_warps=NUM_WARPS,
                    )
                )
    return specs
