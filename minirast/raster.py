"""Public rasterizer API: :func:`rasterize` and :func:`interpolate`.

Conventions (``docs/design.md`` section 2, ``minirast/CONTRACT.md``): clip-space
positions ``(x, y, z, w)``; the screen position of a vertex is NDC
``(x/w, y/w)`` with (-1, -1) the top-left image corner and y growing downwards;
pixel (row r, col c) has its centre at ``((2c+1)/W - 1, (2r+1)/H - 1)`` and is
covered when that centre lies inside or on a face.
"""

from __future__ import annotations

import importlib

import torch

from _common.backend import resolve_backend

from ._constants import EPS_W
from ._cpu.attributes import fragment_attributes
from ._cpu.interpolate import interpolate_attributes
from ._cpu.rasterize import rasterize_ids
from ._validate import interpolate_inputs, rasterize_inputs
from .fragments import Fragments


def _triton_op(name: str):
    """The Triton op module ``minirast._triton.<name>``, or a clear error when it cannot
    be used."""
    module = f"minirast._triton.{name}"
    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a kernel module that fails to load
        raise RuntimeError(
            f"backend='triton' needs the Triton rasterizer kernels ({module}), "
            f"which could not be imported ({type(exc).__name__}: {exc}); use backend='torch'"
        ) from exc


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
    pos, faces_l, height, width, cull = rasterize_inputs(
        pos_clip, faces, resolution, cull_backfaces
    )
    chosen = resolve_backend(backend, pos.device)
    bins = covered = None
    if chosen == "triton":
        pos32 = pos.float().contiguous()
        if faces_l.shape[0] == 0 or pos.shape[1] == 0:
            tri_id, bary, depth = _empty_fragments(pos32, height, width)
        else:
            op = _triton_op("rasterize")
            faces32 = faces_l.to(torch.int32).contiguous()
            rec, bins = op.setup_and_bin(pos32, faces32, height, width, EPS_W, cull)
            tri_id, bary, depth = op.RasterizeFunction.apply(pos32, faces32, rec, bins)
    else:
        pos_c = pos if pos.dtype == torch.float64 else pos.float()
        tri_id = rasterize_ids(pos_c.detach(), faces_l, height, width, EPS_W, cull)
        bary, depth, covered = fragment_attributes(pos_c, faces_l, tri_id)
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


def interpolate(
    attr: torch.Tensor,
    fragments: Fragments,
    faces: torch.Tensor,
    *,
    derivatives: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Interpolate per-vertex attributes over the visible faces (nvdiffrast's
    ``interpolate``).

    Args:
        attr: ``[B,T,C]`` or ``[T,C]`` (shared by the batch) float attributes with their
            own ``T`` vertices.
        fragments: the output of :func:`rasterize`.
        faces: ``[F,3]`` int32/int64 indices into ``attr``'s vertices, one row per
            rasterized face (the same ``F``): row ``f`` gives the attribute vertices of
            the three corners of rasterized face ``f``. The rasterized faces themselves
            when ``attr`` is per mesh vertex; e.g. ``uv_faces`` for ``uvs`` split at
            seams.
        derivatives: also return the attribute's screen-space derivatives.

    Returns:
        ``[B,H,W,C]``: ``sum_i bary_i * attr[faces[tri_id, i]]`` on covered pixels, zeros
        on background. With ``derivatives``, the pair ``(values, d)`` with ``d
        [B,H,W,C,2]``: ``d[..., 0]`` the derivative of the value per pixel along
        increasing column index, ``d[..., 1]`` along increasing row index, exact for the
        perspective-correct interpolation at the pixel centre (the visible face held
        fixed; zeros on background); for a 2-channel ``uv``, ``d.reshape(B,H,W,4)`` is
        ``(du/dx, du/dy, dv/dx, dv/dy)``. Both are differentiable in ``attr`` and in the
        clip positions (through ``fragments.bary`` and ``fragments.pos_clip``); they are
        computed from the fragments on demand (nothing is stored by :func:`rasterize`).
        Uses the backend that produced ``fragments`` (Triton: float32).

    Raises:
        TypeError / ValueError for malformed input: shapes, dtypes, a batch size other
        than 1 or B, a number of faces other than the rasterized one, indices out of
        ``[0, T)``, mixed devices.
    """
    attr, fragments, faces = interpolate_inputs(attr, fragments, faces, derivatives)
    B, T, C = fragments.tri_id.shape[0], attr.shape[1], attr.shape[2]
    if fragments.backend == "triton" and faces.shape[0] > 0 and T > 0:
        op = _triton_op("interpolate")
        attr_b = attr.float().expand(B, T, C).contiguous()
        faces32 = faces.to(torch.int32).contiguous()
        frag = (fragments.tri_id, faces32, fragments.bins)
        values = op.InterpolateFunction.apply(attr_b, fragments.bary, *frag)
        if not derivatives:
            return values
        db = _triton_op("bary_derivatives").bary_derivatives(fragments)
        d = [op.InterpolateFunction.apply(attr_b, db[axis], *frag) for axis in (0, 1)]
        return values, torch.stack(d, dim=-1)
    same = faces is fragments.faces or torch.equal(faces, fragments.faces)
    return interpolate_attributes(
        attr,
        fragments.bary,
        fragments.tri_id,
        faces,
        fragments.covered,
        raster_faces=None if same else fragments.faces,
        pos=fragments.pos_clip,
        derivatives=derivatives,
    )
