"""Input checking for the public rasterizer functions: one place, one wording.

Each public function calls one ``*_inputs`` function first, which raises
TypeError / ValueError for malformed input and returns the inputs in the form
the backends take, so the public bodies read as their math.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from _common.checks import check_finite, check_same_device_dtype, check_tensor

from ._constants import (
    CULL_BACK,
    CULL_NONE,
    MAX_PIXELS,
    MAX_RESOLUTION,
    MAX_TRIANGLES,
    TEXTURE_BOUNDARIES,
    TEXTURE_FILTERS,
)
from ._cpu.texture import mip_sizes
from .fragments import Fragments


def check_resolution(resolution: object) -> tuple[int, int]:
    """``(H, W)``: a pair of ints, each in ``[1, MAX_RESOLUTION]``."""
    if (
        not isinstance(resolution, Sequence)
        or len(resolution) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in resolution)
    ):
        raise TypeError(f"resolution must be a pair of ints (H, W), got {resolution!r}")
    height, width = int(resolution[0]), int(resolution[1])
    if height < 1 or width < 1:
        raise ValueError(f"resolution must be at least 1x1 pixel, got (H, W) = {resolution!r}")
    if height > MAX_RESOLUTION or width > MAX_RESOLUTION:
        raise ValueError(
            f"resolution (H, W) = {resolution!r} exceeds the largest supported side "
            f"{MAX_RESOLUTION} pixels"
        )
    return height, width


def check_faces(faces: object, num_vertices: int) -> torch.Tensor:
    """Validate faces ``[F,3]`` int32/int64 with indices in ``[0, num_vertices)``.

    Returns them as int64 (the same tensor when already int64).
    """
    faces = check_tensor("faces", faces, ["F", 3], floating=False, integer=True)
    if faces.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"faces must be int32 or int64, got dtype {faces.dtype}")
    if faces.numel() > 0:
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0:
            raise ValueError(f"faces contains a negative vertex index ({lo})")
        if hi >= num_vertices:
            raise ValueError(
                f"faces contains vertex index {hi}, out of range for {num_vertices} vertices"
            )
    return faces.long()


def check_positions(pos_clip: object) -> torch.Tensor:
    """``[B,V,4]`` or ``[V,4]`` floating, finite; returned as ``[B,V,4]``."""
    if isinstance(pos_clip, torch.Tensor) and (
        pos_clip.dim() not in (2, 3) or pos_clip.shape[-1] != 4
    ):
        raise ValueError(f"pos_clip must have shape [B,V,4] or [V,4], got {list(pos_clip.shape)}")
    if isinstance(pos_clip, torch.Tensor) and pos_clip.dim() == 2:
        pos_clip = pos_clip.unsqueeze(0)
    pos_clip = check_tensor("pos_clip", pos_clip, ["B", "V", 4])
    check_finite("pos_clip", pos_clip)
    return pos_clip


def check_fragments(fragments: object) -> Fragments:
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments must be minirast.Fragments, got {type(fragments).__name__}")
    return fragments


def check_same_faces(faces: torch.Tensor, fragments: Fragments) -> None:
    """``faces`` has the shape of the faces the fragments were rasterized with."""
    if faces.shape != fragments.faces.shape:
        raise ValueError(
            f"faces has shape {list(faces.shape)} but the fragments were rasterized with "
            f"{list(fragments.faces.shape)}"
        )


def rasterize_inputs(
    pos_clip: object, faces: object, resolution: object, cull_backfaces: object
) -> tuple[torch.Tensor, torch.Tensor, int, int, int]:
    """Validate the arguments of :func:`minirast.rasterize`.

    Returns ``(pos [B,V,4], faces [F,3] int64, height, width, cull)`` with ``cull`` the
    backend culling code (``CULL_BACK`` or ``CULL_NONE``). Refuses, besides malformed
    tensors, a ``B*H*W`` over ``MAX_PIXELS`` and a ``B*F`` over ``MAX_TRIANGLES``.
    """
    pos = check_positions(pos_clip)
    if not isinstance(faces, torch.Tensor):
        check_tensor("faces", faces, ["F", 3], floating=False, integer=True)
    check_same_device_dtype({"pos_clip": pos, "faces": faces}, dtype=False)
    faces_l = check_faces(faces, pos.shape[1])
    height, width = check_resolution(resolution)
    B = pos.shape[0]
    if B * height * width > MAX_PIXELS:
        raise ValueError(
            f"B*H*W = {B}*{height}*{width} = {B * height * width} pixels exceeds the budget of "
            f"{MAX_PIXELS} pixels; render in smaller batches"
        )
    if B * faces_l.shape[0] > MAX_TRIANGLES:
        raise ValueError(
            f"B*F = {B}*{faces_l.shape[0]} triangles exceeds the budget of {MAX_TRIANGLES}; "
            "render in smaller batches"
        )
    if not isinstance(cull_backfaces, bool):
        raise TypeError(f"cull_backfaces must be a bool, got {cull_backfaces!r}")
    cull = CULL_BACK if cull_backfaces else CULL_NONE
    return pos, faces_l, height, width, cull


def interpolate_inputs(
    attr: object, fragments: object, faces: object, derivatives: object = False
) -> tuple[torch.Tensor, Fragments, torch.Tensor]:
    """Validate the arguments of :func:`minirast.interpolate`.

    ``faces`` indexes ``attr``'s own vertices (``T`` of them, which need not be the
    rasterized mesh's ``V``), one row per rasterized face. Returns ``(attr [1 or B,T,C],
    fragments, faces [F,3] int64)``: a ``[T,C]`` attr gets a batch axis of one.
    """
    fragments = check_fragments(fragments)
    B = fragments.tri_id.shape[0]
    if isinstance(attr, torch.Tensor) and attr.dim() == 2:
        attr = check_tensor("attr", attr, ["T", "C"]).unsqueeze(0)
    attr = check_tensor("attr", attr, ["B", "T", "C"])
    if attr.shape[0] not in (1, B):
        raise ValueError(f"attr has batch size {attr.shape[0]}, expected 1 or {B}")
    faces = check_tensor("faces", faces, ["F", 3], floating=False, integer=True)
    if faces.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"faces must be int32 or int64, got dtype {faces.dtype}")
    if faces.shape[0] != fragments.faces.shape[0]:
        raise ValueError(
            f"faces has {faces.shape[0]} rows but the fragments were rasterized with "
            f"{fragments.faces.shape[0]} faces; interpolate needs one row per rasterized face"
        )
    check_same_device_dtype({"attr": attr, "tri_id": fragments.tri_id}, dtype=False)
    check_same_device_dtype({"faces": faces, "tri_id": fragments.tri_id}, dtype=False)
    T = attr.shape[1]
    if faces.numel() > 0:
        lo, hi = int(faces.min()), int(faces.max())
        if lo < 0 or hi >= T:
            raise ValueError(
                f"faces contains vertex index {lo if lo < 0 else hi}, out of range for attr's "
                f"{T} vertices (attr [B,T,C] or [T,C]; faces index [0, T))"
            )
    if not isinstance(derivatives, bool):
        raise TypeError(f"derivatives must be a bool, got {derivatives!r}")
    return attr, fragments, faces.long()


def antialias_inputs(
    color: object, fragments: object, pos_clip: object, faces: object
) -> tuple[torch.Tensor, Fragments, torch.Tensor, torch.Tensor]:
    """Validate the arguments of :func:`minirast.antialias`.

    Returns ``(color [B,H,W,C], fragments, pos [1 or B,V,4], faces [F,3] int64)``.
    """
    fragments = check_fragments(fragments)
    B, H, W = fragments.tri_id.shape
    color = check_tensor("color", color, [B, H, W, "C"])
    pos = check_positions(pos_clip)
    if pos.shape[0] not in (1, B) or pos.shape[1] != fragments.pos_clip.shape[1]:
        raise ValueError(
            f"pos_clip has shape {list(pos.shape)}, the fragments were rasterized from "
            f"{list(fragments.pos_clip.shape)}"
        )
    check_same_device_dtype({"color": color, "pos_clip": pos, "faces": faces}, dtype=False)
    faces_l = check_faces(faces, pos.shape[1])
    check_same_faces(faces_l, fragments)
    return color, fragments, pos, faces_l


@dataclasses.dataclass(frozen=True)
class TextureInputs:
    """Validated arguments of :func:`minirast.texture`: ``filter_mode`` resolved (no
    ``auto``; ``linear`` when mipmapping has no level to use), ``levels`` the number of
    mip levels to sample (0 unless mipmapped), ``dtype`` the promoted float dtype."""

    tex: torch.Tensor
    uv: torch.Tensor
    uv_da: torch.Tensor | None
    mip: list[torch.Tensor] | None
    filter_mode: str
    boundary_mode: str
    levels: int
    dtype: torch.dtype


def check_finite_fast(name: str, value: torch.Tensor) -> None:
    """:func:`_common.checks.check_finite` in one reduction pass (``aminmax`` carries a
    NaN or inf through), about 10x faster on large CPU tensors than ``isfinite().all()``
    (the texture op's uv and derivative maps are checked on every call)."""
    if value.numel() == 0:
        return
    lo, hi = torch.aminmax(value)
    if not bool(torch.isfinite(lo) & torch.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf values")


def _texture_mode(name: str, value: object, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
    return value


def check_texture(tex: object) -> torch.Tensor:
    """``[B,Ht,Wt,C]`` float32/float64 with every size at least 1."""
    tex = check_tensor("tex", tex, ["B", "Ht", "Wt", "C"])
    if tex.numel() == 0:
        raise ValueError(f"tex must have at least one texel and channel, got {list(tex.shape)}")
    return tex


def check_mip_stack(mip: object, tex: torch.Tensor) -> list[torch.Tensor]:
    """A list of the mip levels 1, 2, ... of ``tex`` (as :func:`minirast.texture_mipmaps`
    returns): level ``l`` of shape ``[Bt, h_l, w_l, C]``, at most the full chain."""
    if not isinstance(mip, (list, tuple)):
        raise TypeError(
            f"mip must be a list of tensors (texture_mipmaps), got {type(mip).__name__}"
        )
    Bt, Ht, Wt, C = tex.shape
    sizes = mip_sizes(Ht, Wt)
    if len(mip) > len(sizes):
        raise ValueError(
            f"mip has {len(mip)} levels, a {Ht}x{Wt} texture has only {len(sizes)} below its base"
        )
    for i, (level, (h, w)) in enumerate(zip(mip, sizes, strict=False)):
        check_tensor(f"mip[{i}]", level, [Bt, h, w, C])
    return list(mip)


def texture_inputs(
    tex: object,
    uv: object,
    uv_da: object,
    mip: object,
    filter_mode: object,
    boundary_mode: object,
    max_mip_level: object,
) -> TextureInputs:
    """Validate the arguments of :func:`minirast.texture` (module docs of
    :mod:`minirast.texture` for their meaning)."""
    tex = check_texture(tex)
    uv = check_tensor("uv", uv, ["B", "H", "W", 2])
    B, H, W = uv.shape[:3]
    if tex.shape[0] not in (1, B):
        raise ValueError(f"tex has batch size {tex.shape[0]}, uv has {B}: expected 1 or {B}")
    if B * H * W > MAX_PIXELS:
        raise ValueError(f"uv has B*H*W = {B * H * W} pixels, more than the budget {MAX_PIXELS}")
    tensors = {"tex": tex, "uv": uv}
    if uv_da is not None:
        tensors["uv_da"] = check_tensor("uv_da", uv_da, [B, H, W, 4])
    filter_mode = _texture_mode("filter_mode", filter_mode, ("auto", *TEXTURE_FILTERS))
    boundary_mode = _texture_mode("boundary_mode", boundary_mode, TEXTURE_BOUNDARIES)
    if filter_mode == "auto":
        filter_mode = "linear-mipmap-linear" if uv_da is not None else "linear"
    if max_mip_level is not None and (
        not isinstance(max_mip_level, int) or isinstance(max_mip_level, bool) or max_mip_level < 0
    ):
        raise ValueError(f"max_mip_level must be None or an int >= 0, got {max_mip_level!r}")
    if mip is not None:
        mip = check_mip_stack(mip, tex)
        tensors.update({f"mip[{i}]": m for i, m in enumerate(mip)})
    check_same_device_dtype(tensors, dtype=False)
    dtype = tex.dtype
    for t in tensors.values():
        dtype = torch.promote_types(dtype, t.dtype)
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(
            f"texture works in float32 or float64; got dtypes "
            f"{', '.join(f'{k}: {t.dtype}' for k, t in tensors.items())}"
        )
    check_finite_fast("uv", uv)
    if uv_da is not None:
        check_finite_fast("uv_da", tensors["uv_da"])
    levels = 0
    if "mipmap" in filter_mode:
        if uv_da is None:
            raise ValueError(
                f"filter_mode={filter_mode!r} needs uv_da (the pixel derivatives of uv)"
            )
        levels = len(mip_sizes(tex.shape[1], tex.shape[2], max_mip_level))
        if mip is not None:
            levels = min(levels, len(mip))
        if levels == 0:
            filter_mode = "linear"
    return TextureInputs(
        tex, uv, tensors.get("uv_da"), mip, filter_mode, boundary_mode, levels, dtype
    )
