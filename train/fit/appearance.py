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

The Jacobi solve with its smoothing pass does not minimise the fit's objective over the
albedo (``python -m bench.photo_gap`` measures the gap). :func:`solve_albedo_exact`
does, up to the robust weights' linearisation: conjugate gradients on the objective's
own quadratic model of the albedo, the photometric term's IRLS weights with its
``PHOTO_WEIGHT / count`` scale plus the albedo prior of :mod:`train.fit.albedo`.
``train.fit.photometric.solve_appearance(..., exact=True)`` uses it; the fit itself
keeps the Jacobi solve (docs/fitting.md says why).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

import minirast
from train.fit.albedo import SKIN_STD, SMOOTHNESS

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


def _per_capture(x: torch.Tensor, groups: torch.Tensor, n_groups: int) -> torch.Tensor:
    """Per-image maps ``[B, T, T, C]`` summed over each capture's frames: ``[G, T, T, C]``."""
    return x.new_zeros(n_groups, *x.shape[1:]).index_add(0, groups, x)


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
    num = _per_capture(num, groups, skin.shape[0])
    den = _per_capture(den, groups, skin.shape[0])
    lam = 1.0 / SKIN_STD**2
    albedo = (num / PIXEL_STD**2 + lam * skin[:, None, None]) / (den / PIXEL_STD**2 + lam)
    smooth = F.avg_pool2d(albedo.permute(0, 3, 1, 2), 3, 1, 1, count_include_pad=False)
    return (0.5 * albedo + 0.5 * smooth.permute(0, 2, 3, 1)).clamp(0.0, 1.0)


#: conjugate-gradient iterations of :func:`solve_albedo_exact`
CG_ITERATIONS = 20


def neighbour_laplacian(albedo: torch.Tensor) -> torch.Tensor:
    """``sum_j (a_i - a_j)`` over each texel's 4-neighbours inside the map ``[G, T, T, C]``:
    half the gradient of ``sum over neighbouring pairs |a_i - a_j|^2``."""
    out = torch.zeros_like(albedo)
    dx = albedo[:, :, 1:] - albedo[:, :, :-1]
    dy = albedo[:, 1:] - albedo[:, :-1]
    out[:, :, 1:] += dx
    out[:, :, :-1] -= dx
    out[:, 1:] += dy
    out[:, :-1] -= dy
    return out


def solve_albedo_exact(
    uv: torch.Tensor,
    shading: torch.Tensor,
    photo: torch.Tensor,
    pixel_weight: torch.Tensor,
    groups: torch.Tensor,
    skin: torch.Tensor,
    start: torch.Tensor,
    iterations: int = CG_ITERATIONS,
) -> torch.Tensor:
    """Albedo maps ``[G, T, T, 3]`` minimising, per capture and channel,

        sum_p pixel_weight_p (S_p a(uv_p) - J_p)^2
          + SMOOTHNESS sum_neighbours |a_i - a_j|^2 + 1/2 mean_texels |a - skin|^2 / SKIN_STD^2

    (``a(uv)`` bilinear, clamped; the second line is :func:`train.fit.albedo.albedo_prior`)
    by ``iterations`` steps of Jacobi-preconditioned conjugate gradients from ``start
    [G, T, T, 3]``, then clamped to [0, 1]. ``uv [B, R, R, 2]``, SH irradiance
    ``shading`` and ``photo [B, R, R, 3]`` (linear), ``pixel_weight [B, R, R]`` (the
    photometric term's quadratic weights: 0 on pixels not compared), capture ``groups
    [B]`` and skin colours ``[G, 3]``."""
    size = start.shape[1]
    mu = 0.5 / (size * size * SKIN_STD**2)
    w = pixel_weight[..., None]

    def per_capture(x: torch.Tensor) -> torch.Tensor:
        return _per_capture(x, groups, skin.shape[0])

    def normal(a: torch.Tensor) -> torch.Tensor:  # half the energy's Hessian times a
        sampled = minirast.texture(a[groups], uv, filter_mode="linear", boundary_mode="clamp")
        data = per_capture(splat(uv, w * shading.square() * sampled, size))
        return data + SMOOTHNESS * neighbour_laplacian(a) + mu * a

    rhs = per_capture(splat(uv, w * shading * photo, size)) + mu * skin[:, None, None]
    diag = per_capture(splat(uv, w * shading.square(), size)) + 4 * SMOOTHNESS + mu

    def dot(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # per map and channel
        return (x * y).sum((1, 2), keepdim=True)

    a = start.clone()
    r = rhs - normal(a)
    z = r / diag
    p = z.clone()
    rz = dot(r, z)
    for _ in range(iterations):
        q = normal(p)
        step = rz / dot(p, q).clamp_min(1e-30)
        a = a + step * p
        r = r - step * q
        z = r / diag
        rz_next = dot(r, z)
        p = z + (rz_next / rz.clamp_min(1e-30)) * p
        rz = rz_next
    return a.clamp(0.0, 1.0)
