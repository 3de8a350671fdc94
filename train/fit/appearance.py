"""The photometric fit's appearance, in closed form: SH lighting and albedo given the
geometry of the last render (block coordinate descent; gradients move only the geometry).

With the geometry held, the render of a covered pixel ``p`` is ``a(uv_p) * (Y_p @ sh)``
(albedo times SH irradiance), linear in each of the two given the other, so each
iteration of :func:`train.fit.photometric.fit_images` re-solves both on the pixels of
its last render, weighted by the robust weights of that render (iteratively reweighted
least squares):

- :func:`solve_lighting`: per image and channel, the 9 SH coefficients of weighted least
  squares with the sampled albedo, with a small ridge towards the previous ones;
- :func:`solve_albedo`: per capture and texel, the diagonal (Jacobi) solution of the
  albedo's least squares: ``(sum_p w_pt S_p J_p + lam skin) / (sum_p w_pt S_p^2 + lam)``,
  the sums splatted into the map through the texture sampling's own adjoint, ``lam``
  the pull to the skin colour (:mod:`train.fit.albedo`), then one smoothing pass.
  Texels no pixel sees keep the skin colour.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import minirast
from train.fit.albedo import SKIN_STD

#: the ridge of the lighting solve, relative to the normal matrix's mean diagonal
LIGHT_RIDGE = 1e-3
#: pixel-noise std of the least squares, linear light (sets the pull's relative weight)
PIXEL_STD = 0.05


def solve_lighting(
    basis: torch.Tensor,
    colour: torch.Tensor,
    photo: torch.Tensor,
    weight: torch.Tensor,
    previous: torch.Tensor,
) -> torch.Tensor:
    """SH ``[B, 9, 3]`` minimising ``sum_p w_p (colour_p * (basis_p @ sh) - photo_p)^2``
    per image and channel. ``basis [B, R, R, 9]``, ``colour``, ``photo [B, R, R, 3]``,
    ``weight [B, R, R]`` (0 on pixels not to use), ``previous [B, 9, 3]`` (the ridge's
    centre)."""
    b = basis.shape[0]
    y = basis.reshape(b, -1, 1, 9) * colour.reshape(b, -1, 3, 1)  # [B, P, 3, 9]
    w = weight.reshape(b, -1, 1, 1)
    normal = torch.einsum("bpci,bpcj->bcij", y * w, y)  # [B, 3, 9, 9]
    rhs = torch.einsum("bpci,bpc->bci", y * w, photo.reshape(b, -1, 3))
    diag = normal.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-12)  # [B, 3]
    ridge = LIGHT_RIDGE * diag[..., None] + 1e-8
    eye = torch.eye(9, device=basis.device, dtype=basis.dtype)
    prev = previous.transpose(1, 2)  # [B, 3, 9]
    sol = torch.linalg.solve(normal + ridge[..., None] * eye, rhs + ridge * prev)
    return sol.transpose(1, 2)


def splat(uv: torch.Tensor, values: torch.Tensor, size: int) -> torch.Tensor:
    """The adjoint of bilinear sampling (clamped) of a ``size`` map at ``uv
    [B, R, R, 2]``: ``values [B, R, R, C]`` summed into ``[B, size, size, C]`` with
    the sampling's weights."""
    with torch.enable_grad():
        tex = values.new_zeros(uv.shape[0], size, size, values.shape[-1], requires_grad=True)
        sampled = minirast.texture(tex, uv.detach(), filter_mode="linear", boundary_mode="clamp")
        (grad,) = torch.autograd.grad((sampled * values.detach()).sum(), tex)
    return grad


def solve_albedo(
    uv: torch.Tensor,
    shading: torch.Tensor,
    photo: torch.Tensor,
    weight: torch.Tensor,
    groups: torch.Tensor,
    skin: torch.Tensor,
    size: int,
) -> torch.Tensor:
    """Albedo maps ``[G, size, size, 3]`` (module docstring) from the pixels' ``uv
    [B, R, R, 2]``, SH irradiance ``shading`` and ``photo [B, R, R, 3]``, weights
    ``[B, R, R]``, capture ``groups [B]`` and skin colours ``[G, 3]``."""
    w = weight[..., None]
    num = splat(uv, w * shading * photo, size)
    den = splat(uv, w * shading.square(), size)
    n_groups = skin.shape[0]
    num = num.new_zeros(n_groups, *num.shape[1:]).index_add(0, groups, num)
    den = den.new_zeros(n_groups, *den.shape[1:]).index_add(0, groups, den)
    lam = 1.0 / SKIN_STD**2
    albedo = (num / PIXEL_STD**2 + lam * skin[:, None, None]) / (den / PIXEL_STD**2 + lam)
    smooth = F.avg_pool2d(albedo.permute(0, 3, 1, 2), 3, 1, 1, count_include_pad=False)
    return (0.5 * albedo + 0.5 * smooth.permute(0, 2, 3, 1)).clamp(0.0, 1.0)
