"""Rendering the head for data and training: FLAME vertices -> camera -> minirast image.

All images are ``[B,3,H,W]`` float in [0, 1]; landmarks are NDC ``[B,68,2]``
(docs/design.md section 2); the camera is the pseudo-perspective one of ppcam with
``(scale, trans, rho)``, which for rho > 0 is exactly the pinhole camera
``f = scale / rho``, ``t_z = 1 / rho``.
"""

from __future__ import annotations

import dataclasses

import torch

import minirast
import ppcam


@dataclasses.dataclass
class Rendered:
    """A rendered batch: colour, coverage and the clip positions it came from."""

    image: torch.Tensor  # [B,3,H,W] in [0, 1]
    mask: torch.Tensor  # [B,1,H,W] bool, pixels covered by the mesh
    clip: torch.Tensor  # [B,V,4]
    fragments: minirast.Fragments


def camera_vertices(vertices_model: torch.Tensor) -> torch.Tensor:
    """FLAME model-frame vertices ``[B,V,3]`` to the camera frame (the one flip)."""
    return ppcam.flame_to_camera(vertices_model)


def render_mesh(
    vertices_cam: torch.Tensor,
    faces: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    size: int,
    *,
    albedo: torch.Tensor | None = None,
    light_dir: torch.Tensor | None = None,
    ambient: torch.Tensor | float = 0.45,
    background: torch.Tensor | None = None,
    antialias: bool = True,
) -> Rendered:
    """Render camera-frame vertices with Lambert shading.

    Args:
        vertices_cam: ``[B,V,3]`` camera-frame vertices (model units).
        faces: ``[F,3]`` int faces.
        scale, trans, rho: the camera (``[B]``, ``[B,2]``, ``[B]``).
        size: output height and width in pixels.
        albedo: ``[B,V,3]`` per-vertex colour, default uniform light grey.
        light_dir: ``[B,3]`` direction towards the light in the camera frame,
            default the camera direction ``(0, 0, -1)``.
        ambient: ambient weight (``[B]`` or a number); diffuse is ``1 - ambient``.
        background: ``[B,3,H,W]`` image behind the head, default black.
        antialias: blend silhouette edges (gives coverage gradients).
    """
    batch = vertices_cam.shape[0]
    clip = ppcam.to_clip(vertices_cam, scale, trans, rho)
    fragments = minirast.rasterize(clip, faces, (size, size))
    normals = minirast.vertex_normals(vertices_cam, faces)
    if albedo is None:
        albedo = torch.full_like(vertices_cam, 0.75)
    attrs = minirast.interpolate(torch.cat([normals, albedo], dim=-1), fragments, faces)
    if light_dir is None:
        light_dir = vertices_cam.new_tensor([0.0, 0.0, -1.0]).expand(batch, 3)
    amb = torch.as_tensor(ambient, dtype=vertices_cam.dtype, device=vertices_cam.device)
    amb = amb.reshape(-1, 1, 1, 1) if amb.dim() == 1 else amb
    light = light_dir[:, None, None, :]
    lit = minirast.shade_lambert(attrs[..., :3], attrs[..., 3:], light, ambient=0.0, diffuse=1.0)
    unlit = attrs[..., 3:]
    color = amb * unlit + (1.0 - amb) * lit  # [B,H,W,3]
    covered = (fragments.tri_id >= 0)[..., None]
    if background is None:
        bg = torch.zeros_like(color)
    else:
        bg = background.permute(0, 2, 3, 1)
    color = torch.where(covered, color, bg)
    if antialias:
        color = minirast.antialias(color, fragments, clip, faces)
    image = color.permute(0, 3, 1, 2).clamp(0.0, 1.0)
    return Rendered(image, covered.permute(0, 3, 1, 2), clip, fragments)


def project_landmarks(
    landmarks_model: torch.Tensor, scale: torch.Tensor, trans: torch.Tensor, rho: torch.Tensor
) -> torch.Tensor:
    """FLAME landmarks ``[B,68,3]`` (model frame) to NDC ``[B,68,2]``."""
    return ppcam.project(ppcam.flame_to_camera(landmarks_model), scale, trans, rho)
