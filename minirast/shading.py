"""Vertex normals and simple shading (ambient + directional, order-2 spherical harmonics)."""

from __future__ import annotations

import math

import torch

from _common.checks import check_tensor

from ._validate import check_faces


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Area-weighted unit vertex normals, differentiable in ``verts``.

    Args:
        verts: ``[B,V,3]`` or ``[V,3]`` float positions (any frame).
        faces: ``[F,3]`` int32/int64; a face ``(a, b, c)`` contributes its right-hand normal
            ``(b - a) x (c - a)`` (length = twice its area) to each of its three vertices.
        eps: vertices without a face (or with a zero sum) get a zero normal instead of NaN.

    Returns:
        unit normals with the shape of ``verts``.
    """
    squeeze = isinstance(verts, torch.Tensor) and verts.dim() == 2
    if squeeze:
        verts = check_tensor("verts", verts, ["V", 3]).unsqueeze(0)
    verts = check_tensor("verts", verts, ["B", "V", 3])
    faces = check_faces(faces, verts.shape[1]).to(verts.device)
    B, V, _ = verts.shape
    tri = verts[:, faces]  # [B,F,3,3]
    fn = torch.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0], dim=-1)
    normals = verts.new_zeros(B, V, 3)
    for k in range(3):
        normals = normals.index_add(1, faces[:, k], fn)
    length = normals.norm(dim=-1, keepdim=True)
    normals = normals / length.clamp_min(eps)
    return normals[0] if squeeze else normals


def _check_vectors(name: str, value: object) -> torch.Tensor:
    """A floating tensor ``[..., 3]`` (at least one dimension)."""
    dims = value.dim() if isinstance(value, torch.Tensor) else 1
    return check_tensor(name, value, [None] * max(dims - 1, 0) + [3])


def normals_to_rgb(normals: torch.Tensor) -> torch.Tensor:
    """Map unit normals ``[..., 3]`` to colours in [0, 1]: ``(n + 1) / 2``."""
    _check_vectors("normals", normals)
    return (normals + 1.0) * 0.5


def shade_lambert(
    normals: torch.Tensor,
    albedo: torch.Tensor | float = 1.0,
    light_dir: torch.Tensor | tuple[float, float, float] = (0.0, 0.0, -1.0),
    *,
    ambient: float = 0.3,
    diffuse: float = 0.7,
) -> torch.Tensor:
    """Ambient + one directional light: ``albedo * (ambient + diffuse * max(0, n . l))``.

    Args:
        normals: ``[..., 3]`` unit normals (e.g. interpolated vertex normals; they are
            renormalised here, zero vectors give the ambient term only).
        albedo: scalar, ``[3]`` or ``[..., C]`` broadcastable colour.
        light_dir: direction TOWARDS the light, ``[3]`` or ``[..., 3]``, normalised here. The
            default ``(0, 0, -1)`` points at the camera in the OpenCV camera frame.
        ambient, diffuse: weights of the two terms.

    Returns:
        ``[..., C]`` shaded colour (C = 1 for a scalar albedo).
    """
    _check_vectors("normals", normals)
    light = torch.as_tensor(light_dir, dtype=normals.dtype, device=normals.device)
    light = light / light.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    lit = ambient + diffuse * (n * light).sum(-1, keepdim=True).clamp_min(0.0)
    return lit * torch.as_tensor(albedo, dtype=normals.dtype, device=normals.device)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """The 9 real spherical-harmonics basis functions (bands 0..2) at unit ``normals``
    ``[..., 3]``, with the constants of Ramamoorthi & Hanrahan's irradiance formula folded
    in (as in DECA/SMIRK), so ``shade_sh`` with coefficients ``(1, 0, ...)`` is uniform."""
    x, y, z = normals.unbind(-1)
    c0 = 1.0 / math.sqrt(4 * math.pi)
    c1 = 2.0 * math.pi / 3.0 * math.sqrt(3.0 / (4 * math.pi))
    c2 = math.pi / 4.0 * 3.0 * math.sqrt(5.0 / (12 * math.pi))
    c3 = math.pi / 4.0 * 0.5 * math.sqrt(5.0 / (4 * math.pi))
    basis = [
        torch.full_like(x, c0),
        c1 * y,
        c1 * z,
        c1 * x,
        c2 * x * y,
        c2 * y * z,
        c3 * (3 * z * z - 1),
        c2 * x * z,
        c2 * 0.5 * (x * x - y * y),
    ]
    return torch.stack(basis, -1)


def shade_sh(
    normals: torch.Tensor, sh_coeffs: torch.Tensor, albedo: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """Order-2 spherical-harmonics lighting: ``albedo * sum_k coeff_k * Y_k(n)``.

    Args:
        normals: ``[B,H,W,3]`` (or any ``[B,...,3]``) unit normals.
        sh_coeffs: ``[9,C]`` shared or ``[B,9,C]`` per image.
        albedo: scalar or broadcastable ``[..., C]`` colour.

    Returns:
        ``[B,...,C]`` shaded colour, differentiable in all inputs.
    """
    _check_vectors("normals", normals)
    if sh_coeffs.dim() == 2:
        sh_coeffs = check_tensor("sh_coeffs", sh_coeffs, [9, "C"]).unsqueeze(0)
    sh_coeffs = check_tensor("sh_coeffs", sh_coeffs, ["B", 9, "C"])
    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    basis = sh_basis(n)  # [B,...,9]
    B = normals.shape[0]
    flat = basis.reshape(B, -1, 9)
    coeffs = sh_coeffs.expand(B, -1, -1).to(basis.dtype)
    out = torch.bmm(flat, coeffs).reshape(*normals.shape[:-1], coeffs.shape[-1])
    return out * torch.as_tensor(albedo, dtype=out.dtype, device=out.device)
