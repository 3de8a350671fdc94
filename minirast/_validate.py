"""Input checking for the public rasterizer functions: one place, one wording.

Each public function calls one ``*_inputs`` function first, which raises
TypeError / ValueError for malformed input and returns the inputs in the form
the backends take, so the public bodies read as their math.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from _common.checks import check_finite, check_same_device_dtype, check_tensor

from ._constants import CULL_BACK, CULL_NONE, MAX_PIXELS, MAX_RESOLUTION, MAX_TRIANGLES
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
