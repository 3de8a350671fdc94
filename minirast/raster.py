"""Public rasterizer API: :func:`rasterize` and :func:`interpolate`.

Conventions (``DESIGN.md`` section 2, ``minirast/CONTRACT.md``): clip-space
positions ``(x, y, z, w)``; the screen position of a vertex is NDC
``(x/w, y/w)`` with (-1, -1) the top-left image corner and y growing downwards;
pixel (row r, col c) has its centre at ``((2c+1)/W - 1, (2r+1)/H - 1)`` and is
covered when that centre lies inside or on a face.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from _common.backend import resolve_backend
from _common.checks import check_finite, check_same_device_dtype, check_tensor

from . import _raster_torch
from ._constants import (
    CULL_BACK,
    CULL_NONE,
    EPS_W,
    MAX_PIXELS,
    MAX_RESOLUTION,
    MAX_TRIANGLES,
)
from .fragments import Fragments


def _triton_module():
    """The Triton kernels module, or a clear error when it cannot be used."""
    try:
        from . import _triton_raster
    except Exception as exc:  # ImportError, or a kernel module that fails to load
        raise RuntimeError(
            "backend='triton' needs the Triton rasterizer kernels (minirast._triton_raster), "
            f"which could not be imported ({type(exc).__name__}: {exc}); use backend='torch'"
        ) from exc
    return _triton_raster


def _check_resolution(resolution: object) -> tuple[int, int]:
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


def _check_positions(pos_clip: object) -> torch.Tensor:
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


class _RasterizeTriton(torch.autograd.Function):
    """Triton forward; backward from (bary, depth) gradients to clip positions."""

    @staticmethod
    def forward(ctx, pos, faces, height, width, eps_w, cull, holder):
        mod = _triton_module()
        tri_id, bary, depth, bins = mod.rasterize_triton(
            pos, faces, height, width, eps_w, cull, return_bins=True
        )
        holder.append(bins)
        ctx.bins = bins
        ctx.save_for_backward(pos, faces, tri_id, bary)
        ctx.mark_non_differentiable(tri_id)
        ctx.set_materialize_grads(False)
        return tri_id, bary, depth

    @staticmethod
    def backward(ctx, _g_tri, g_bary, g_depth):
        pos, faces, tri_id, bary = ctx.saved_tensors
        if g_bary is None and g_depth is None:
            return None, None, None, None, None, None, None
        if g_bary is None:
            g_bary = torch.zeros_like(bary)
        g_depth = None if g_depth is None else g_depth.float().contiguous()
        grad = _triton_module().bary_backward_triton(
            g_bary.float().contiguous(), g_depth, pos, faces, tri_id, bary, bins=ctx.bins
        )
        return grad, None, None, None, None, None, None


class _InterpolateTriton(torch.autograd.Function):
    @staticmethod
    def forward(ctx, attr, bary, tri_id, faces, bins):
        out = _triton_module().interpolate_forward_triton(attr, faces, tri_id, bary)
        ctx.save_for_backward(attr, bary, tri_id, faces)
        ctx.bins = bins
        return out

    @staticmethod
    def backward(ctx, grad_out):
        attr, bary, tri_id, faces = ctx.saved_tensors
        grad_attr, grad_bary = _triton_module().interpolate_backward_triton(
            grad_out.float().contiguous(), attr, faces, tri_id, bary, bins=ctx.bins
        )
        return grad_attr, grad_bary, None, None, None


def rasterize(
    pos_clip: torch.Tensor,
    faces: torch.Tensor,
    resolution: tuple[int, int],
    *,
    backend: str = "auto",
    cull_backfaces: bool = False,
) -> Fragments:
    """Rasterize triangles given in clip space.

    Args:
        pos_clip: ``[B,V,4]`` or ``[V,4]`` float clip-space positions ``(x, y, z, w)``,
            e.g. ``(S p_x, S p_y, p_z, w)`` from ppcam. Must be finite.
        faces: ``[F,3]`` int32/int64 vertex indices in ``[0, V)``. ``F = 0`` (or ``V = 0``
            with ``F = 0``) renders all background.
        resolution: ``(H, W)`` in pixels, each in ``[1, 16384]``; ``B*H*W <= 2**27``.
        backend: ``"auto"`` (triton for CUDA tensors when available, else torch),
            ``"torch"`` or ``"triton"``.
        cull_backfaces: drop faces whose signed NDC area is positive. With a mesh whose
            faces wind counter-clockwise around their outward normal (right-hand rule, as
            FLAME), these are exactly the faces turned away from the camera once the mesh
            is in the OpenCV camera frame (x right, y down, z forward).

    Rules: a face with any vertex ``w <= 1e-6`` (``EPS_W``), or zero screen area, is
    dropped. A pixel is covered when its centre lies inside or on a face (both windings).
    The smallest depth ``z/w`` (interpolated linearly in screen space) wins; exact ties go
    to the lower face index.

    Returns:
        :class:`Fragments` with ``tri_id`` [B,H,W] int32 (-1 background), ``bary``
        [B,H,W,3] perspective-correct barycentrics (zeros on background), ``depth``
        [B,H,W] (0 on background). ``bary`` and ``depth`` are differentiable with respect
        to ``pos_clip``; the visible face per pixel is held fixed (coverage gradients come
        from :func:`antialias`). The torch backend keeps float64 input in float64 (the
        depth test itself compares float32-rounded depths); Triton computes in float32.

    Raises:
        TypeError / ValueError for malformed input (shapes, dtypes, non-finite positions,
        face indices out of range, mixed devices, resolution out of range or over the
        memory budget); RuntimeError when the requested backend cannot run.
    """
    pos = _check_positions(pos_clip)
    if not isinstance(faces, torch.Tensor):
        check_tensor("faces", faces, ["F", 3], floating=False, integer=True)
    check_same_device_dtype({"pos_clip": pos, "faces": faces}, dtype=False)
    faces_l = check_faces(faces, pos.shape[1])
    height, width = _check_resolution(resolution)
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
    chosen = resolve_backend(backend, pos.device)

    if chosen == "triton":
        mod_faces = faces_l.to(torch.int32).contiguous()
        pos32 = pos.float().contiguous()
        holder: list = []
        if faces_l.shape[0] == 0 or pos.shape[1] == 0:
            tri_id, bary, depth = _empty_fragments(pos32, height, width)
        else:
            tri_id, bary, depth = _RasterizeTriton.apply(
                pos32, mod_faces, height, width, EPS_W, cull, holder
            )
        bins = holder[0] if holder else None
        covered = None
    else:
        bins = None
        pos_c = pos if pos.dtype == torch.float64 else pos.float()
        tri_id = _raster_torch.rasterize_ids(pos_c.detach(), faces_l, height, width, EPS_W, cull)
        bary, depth, covered = _raster_torch.fragment_attributes(pos_c, faces_l, tri_id, EPS_W)
    return Fragments(
        tri_id=tri_id,
        bary=bary,
        depth=depth,
        pos_clip=pos,
        faces=faces_l,
        resolution=(height, width),
        backend=chosen,
        bins=bins,
        covered=covered,
    )


def _empty_fragments(pos: torch.Tensor, height: int, width: int):
    """All-background outputs that stay connected to ``pos`` for autograd."""
    B = pos.shape[0]
    zero = pos.sum() * 0.0
    tri_id = torch.full((B, height, width), -1, dtype=torch.int32, device=pos.device)
    bary = pos.new_zeros(B, height, width, 3) + zero
    depth = pos.new_zeros(B, height, width) + zero
    return tri_id, bary, depth


def interpolate(attr: torch.Tensor, fragments: Fragments, faces: torch.Tensor) -> torch.Tensor:
    """Interpolate per-vertex attributes over the visible faces.

    Args:
        attr: ``[B,V,C]`` or ``[V,C]`` (shared by the batch) float attributes.
        fragments: the output of :func:`rasterize`.
        faces: ``[F,3]`` the faces given to :func:`rasterize` (same tensor or equal values).

    Returns:
        ``[B,H,W,C]``: ``sum_i bary_i * attr[face[tri_id, i]]`` on covered pixels, zeros on
        background. Differentiable in ``attr`` and, through ``fragments.bary``, in the
        clip positions. Uses the backend that produced ``fragments``.
    """
    if not isinstance(fragments, Fragments):
        raise TypeError(f"fragments must be minirast.Fragments, got {type(fragments).__name__}")
    B, H, W = fragments.tri_id.shape
    V = fragments.pos_clip.shape[1]
    if isinstance(attr, torch.Tensor) and attr.dim() == 2:
        attr = check_tensor("attr", attr, ["V", "C"]).unsqueeze(0)
    attr = check_tensor("attr", attr, ["B", "V", "C"])
    if attr.shape[1] != V:
        raise ValueError(f"attr has {attr.shape[1]} vertices, the rasterized mesh has {V}")
    if attr.shape[0] not in (1, B):
        raise ValueError(f"attr has batch size {attr.shape[0]}, expected 1 or {B}")
    faces = check_tensor("faces", faces, ["F", 3], floating=False, integer=True)
    if faces.shape != fragments.faces.shape:
        raise ValueError(
            f"faces has shape {list(faces.shape)} but the fragments were rasterized with "
            f"{list(fragments.faces.shape)}"
        )
    check_same_device_dtype({"attr": attr, "tri_id": fragments.tri_id}, dtype=False)
    check_same_device_dtype({"faces": faces, "tri_id": fragments.tri_id}, dtype=False)
    C = attr.shape[2]
    if fragments.backend == "triton" and faces.shape[0] > 0 and V > 0:
        attr_b = attr.float().expand(B, V, C).contiguous()
        return _InterpolateTriton.apply(
            attr_b,
            fragments.bary,
            fragments.tri_id,
            fragments.faces.to(torch.int32).contiguous(),
            fragments.bins,
        )
    return _interpolate_torch(
        attr, fragments.bary, fragments.tri_id, fragments.faces, fragments.covered
    )


def _interpolate_torch(attr, bary, tri_id, faces, covered=None) -> torch.Tensor:
    """Gather-and-weight over the covered pixels only. ``covered`` = ``(idx, bary_values)``
    from the torch rasterizer saves re-reading the dense ``bary`` (same values, same graph)."""
    B, H, W = tri_id.shape
    V, C = attr.shape[1], attr.shape[2]
    dtype = torch.promote_types(attr.dtype, bary.dtype)
    flat = tri_id.reshape(-1)
    if covered is not None:
        idx, w = covered
    else:
        idx = torch.nonzero(flat >= 0).squeeze(1)
        w = bary.reshape(-1, 3).index_select(0, idx)
    out = torch.zeros(B * H * W, C, dtype=dtype, device=attr.device)
    if idx.numel() == 0:
        zero = attr.sum() * 0.0 + w.sum() * 0.0
        return (out + zero).reshape(B, H, W, C)
    vid = faces.index_select(0, flat.index_select(0, idx).long())  # [N,3]
    if attr.shape[0] == 1:
        a = attr[0].index_select(0, vid.reshape(-1))
    else:
        b = idx // (H * W)
        a = attr.reshape(B * V, C).index_select(0, (vid + (b * V).unsqueeze(1)).reshape(-1))
    a = a.reshape(-1, 3, C).to(dtype)
    vals = torch.einsum("nk,nkc->nc", w.to(dtype), a)
    return out.index_put((idx,), vals).reshape(B, H, W, C)
