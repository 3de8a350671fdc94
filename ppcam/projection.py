"""Public projection functions of the pseudo-perspective camera.

Conventions (docs/design.md sections 2-3): points are in the camera frame (OpenCV:
x right, y down, z forward; use :func:`ppcam.flame_to_camera` on FLAME
output), in model units (metres for FLAME). Image coordinates are NDC with
(-1, -1) the top-left corner and y growing downwards.
"""

from __future__ import annotations

import torch

from _common.backend import resolve_backend
from ppcam._torch.project import project_reference, rigid_transform, to_clip_reference
from ppcam._validate import camera_inputs, check_min_w, project_inputs

#: Default lower bound of ``w = 1 + rho p_z``: points with ``w <= DEFAULT_MIN_W``
#: (at or behind the camera plane, or within 1 % of the camera-to-origin
#: distance of it) are clamped and flagged invalid.
DEFAULT_MIN_W = 1e-2

_TRITON_DTYPES = (torch.float32, torch.float64)


def project(
    points: torch.Tensor,
    scale: torch.Tensor | float,
    trans: torch.Tensor,
    rho: torch.Tensor | float,
    rotation: torch.Tensor | None = None,
    *,
    backend: str = "auto",
    min_w: float = DEFAULT_MIN_W,
    strict: bool = False,
    return_valid: bool = False,
    deterministic: bool = True,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-perspective projection ``u = S p_x / w``, ``v = S p_y / w`` (paper eq. 6-7).

    ``p = R q + (tx, ty, 0)`` and ``w = 1 + rho p_z``.

    Args:
        points: ``[B,N,3]`` float, points q in the camera frame (model units).
        scale: ``[B]`` (or ``[B,1]``, or a number) camera scale S (NDC per model unit).
        trans: ``[B,2]`` translation (tx, ty) in model units, applied before scaling.
        rho: ``[B]`` (or ``[B,1]``, or a number) shrinkage; 0 is orthographic,
            ``1/rho`` is the camera distance to the model origin (model units).
        rotation: ``[B,3,3]`` head rotation R, or None for identity.
        backend: ``"auto"`` (triton for CUDA tensors, else torch), ``"torch"`` or ``"triton"``.
        min_w: positive lower bound on w. Policy: where ``w <= min_w`` (a point at
            or behind the camera plane) w is clamped to ``min_w``, so the output
            stays finite and no gradient flows through w there; the point is
            reported invalid. With ``strict=True`` such points raise instead.
        strict: raise ``ValueError`` on non-finite input or any ``w <= min_w``.
            (Without it, NaN/inf in the input propagate to the output.)
        return_valid: also return the ``[B,N]`` bool mask ``w > min_w``.
        deterministic: triton backend only; sum per-batch gradients in a fixed
            order (default) rather than with float atomics.

    Returns:
        uv ``[B,N,2]`` in NDC, same dtype and device as ``points``; and the
        validity mask when ``return_valid``. Differentiable in every tensor
        input (first order for triton, any order for torch).
    """
    points, scale, trans, rho, rotation, min_w = project_inputs(
        points, scale, trans, rho, rotation, min_w, strict
    )
    chosen = resolve_backend(backend, points.device)
    if chosen == "triton":
        uv, valid = _project_triton(points, scale, trans, rho, rotation, min_w, deterministic)
    else:
        uv, valid = project_reference(points, scale, trans, rho, rotation, min_w)
    if strict and not bool(valid.all()):
        bad = int((~valid).sum())
        raise ValueError(
            f"{bad} point(s) have w = 1 + rho * p_z <= min_w = {min_w} (at or behind the "
            "camera plane); fix rho or the geometry, or call with strict=False to clamp"
        )
    return (uv, valid) if return_valid else uv


def _project_triton(points, scale, trans, rho, rotation, min_w, deterministic):
    from ppcam._triton.project import ProjectFunction

    dtype = points.dtype
    if dtype not in _TRITON_DTYPES:
        # Half precision: compute in float32, return in the input dtype.
        args = [t.float() for t in (points, scale, trans, rho)]
        rot = None if rotation is None else rotation.float()
        uv, valid = ProjectFunction.apply(*args, rot, min_w, deterministic)
        return uv.to(dtype), valid
    return ProjectFunction.apply(points, scale, trans, rho, rotation, min_w, deterministic)


def to_clip(
    points: torch.Tensor,
    scale: torch.Tensor | float,
    trans: torch.Tensor,
    rho: torch.Tensor | float,
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Homogeneous clip coordinates ``(S p_x, S p_y, p_z, 1 + rho p_z)``, ``[B,N,4]``.

    What the rasterizer takes: dividing by the last coordinate gives the
    projection of :func:`project` and a depth ``p_z / w`` that increases with
    p_z where ``w > 0``; interpolating with ``1/w`` is perspective-correct.
    Nothing is clamped here: the rasterizer drops triangles with ``w <= eps``.
    Arguments as in :func:`project`.
    """
    points, scale, trans, rho, rotation = camera_inputs(points, scale, trans, rho, rotation)
    return to_clip_reference(points, scale, trans, rho, rotation)


def ortho_project(
    points: torch.Tensor,
    scale: torch.Tensor | float,
    trans: torch.Tensor,
    rotation: torch.Tensor | None = None,
) -> torch.Tensor:
    """Orthographic projection of DECA/SMIRK: ``u = S (p_x + tx)``, ``[B,N,2]`` NDC.

    Equal to :func:`project` with ``rho = 0``.
    """
    points, scale, trans, _, rotation = camera_inputs(points, scale, trans, None, rotation)
    p = rigid_transform(points, trans, rotation)
    return scale[:, None, None] * p[..., :2]


def pinhole_project(
    points: torch.Tensor,
    focal: torch.Tensor | float,
    trans3: torch.Tensor,
    rotation: torch.Tensor | None = None,
    *,
    min_depth: float = 1e-6,
    return_valid: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Pinhole projection ``u = f p_x / p_z``, ``v = f p_y / p_z`` with ``p = R q + t``.

    Args:
        points: ``[B,N,3]`` camera-frame points q.
        focal: ``[B]`` (or number) focal length in NDC units (NDC per unit of x/z).
        trans3: ``[B,3]`` translation (tx, ty, tz); tz is the distance from the
            camera to the model origin along the optical axis.
        rotation: ``[B,3,3]`` or None.
        min_depth: depths ``p_z <= min_depth`` (at or behind the camera) are
            clamped to it and reported invalid; the output stays finite.
        return_valid: also return the ``[B,N]`` mask ``p_z > min_depth``.

    With ``f = S / rho`` and ``tz = 1 / rho`` it equals :func:`project` exactly
    (see :func:`ppcam.pseudo_to_pinhole`).
    """
    points, focal, trans3, _, rotation = camera_inputs(
        points, focal, trans3, None, rotation, trans_dim=3, scale_name="focal", trans_name="trans3"
    )
    min_depth = check_min_w(min_depth, name="min_depth")
    p = rigid_transform(points, trans3, rotation)
    depth = p[..., 2]
    valid = depth > min_depth
    uv = focal[:, None, None] * p[..., :2] / depth.clamp(min=min_depth)[..., None]
    return (uv, valid) if return_valid else uv


__all__ = [
    "DEFAULT_MIN_W",
    "ortho_project",
    "pinhole_project",
    "project",
    "to_clip",
]
