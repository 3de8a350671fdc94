"""The textured head: FLAME with an albedo map in its UV layout, lit by spherical
harmonics, rendered with minirast (the photometric fit's model, :mod:`train.fit`, and
the textured synthetic data, :mod:`train.data.textured_faces`).

Colours: albedo maps and renders are linear light; photos and files are sRGB
(:func:`srgb_to_linear`, :func:`linear_to_srgb`). Lighting: order-2 spherical
harmonics (``minirast.shade_sh``, ``[B, 9, 3]``) on camera-frame normals (OpenCV:
x right, y down, z forward; a face towards the camera has ``n_z < 0``). Renders cover
the NDC square ``[-1, 1]^2`` at ``R x R`` pixels, centres ``(2c + 1) / R - 1``, or a
square window of it (``window [B, 3]``: centre ``(cx, cy)`` and half side ``h`` in the
square's NDC), whose own NDC is ``u_window = (u - c) / h`` (:func:`to_window`): an
affine map of the screen after the perspective division, so exact for the rho camera.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

import flame
import minirast
import ppcam


def srgb_to_linear(x: torch.Tensor) -> torch.Tensor:
    """sRGB values in [0, 1] to linear light (the IEC 61966-2-1 curve)."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: torch.Tensor) -> torch.Tensor:
    """Linear light to sRGB in [0, 1] (clamped), the inverse of :func:`srgb_to_linear`."""
    x = x.clamp(0.0, 1.0)
    return torch.where(x <= 0.0031308, 12.92 * x, 1.055 * x.clamp_min(1e-12) ** (1 / 2.4) - 0.055)


def pixel_centres(size: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """NDC ``[R, R, 2]`` (x, y) of the centres of an ``R x R`` render of the square."""
    c = (2 * torch.arange(size, device=device, dtype=dtype) + 1) / size - 1
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([xx, yy], -1)


def check_window(window: torch.Tensor, b: int) -> None:
    """Raise ``ValueError`` unless ``window`` is ``[b, 3]`` with positive half sides."""
    if window.shape != (b, 3):
        raise ValueError(
            f"window must have shape [{b}, 3] (cx, cy, half side), got {list(window.shape)}"
        )
    if not bool((window[:, 2] > 0).all()):
        raise ValueError("window half sides must be positive")


def to_window(points: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Square NDC points ``[B, N, 2]`` in the NDC of each image's ``window [B, 3]``
    (``(cx, cy, h)``): ``(u - c) / h``; the window is ``[-1, 1]^2`` there."""
    return (points - window[:, None, :2]) / window[:, None, 2:]


def from_window(points: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`to_window`: window NDC ``[B, N, 2]`` to the square's, ``c + h u``."""
    return window[:, None, :2] + window[:, None, 2:] * points


def clip_in_window(clip: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Clip coordinates ``[B, N, 4]`` whose screen ``(x / w, y / w)`` is :func:`to_window`
    of the original's: ``x' = (x - cx w) / h`` (likewise y); depth and ``w`` unchanged."""
    check_window(window, clip.shape[0])
    w = clip[..., 3:]
    xy = (clip[..., :2] - window[:, None, :2].to(clip.dtype) * w) / window[:, None, 2:].to(
        clip.dtype
    )
    return torch.cat([xy, clip[..., 2:]], -1)


def polygon_mask(polygons: torch.Tensor, size: int) -> torch.Tensor:
    """``[B, size, size]`` bool: pixel centres inside the closed polygons ``[B, N, 2]``
    (NDC; the even-odd rule)."""
    p = pixel_centres(size, polygons.device, polygons.dtype).reshape(1, 1, -1, 2)
    a = polygons[:, :, None, :]
    b = torch.roll(polygons, -1, dims=1)[:, :, None, :]
    ya, yb, py = a[..., 1], b[..., 1], p[..., 1]
    straddles = (ya > py) != (yb > py)
    t = (py - ya) / torch.where(yb == ya, torch.ones_like(yb), yb - ya)
    x_cross = a[..., 0] + t * (b[..., 0] - a[..., 0])
    crossings = (straddles & (p[..., 0] < x_cross)).sum(1)
    return (crossings % 2 == 1).reshape(-1, size, size)


class TexturedRender(NamedTuple):
    """A render of :func:`render_textured`: ``image [B, R, R, 3]`` (linear,
    antialiased, over the background), ``covered [B, R, R]`` bool, and per covered
    pixel (zeros elsewhere) ``uv [B, R, R, 2]``, ``colour [B, R, R, 3]`` (the albedo
    sampled there) and ``basis [B, R, R, 9]`` (``minirast.sh_basis`` of the normal:
    the shading is ``basis @ sh``)."""

    image: torch.Tensor
    covered: torch.Tensor
    uv: torch.Tensor
    colour: torch.Tensor
    basis: torch.Tensor


def render_textured(
    layer: flame.FLAME,
    vertices: torch.Tensor,
    scale: torch.Tensor,
    trans: torch.Tensor,
    rho: torch.Tensor,
    albedo: torch.Tensor,
    sh: torch.Tensor,
    background: torch.Tensor,
    size: int,
    *,
    mipmapped: bool = False,
    window: torch.Tensor | None = None,
) -> TexturedRender:
    """The head ``vertices [B, V, 3]`` (FLAME model frame) with the albedo maps
    ``[B, T, T, 3]`` (linear, the layer's UV layout, bilinear) lit by ``sh [B, 9, 3]``,
    over ``background [B, R, R, 3]``, antialiased (the silhouette has gradients), seen
    by the camera ``(scale [B], trans [B, 2], rho [B])``: a :class:`TexturedRender`.
    Differentiable in every floating input. ``mipmapped``
    samples the map trilinearly from the UVs' screen derivatives (the data's quality;
    several times slower on a CPU) instead of bilinearly. ``window [B, 3]`` (``(cx,
    cy, h)``, the square's NDC) renders that square window of the square instead of
    the whole (module docstring; ``background`` is then the window's)."""
    points = ppcam.flame_to_camera(vertices)
    clip = ppcam.to_clip(points, scale, trans, rho)
    if window is not None:
        clip = clip_in_window(clip, window)
    frag = minirast.rasterize(clip, layer.faces, (size, size))
    uvs = layer.uvs.to(points.dtype)
    if mipmapped:
        uv, uv_d = minirast.interpolate(uvs, frag, layer.uv_faces, derivatives=True)
        uv_d = uv_d.reshape(*uv.shape[:-1], 4)
        colour = minirast.texture(albedo, uv, uv_d, boundary_mode="clamp")
    else:
        uv = minirast.interpolate(uvs, frag, layer.uv_faces)
        colour = minirast.texture(albedo, uv, filter_mode="linear", boundary_mode="clamp")
    normals = minirast.interpolate(minirast.vertex_normals(points, layer.faces), frag, layer.faces)
    normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    basis = minirast.sh_basis(normals)
    shaded = (basis @ sh[:, None]) * colour  # minirast.shade_sh, keeping the basis
    covered = frag.mask
    image = torch.where(covered[..., None], shaded, background.to(shaded.dtype))
    image = minirast.antialias(image, frag, clip, layer.faces)
    return TexturedRender(image, covered, uv, colour, basis)
